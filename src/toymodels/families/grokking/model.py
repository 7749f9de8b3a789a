"""The grokking models with a leading instance axis (docs/papers.md §5.2): the paper's one-layer ReLU transformer and
a two-layer MLP on one-hot pairs, many independent instances in one set of tensors.

Inputs are rows of three tokens "a b =" (``data.py``: floats in the training loop, any integer dtype elsewhere),
outputs the P logits read at the last position and the ReLU neurons there. The loss is the cross entropy of those
logits in float64 (the paper's code: float32's log-softmax cannot resolve losses near 1e-7), averaged over the
instance's real rows (padding rows "= = =" weigh nothing), one loss per instance.

How the transformer is computed (the same function as the paper's, rearranged so that a training row costs about a
quarter of its multiply-adds): only the last position reaches the logits, so the scores of every (key token, query
token) pair come from one table; the attention output, through W_O and then W_in or W_U, is a sparse product of
each row's attention weights with tables over (head, position, token) (``mixing.py``); W_out W_U is one
(neurons, outputs) matrix, its output axis padded with zeros to a multiple of 16 (``padded``). Per row that leaves
one d_mlp x P product and a few table rows. Tests compare it with an ordinary implementation (1e-12 in float64) and
``lens.to_hooked_transformer`` with TransformerLens' own forward pass (1e-5).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from einops import einsum
from jaxtyping import Float
from torch import Tensor, nn

from toymodels.config import ExperimentConfig
from toymodels.engine.data import INIT_STREAM, generator
from toymodels.families.grokking.data import answers, operation_codes
from toymodels.families.grokking.mixing import mix

#: the tokens of one input: a, b and "="
POSITIONS = 3
#: the output axis is computed padded with zero columns to a multiple of this (one AVX-512 register of floats):
#: a (rows, 512) x (512, 128) product took 41 ms where (512, 113) took 54 ms on this project's CPU
OUTPUT_ALIGN = 16


def padded(W: Tensor) -> Tensor:
    """``W`` with zero columns appended to its last axis up to a multiple of ``OUTPUT_ALIGN`` (the logits are
    computed padded and sliced: the same values, a faster product)."""
    return F.pad(W, (0, -W.shape[-1] % OUTPUT_ALIGN))


class ModularModel(nn.Module):
    """What both architectures share: the loss over an instance's rows, the per-instance operation, the state."""

    param_names: tuple[str, ...] = ()

    def __init__(self, tensors: dict[str, Tensor], modulus: int, operation: Tensor):
        super().__init__()
        for name in self.param_names:
            setattr(self, name, nn.Parameter(tensors[name]))
        self.P = int(modulus)
        self.register_buffer("operation", operation.long().clone())  # per instance: an index of data.OPERATIONS

    @property
    def n_instances(self) -> int:
        return self.operation.shape[0]

    def forward(
        self, tokens: Float[Tensor, "instances batch positions"]
    ) -> tuple[Float[Tensor, "instances batch outputs"], Float[Tensor, "instances batch neurons"]]:
        raise NotImplementedError

    def row_losses(
        self, tokens: Tensor
    ) -> tuple[Float[Tensor, "instances batch"], Float[Tensor, "instances batch"],
               Float[Tensor, "instances batch neurons"]]:
        """(cross entropy of every row in float64, the rows' weights (0 for padding), the neurons)."""
        t = tokens.long()
        logits, neurons = self(t)
        labels = answers(t[..., 0], t[..., 1], self.operation.view(-1, 1), self.P)
        logp = torch.log_softmax(logits.double(), dim=-1)
        nll = -logp.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
        real = (t[..., 0] < self.P).double()
        return nll * real, real, neurons

    def losses(
        self, inputs: Float[Tensor, "instances batch positions"], task: str = "decoder", with_l1: bool = True
    ) -> tuple[Float[Tensor, " instances"], Float[Tensor, " instances"] | None]:
        """Per instance: the mean cross entropy over its real rows, and (``with_l1``) the mean over them of the
        neurons' summed |activation| (config field ``l1``)."""
        nll, real, neurons = self.row_losses(inputs)
        count = real.sum(1).clamp(min=1)
        loss = (nll.sum(1) / count).to(neurons.dtype)
        l1 = None
        if with_l1:
            l1 = ((neurons.abs().sum(-1) * real.to(neurons.dtype)).sum(1) / count.to(neurons.dtype))
        return loss, l1

    def sample_losses(self, inputs: Float[Tensor, "instances batch positions"], task: str = "decoder"
                      ) -> Float[Tensor, "instances batch"]:
        """Every row's loss in one pass (the training loop's divergence reference); 0 for padding rows."""
        return self.row_losses(inputs)[0].to(inputs.dtype)

    def decayed_params(self) -> list[Tensor]:
        return [self.b_in]

    def state_tensors(self) -> dict[str, Tensor]:
        return {name: getattr(self, name).detach() for name in self.param_names}


def _normal(shape: tuple[int, ...], std: float, gen: torch.Generator) -> Tensor:
    return torch.randn(shape, generator=gen) * std


