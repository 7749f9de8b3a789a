"""What every SAE architecture shares, and the registry the config field ``sae_arch`` selects from.

An SAE here is a batch of independent sparse autoencoders with the instance axis first (docs/dictionary_learning.md
§Architectures): encoder W_enc (instances, hidden, latents) and b_enc, decoder W_dec (instances, latents, hidden)
whose rows are the dictionary directions, and b_dec (hidden: the width d of the layer the SAE reads). The input is
centred by b_dec before encoding, f = sigma(W_enc^T (x - b_dec) + b_enc), x_hat = W_dec^T f + b_dec, where the
architecture chooses sigma and the sparsity penalty. The task loss is ||x - x_hat||^2 (summed over dimensions, mean
over the batch); the training loop multiplies the architecture's penalty by the config field ``l1``. After every
optimizer step ``post_step`` projects each live instance's decoder rows back to unit norm, as Bricken et al. 2023
(Towards Monosemanticity) and Gao et al. 2024 (TopK) do, which also makes the cosines to the true features the only
thing that matters about them.

Init (per instance, from its own seed): decoder rows random unit vectors, W_enc = W_dec^T (Conerly et al. 2024;
SAELens' ``init_encoder_as_decoder_transpose``), both biases 0.

The true feature directions (instances, features, hidden) and each feature's parent (-1 for roots) ride along as
buffers ``truth`` and ``parents``, so a checkpoint alone can be scored (``dictionary_metrics``).

Adding an architecture: subclass :class:`SAE` in its own module, set ``name``, ``summary``, ``fields``, implement
``activate`` (and ``penalty`` if it has one), then ``register_architecture(MyArch)``; a second one of the same
name is refused.
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor, nn

from toymodels.config import ExperimentConfig
from toymodels.config.registry import Registry, RegistryError
from toymodels.engine.data import INIT_STREAM, generator


class SAE(nn.Module):
    """I sparse autoencoders of one architecture and width (module docstring)."""

    #: the value of ``sae_arch``
    name: ClassVar[str] = ""
    #: one line for the docs and error messages
    summary: ClassVar[str] = ""
    #: config fields this architecture reads beyond width, l1, lr and seed
    fields: ClassVar[tuple[str, ...]] = ()
    #: extra parameters (after the four shared ones), in the optimizer's order
    extra_params: ClassVar[tuple[str, ...]] = ()

    def __init__(self, tensors: dict[str, Tensor]):
        super().__init__()
        self.param_names = ("W_enc", "b_enc", "W_dec", "b_dec", *self.extra_params)
        for name in self.param_names:
            setattr(self, name, nn.Parameter(tensors[name].clone()))
        for name in ("truth", "parents", *self.buffer_names()):
            self.register_buffer(name, tensors[name].clone())

    # ---- per architecture --------------------------------------------------------------------------------------
    @classmethod
    def buffer_names(cls) -> tuple[str, ...]:
        """Per-instance settings kept as buffers (e.g. k), besides ``truth`` and ``parents``."""
        return ()

    @classmethod
    def check(cls, cfg: ExperimentConfig) -> str | None:
        """Why ``cfg`` does not fit this architecture (one line naming the field), or None."""
        return None

    @classmethod
    def settings(cls, cfgs: Sequence[ExperimentConfig]) -> dict[str, Tensor]:
        """Initial extra parameters and buffers of ``cfgs``, instance axis first (shared tensors are added)."""
        return {}

    def activate(self, pre: Float[Tensor, "instances batch latents"]) -> Float[Tensor, "instances batch latents"]:
        """The latents from the pre-activations (training and evaluation alike unless overridden)."""
        raise NotImplementedError

    def penalty(self, pre: Float[Tensor, "instances batch latents"], f: Float[Tensor, "instances batch latents"]
                ) -> Float[Tensor, " instances"]:
        """The sparsity term the loop multiplies by ``l1`` (mean over the batch); 0 for penalty-free ones."""
        return torch.zeros(f.shape[0], device=f.device, dtype=f.dtype)

    # ---- shared ------------------------------------------------------------------------------------------------
    @classmethod
    def init(cls, cfgs: Sequence[ExperimentConfig], truth: Float[Tensor, "instances features hidden"],
             parents: Int[Tensor, "instances features"]) -> "SAE":
        """One SAE per config, each from its own seed's init stream (module docstring), on the CPU."""
        L, d = cfgs[0].sae.sae_width, truth.shape[-1]
        W_dec = []
        for cfg in cfgs:
            g = generator(cfg.run.seed, INIT_STREAM)
            w = torch.randn(L, d, generator=g)
            W_dec.append(w / w.norm(dim=-1, keepdim=True).clamp(min=1e-12))
        W = torch.stack(W_dec)
        I = len(cfgs)
        tensors = {"W_enc": W.transpose(1, 2).contiguous(), "b_enc": torch.zeros(I, L), "W_dec": W,
                   "b_dec": torch.zeros(I, d), "truth": truth.float(), "parents": parents.long()}
        return cls({**tensors, **cls.settings(cfgs)})

    @classmethod
    def from_tensors(cls, tensors: dict[str, Tensor]) -> "SAE":
        return cls(tensors)

    @property
    def n_instances(self) -> int:
        return self.W_dec.shape[0]

    def pre_activations(self, x: Float[Tensor, "instances batch hidden"]) -> Float[Tensor, "instances batch latents"]:
        return torch.baddbmm(self.b_enc.unsqueeze(1), x - self.b_dec.unsqueeze(1), self.W_enc)

    def encode(self, x: Float[Tensor, "instances batch hidden"]) -> Float[Tensor, "instances batch latents"]:
        """The latents the SAE infers (evaluation)."""
        return self.activate(self.pre_activations(x))

    def decode(self, f: Float[Tensor, "instances batch latents"]) -> Float[Tensor, "instances batch hidden"]:
        return torch.baddbmm(self.b_dec.unsqueeze(1), f, self.W_dec)

    def losses(
        self, x: Float[Tensor, "instances batch hidden"], task: str = "decoder", with_l1: bool = True
    ) -> tuple[Float[Tensor, " instances"], Float[Tensor, " instances"] | None]:
        """Reconstruction error ||x - x_hat||^2 (mean over the batch) and the architecture's penalty."""
        if task != "decoder":
            raise ValueError(f"field 'task': model 'sae' supports only task 'decoder' (got {task!r})")
        pre = self.pre_activations(x)
        f = self.activate(pre)
        x_hat = self.decode(f)
        mse = (x_hat - x).pow(2).sum(dim=(1, 2)) / x.shape[1]
        return mse, (self.penalty(pre, f) if with_l1 else None)

    def decoder_norms(self) -> Float[Tensor, "instances latents"]:
        return self.W_dec.norm(dim=-1)

    @torch.no_grad()
    def post_step(self, alive: Bool[Tensor, " instances"]) -> None:
        """Unit-norm decoder rows by projection, on live instances only (frozen ones stay as they were)."""
        unit = self.W_dec / self.decoder_norms().clamp(min=1e-12).unsqueeze(-1)
        self.W_dec.copy_(torch.where(alive.view(-1, 1, 1), unit, self.W_dec))

    def decayed_params(self) -> list[Tensor]:
        return [self.b_enc]

    def state_tensors(self) -> dict[str, Tensor]:
        out = {name: getattr(self, name).detach() for name in self.param_names}
        out.update({name: getattr(self, name) for name in ("truth", "parents", *self.buffer_names())})
        return out

    def reconstruct(self, x: Float[Tensor, "instances batch hidden"]) -> tuple[Tensor, Tensor]:
        """(latents, reconstruction) of ``x`` as at evaluation."""
        f = self.encode(x)
        return f, self.decode(f)


