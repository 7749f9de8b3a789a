"""The EM two-layer model with a leading instance axis: many independent models in one set of tensors.

*Engineering Monosemanticity in Toy Models* (Jermyn, Schiefer, Hubinger 2022; docs/papers.md §1.3): features
v -> fixed embedding x = E v -> h = act(W1 x + b1) -> out = W2 h. Every parameter has shape (instances, ...);
losses are returned per instance so that summing them gives each instance its own gradient.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from einops import einsum
from jaxtyping import Float
from torch import Tensor, nn

from toymodels.engine.activations import activation
from toymodels.config import ExperimentConfig
from toymodels.engine.data import (
    INIT_STREAM,
    generator,
    make_embedder,
)
from toymodels.families.em.layers import InstanceLinear, SparseMLP, SquaredError, sparse_instances


#: x = E v per instance and sample (the einops pattern of both embedders)
EMBED = "instances batch features, instances hidden features -> instances batch hidden"


def _uniform(shape: tuple[int, ...], bound: float, gen: torch.Generator) -> Tensor:
    return (torch.rand(shape, generator=gen) * 2 - 1) * bound


class EMModel(nn.Module):
    """I independent copies of the EM two-layer model.

    Parameters: W1 (instances, neurons, hidden), b1 (instances, neurons), W2 (instances, outputs, neurons).
    Buffers: E (instances, hidden, features) input embedder and, for the re-projector task, E_out (instances,
    hidden, features) the second, independent embedder whose image is the target (outputs: N features for the
    decoder and abs tasks, m hidden dimensions for the re-projector).
    """

    param_names = ("W1", "b1", "W2")
    #: The switch of the sparse path of ReLU models' training steps (``layers.SparseMLP``): "auto" (default) takes
    #: it per instance and step when the hidden activations are mostly exactly zero and layer 2 is large (same
    #: results to float rounding, faster); "off" always dense (bit-identical to earlier versions); "on" always
    #: sparse (tests). Other nonlinearities are always dense.
    sparse = "auto"

    def __init__(self, W1: Tensor, b1: Tensor, W2: Tensor, E: Tensor, E_out: Tensor | None, nonlinearity: str):
        super().__init__()
        self.W1 = nn.Parameter(W1)
        self.b1 = nn.Parameter(b1)
        self.W2 = nn.Parameter(W2)
        self.register_buffer("E", E)
        self.register_buffer("E_out", E_out if E_out is not None else torch.empty(0))
        self.nonlinearity = nonlinearity

    @classmethod
    def init(cls, cfgs: Sequence[ExperimentConfig]) -> "EMModel":
        """Initialise one instance per config, each from its own seed (on CPU, so every device starts equal).

        PyTorch's default Linear init (U(+-1/sqrt(fan_in)) for weights and bias), then ``bias_offset`` is added
        to the first-layer bias, as in the paper's code.
        """
        c0 = cfgs[0]
        N, m, k = c0.data.N, c0.model.m, c0.model.k
        task = c0.task.task
        out_dim = m if task == "reprojector" else N
        W1, b1, W2, E, E_out = [], [], [], [], []
        for cfg in cfgs:
            g = generator(cfg.run.seed, INIT_STREAM)
            E.append(make_embedder(N, m, g))
            if task == "reprojector":
                E_out.append(make_embedder(N, m, g))
            W1.append(_uniform((k, m), 1 / math.sqrt(m), g))
            b1.append(_uniform((k,), 1 / math.sqrt(m), g) + cfg.model.bias_offset)
            W2.append(_uniform((out_dim, k), 1 / math.sqrt(k), g))
        return cls(
            torch.stack(W1), torch.stack(b1), torch.stack(W2), torch.stack(E),
            torch.stack(E_out) if E_out else None, c0.model.nonlinearity,
        )

    @property
    def n_instances(self) -> int:
        return self.W1.shape[0]

    def embed(self, v: Float[Tensor, "instances batch features"]) -> Float[Tensor, "instances batch hidden"]:
        return einsum(v, self.E, EMBED)

    def forward(
        self, v: Float[Tensor, "instances batch features"]
    ) -> tuple[Float[Tensor, "instances batch outputs"], Float[Tensor, "instances batch neurons"]]:
        x = self.embed(v)
        pre = InstanceLinear.apply(x, self.W1, self.b1)
        # training steps of ReLU models only (no other nonlinearity gives exact zeros): evaluation keeps the dense
        # products (its metrics bit-stable). The sparse path takes over ReLU, layer 2 and both layers' gradients
        # from pre (the graph built for it goes unused).
        if self.nonlinearity == "relu" and torch.is_grad_enabled():
            sparse = sparse_instances(pre.detach(), self.W2.shape[1], self.sparse)
            if sparse:
                return SparseMLP.apply(x, self.W1, self.b1, self.W2, pre.detach(), sparse)
        h = activation(pre, self.nonlinearity)
        return InstanceLinear.apply(h, self.W2, None), h

    def target(
        self, v: Float[Tensor, "instances batch features"], task: str
    ) -> Float[Tensor, "instances batch outputs"]:
        """decoder: v itself; reprojector: E_out v (a second embedder); abs: |v| (v is the signed input)."""
        if task == "decoder":
            return v
        if task == "abs":
            return v.abs()
        if task == "reprojector":
            return einsum(v, self.E_out, EMBED)
        raise ValueError(f"field 'task': must be one of 'decoder', 'reprojector', 'abs' (got {task!r})")

    def losses(
        self, v: Float[Tensor, "instances batch features"], task: str, with_l1: bool = True
    ) -> tuple[Float[Tensor, " instances"], Float[Tensor, " instances"] | None]:
        """Per-instance task loss (sum over outputs of the squared error, mean over the batch) and L1 of h.

        The L1 term (sum of |h| over neurons, mean over the batch) is skipped when no instance uses it.
        """
        out, h = self(v)
        y = self.target(v, task)
        B = v.shape[1]
        task_loss = SquaredError.apply(out, y) / B
        l1 = h.abs().sum(dim=(1, 2)) / B if with_l1 else None
        return task_loss, l1

    def sample_losses(
        self, v: Float[Tensor, "instances batch features"], task: str
    ) -> Float[Tensor, "instances batch"]:
        """Each sample's task loss (what ``losses`` gives for a batch of that one sample), all in one pass."""
        out, _ = self(v)
        return (out - self.target(v, task)).pow(2).sum(-1)

    def decayed_params(self) -> list[Tensor]:
        """The first-layer bias: the only tensor bias decay acts on (paper's code)."""
        return [self.b1]

    def state_tensors(self) -> dict[str, Tensor]:
        """Everything needed to rebuild the model, with the instance axis (parameters and embedders)."""
        out = {"W1": self.W1.detach(), "b1": self.b1.detach(), "W2": self.W2.detach(), "E": self.E}
        if self.E_out.numel():
            out["E_out"] = self.E_out
        return out

    @classmethod
    def from_tensors(cls, t: dict[str, Tensor], nonlinearity: str) -> "EMModel":
        return cls(t["W1"].clone(), t["b1"].clone(), t["W2"].clone(), t["E"], t.get("E_out"), nonlinearity)