class GrokTransformer(ModularModel):
    """I independent one-layer ReLU transformers of the paper (docs/papers.md §5.2), TransformerLens' layout.

    W_E (instances, vocab, d_model) with vocab = P + 1 (the last token is "="), W_pos (instances, positions,
    d_model), W_Q / W_K / W_V (instances, heads, d_model, d_head), W_O (instances, heads, d_head, d_model), W_in
    (instances, d_model, neurons), b_in (instances, neurons), W_out (instances, neurons, d_model), b_out
    (instances, d_model), W_U (instances, d_model, outputs) with outputs = P. No LayerNorm, no attention or
    unembedding biases, embed and unembed untied, causal attention scaled by 1/sqrt(d_head). Init as the paper's
    code: every matrix N(0, 1/d_model) except W_U, N(0, 1/(P+1)); biases 0.
    """

    param_names = ("W_E", "W_pos", "W_Q", "W_K", "W_V", "W_O", "W_in", "b_in", "W_out", "b_out", "W_U")

    @classmethod
    def init(cls, cfgs: Sequence[ExperimentConfig]) -> GrokTransformer:
        """One instance per config, each from its own seed's init stream (on the CPU)."""
        g0 = cfgs[0].grokking
        P, d, H, n = g0.modulus, g0.d_model, g0.n_heads, g0.d_mlp
        dh, V = d // H, P + 1
        shapes = {"W_E": (V, d), "W_pos": (POSITIONS, d), "W_Q": (H, d, dh), "W_K": (H, d, dh), "W_V": (H, d, dh),
                  "W_O": (H, dh, d), "W_in": (d, n), "W_out": (n, d), "W_U": (d, P)}
        stds = {name: 1 / math.sqrt(d) for name in shapes} | {"W_U": 1 / math.sqrt(V)}
        drawn: dict[str, list[Tensor]] = {name: [] for name in shapes}
        for cfg in cfgs:
            g = generator(cfg.run.seed, INIT_STREAM)
            for name, shape in shapes.items():
                drawn[name].append(_normal(shape, stds[name], g))
        tensors = {name: torch.stack(v) for name, v in drawn.items()}
        tensors |= {"b_in": torch.zeros(len(cfgs), n), "b_out": torch.zeros(len(cfgs), d)}
        return cls(tensors, P, operation_codes(cfgs))

    @property
    def n_heads(self) -> int:
        return self.W_Q.shape[1]

    def tables(self) -> dict[str, Tensor]:
        """What the rows share: the score table of every (key token, query token) pair, each (head, position,
        token)'s attention output mapped into the neurons and into the logits (``mixing``), the last token's
        direct path, and W_out W_U (the logit axis padded: ``padded``)."""
        I, dh = self.n_instances, self.W_Q.shape[-1]
        x = self.W_E.unsqueeze(1) + self.W_pos.unsqueeze(2)  # (instances, positions, vocab, d_model)
        q = einsum(x[:, -1], self.W_Q, "i vocab d, i heads d e -> i heads vocab e")
        k = einsum(x, self.W_K, "i positions vocab d, i heads d e -> i heads positions vocab e")
        scores = einsum(k, q, "i heads positions keys e, i heads queries e -> i heads positions keys queries")
        values = einsum(x, self.W_V, "i positions vocab d, i heads d e -> i heads positions vocab e")
        W_U = padded(self.W_U)
        O_in = einsum(self.W_O, self.W_in, "i heads e d, i d neurons -> i heads e neurons")
        O_U = einsum(self.W_O, W_U, "i heads e d, i d outputs -> i heads e outputs")
        direct = x[:, -1]  # the last position's own token, (instances, vocab, d_model)
        return {
            "scores": (scores / math.sqrt(dh)).reshape(I, -1),
            "R_in": einsum(values, O_in, "i heads positions vocab e, i heads e n -> i heads positions vocab n"),
            "R_U": einsum(values, O_U, "i heads positions vocab e, i heads e n -> i heads positions vocab n"),
            "direct_in": torch.baddbmm(self.b_in.unsqueeze(1), direct, self.W_in),
            "direct_U": torch.bmm(direct + self.b_out.unsqueeze(1), W_U),
            "out_U": torch.bmm(self.W_out, W_U),
        }

    def pattern(self, t: Tensor, tab: dict[str, Tensor]) -> Float[Tensor, "instances batch heads positions"]:
        """The last position's attention over the positions, per head, for tokens ``t``."""
        I, B, _ = t.shape
        H, V = self.n_heads, self.P + 1
        slot = (torch.arange(H, device=t.device).view(H, 1) * POSITIONS
                + torch.arange(POSITIONS, device=t.device).view(1, POSITIONS)) * V * V
        index = slot + (t.unsqueeze(2) * V + t[..., -1:, None])  # (instances, batch, heads, positions)
        return torch.softmax(torch.gather(tab["scores"], 1, index.reshape(I, -1)).view(I, B, H, POSITIONS), -1)

    def forward(
        self, tokens: Float[Tensor, "instances batch positions"]
    ) -> tuple[Float[Tensor, "instances batch outputs"], Float[Tensor, "instances batch neurons"]]:
        t = tokens.long()
        I, B, _ = t.shape
        H, V, P = self.n_heads, self.P + 1, self.P
        tab = self.tables()
        pattern = self.pattern(t, tab)
        # (head, position, token) -> its entry of the tables R (instances, heads, positions, vocab, ...)
        entry = (torch.arange(H, device=t.device).view(H, 1) * POSITIONS
                 + torch.arange(POSITIONS, device=t.device).view(1, POSITIONS)) * V + t.unsqueeze(2)
        tables = [tab["R_in"].flatten(1, 3), tab["R_U"].flatten(1, 3)]
        if bool((t[..., -1] == P).all()):  # every row ends in "=" (always in training): that position is dense
            mixed = mix(pattern[..., :2].reshape(I, B, -1), entry[..., :2].reshape(I, B, -1), tables)
            last = pattern[..., 2]  # (instances, batch, heads): the weights of the one "=" entry per head
            pre = torch.baddbmm(tab["direct_in"][:, P:P + 1], last, tab["R_in"][:, :, 2, P]) + mixed[0]
            skip = torch.baddbmm(tab["direct_U"][:, P:P + 1], last, tab["R_U"][:, :, 2, P]) + mixed[1]
        else:
            mixed = mix(pattern.reshape(I, B, -1), entry.reshape(I, B, -1), tables)
            rows = t[..., -1] + torch.arange(I, device=t.device).view(-1, 1) * V
            pre = F.embedding(rows, tab["direct_in"].flatten(0, 1)) + mixed[0]
            skip = F.embedding(rows, tab["direct_U"].flatten(0, 1)) + mixed[1]
        neurons = torch.relu(pre)
        logits = torch.baddbmm(skip, neurons, tab["out_U"])
        return logits[..., :P], neurons