def keep_top(scores: Float[Tensor, "rows candidates"], k: Int[Tensor, " rows"], k_max: int
             ) -> Float[Tensor, "rows candidates"]:
    """Each row's ``k_i`` largest entries of ``scores`` kept, the rest 0 (one topk of the group's largest k, then the
    ranks past a row's own k dropped, so an instance gets the same result in any group). A row is an instance (its
    candidates: batch x latents, BatchTopK) or one sample of an instance (its candidates: the latents, TopK)."""
    vals, idx = scores.topk(min(k_max, scores.shape[-1]), dim=-1)
    keep = torch.arange(vals.shape[-1], device=scores.device) < k.view(-1, 1)
    return torch.zeros_like(scores).scatter(-1, idx, vals * keep)


def dictionary(model: SAE) -> Float[Tensor, "instances latents hidden"]:
    """The decoder directions (rows of W_dec), the SAE's dictionary."""
    return model.W_dec.detach()


class ArchitectureError(RegistryError):
    """An architecture name that is unknown or registered twice."""


#: the SAE architectures by the config field ``sae_arch``
ARCHITECTURES: Registry[type[SAE]] = Registry("SAE architecture", field="sae_arch", error=ArchitectureError)


def register_architecture(cls: type[SAE]) -> type[SAE]:
    """Add ``cls`` under ``cls.name``; refuses a second architecture of the same name."""
    return ARCHITECTURES.register(cls.name, cls)


def unregister_architecture(name: str) -> None:
    """Remove an architecture (tests register temporary ones)."""
    ARCHITECTURES.unregister(name)


def architecture_names() -> tuple[str, ...]:
    return ARCHITECTURES.names()


def get_architecture(name: str) -> type[SAE]:
    """The architecture registered as ``name``; ArchitectureError naming the field ``sae_arch`` if none."""
    return ARCHITECTURES.get(name)


def per_instance(cfgs: Sequence[ExperimentConfig], get: Any, dtype: torch.dtype = torch.float32) -> Tensor:
    """(instances,) tensor of ``get(cfg)``."""
    return torch.tensor([get(c) for c in cfgs], dtype=dtype)