class GrokMLP(ModularModel):
    """I independent two-layer MLPs on one-hot pairs: neurons = ReLU(W_in[0, a] + W_in[1, b] + b_in), logits =
    neurons W_out + b_out. W_in (instances, operands, tokens, neurons) holds each operand's one-hot weights (tokens
    = P), W_out (instances, neurons, outputs). Init: W_in N(0, 1/2) (a pre-activation of variance 1), W_out
    N(0, 1/d_mlp), biases 0. The cheap variant: about P + 2 d_mlp multiply-adds less per row than the transformer.
    """

    param_names = ("W_in", "b_in", "W_out", "b_out")

    @classmethod
    def init(cls, cfgs: Sequence[ExperimentConfig]) -> GrokMLP:
        g0 = cfgs[0].grokking
        P, n = g0.modulus, g0.d_mlp
        W_in, W_out = [], []
        for cfg in cfgs:
            g = generator(cfg.run.seed, INIT_STREAM)
            W_in.append(_normal((2, P, n), 1 / math.sqrt(2), g))
            W_out.append(_normal((n, P), 1 / math.sqrt(n), g))
        I = len(cfgs)
        tensors = {"W_in": torch.stack(W_in), "W_out": torch.stack(W_out), "b_in": torch.zeros(I, n),
                   "b_out": torch.zeros(I, P)}
        return cls(tensors, P, operation_codes(cfgs))

    def forward(
        self, tokens: Float[Tensor, "instances batch positions"]
    ) -> tuple[Float[Tensor, "instances batch outputs"], Float[Tensor, "instances batch neurons"]]:
        t = tokens.long().clamp(max=self.P - 1)  # padding rows ("=" as an operand) read token P - 1, weigh 0
        I, P = self.n_instances, self.P
        base = torch.arange(I, device=t.device).view(I, 1) * 2 * P
        table = self.W_in.reshape(I * 2 * P, -1)
        pre = F.embedding(t[..., 0] + base, table) + F.embedding(t[..., 1] + base + P, table)
        neurons = torch.relu(pre + self.b_in.unsqueeze(1))
        logits = torch.baddbmm(padded(self.b_out).unsqueeze(1), neurons, padded(self.W_out))
        return logits[..., :P], neurons


ARCHITECTURES: dict[str, type[ModularModel]] = {"transformer": GrokTransformer, "mlp": GrokMLP}


def build(cfgs: Sequence[ExperimentConfig]) -> ModularModel:
    """A model with one instance per config (their ``grok_arch``)."""
    return ARCHITECTURES[cfgs[0].grokking.grok_arch].init(cfgs)


def from_tensors(tensors: dict[str, Tensor], cfgs: Sequence[ExperimentConfig]) -> ModularModel:
    """The model of saved ``state_tensors`` (instance axis first), one config per instance."""
    cls = ARCHITECTURES[cfgs[0].grokking.grok_arch]
    return cls({k: v.clone() for k, v in tensors.items() if k in cls.param_names}, cfgs[0].grokking.modulus,
               operation_codes(list(cfgs)))
