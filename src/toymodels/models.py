"""Toy models with a leading instance axis ``I``: many independent models in one set of tensors.

``EMModel`` is the two-layer model of *Engineering Monosemanticity in Toy Models* (Jermyn, Schiefer, Hubinger 2022):
features v -> fixed embedding x = E v -> h = act(W1 x + b1) -> out = W2 h. Every parameter has shape (I, ...);
losses are returned per instance so that summing them gives each instance its own gradient.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from einops import einsum
from jaxtyping import Float
from torch import Tensor, nn

from .config import ExperimentConfig
from .metrics import activation
from .data import DATA_STREAM, INIT_STREAM, FeatureSampler, feature_probs, generator, make_embedder


def _uniform(shape: tuple[int, ...], bound: float, gen: torch.Generator) -> Tensor:
    return (torch.rand(shape, generator=gen) * 2 - 1) * bound


class EMModel(nn.Module):
    """I independent copies of the EM two-layer model.

    Parameters: W1 (I, k, m), b1 (I, k), W2 (I, out, k). Buffers: E (I, m, N) input embedder and, for the
    re-projector task, E_out (I, m, N) the second, independent embedder whose image is the target.
    """

    param_names = ("W1", "b1", "W2")

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

    @staticmethod
    def sampler(cfg: ExperimentConfig, device: torch.device) -> FeatureSampler:
        """This instance's batches: its feature distribution, its own data stream; abs draws v1 - v2 at eps/2."""
        d = cfg.data
        probs = feature_probs(d.N, d.eps, d.distribution, d.power_law_exponent)
        gen = generator(cfg.run.seed, DATA_STREAM, device)
        return FeatureSampler(probs, cfg.optim.batch_size, gen, device, signed=cfg.task.task == "abs")

    @property
    def n_instances(self) -> int:
        return self.W1.shape[0]

    def embed(self, v: Float[Tensor, "I B N"]) -> Float[Tensor, "I B m"]:
        return einsum(v, self.E, "I B N, I m N -> I B m")

    def forward(self, v: Float[Tensor, "I B N"]) -> tuple[Float[Tensor, "I B out"], Float[Tensor, "I B k"]]:
        x = self.embed(v)
        # baddbmm fuses the bias add into the GEMM (the hot path of every step)
        pre = torch.baddbmm(self.b1.unsqueeze(1), x, self.W1.transpose(1, 2))
        h = activation(pre, self.nonlinearity)
        out = torch.bmm(h, self.W2.transpose(1, 2))
        return out, h

    def target(self, v: Float[Tensor, "I B N"], task: str) -> Float[Tensor, "I B out"]:
        """decoder: v itself; reprojector: E_out v (a second embedder); abs: |v| (v is the signed input)."""
        if task == "decoder":
            return v
        if task == "abs":
            return v.abs()
        if task == "reprojector":
            return einsum(v, self.E_out, "I B N, I m N -> I B m")
        raise ValueError(f"field 'task': must be one of 'decoder', 'reprojector', 'abs' (got {task!r})")

    def losses(
        self, v: Float[Tensor, "I B N"], task: str, with_l1: bool = True
    ) -> tuple[Float[Tensor, " I"], Float[Tensor, " I"] | None]:
        """Per-instance task loss (sum over outputs of the squared error, mean over the batch) and L1 of h.

        The L1 term (sum of |h| over neurons, mean over the batch) is skipped when no instance uses it.
        """
        out, h = self(v)
        y = self.target(v, task)
        B = v.shape[1]
        task_loss = (out - y).pow(2).sum(dim=(1, 2)) / B
        l1 = h.abs().sum(dim=(1, 2)) / B if with_l1 else None
        return task_loss, l1

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


MODELS: dict[str, type[nn.Module]] = {"em": EMModel}


def build_model(cfgs: Sequence[ExperimentConfig]) -> nn.Module:
    """The model family of a group of instances (all share ``model``)."""
    kind = cfgs[0].model.model
    if kind not in MODELS:
        raise NotImplementedError(f"field 'model': '{kind}' is not available yet; available: {', '.join(MODELS)}")
    return MODELS[kind].init(cfgs)


# ---------------------------------------------------------------------------------------------------------------
# Superposition families: Toy Models of Superposition (Elhage et al. 2022) and the quadratic model of
# Polysemanticity and Capacity in Neural Networks (Scherlis et al. 2022). shared/PAPERS.md §2 and §3.

from .data import KurtosisSampler, importance as _importance  # noqa: E402


def _xavier_normal(m: int, n: int, gen: torch.Generator) -> Tensor:
    """xavier_normal_ of ONE (m, n) matrix: std sqrt(2 / (m + n)).

    The TMS notebook applies xavier_normal_ to the joint (instances, n, m) tensor, whose fans then depend on the
    number of instances (std sqrt(2 / (m (n + I)))); here each instance gets the single-matrix value, so an
    instance starts the same whatever group it trains in.
    """
    return torch.randn((m, n), generator=gen) * math.sqrt(2.0 / (m + n))


def _importances(cfgs: Sequence[ExperimentConfig]) -> Tensor:
    return torch.stack([
        _importance(c.data.N, c.data.importance_decay, c.data.importance_ratio).float() for c in cfgs
    ])


class _WeightsBiasImportance(nn.Module):
    """Shared parts of the superposition families: parameters W, b and the feature importances as a buffer."""

    param_names = ("W", "b")

    def __init__(self, W: Tensor, b: Tensor, importance: Tensor):
        super().__init__()
        self.W = nn.Parameter(W)
        self.b = nn.Parameter(b)
        self.register_buffer("importance", importance)

    def decayed_params(self) -> list[Tensor]:
        return [self.b]

    def state_tensors(self) -> dict[str, Tensor]:
        return {"W": self.W.detach(), "b": self.b.detach(), "importance": self.importance}


class TMSModel(_WeightsBiasImportance):
    """I independent TMS toy models (Elhage et al. 2022, shared/PAPERS.md §2.1).

    W (I, m, n) holds feature i's embedding as column W_i; b (I, n). Variants (config field ``tms_variant``):

    * ``relu`` (the ReLU output model): x' = ReLU(W^T W x + b);
    * ``linear``: x' = W^T W x + b;
    * ``hidden_relu`` (privileged basis): h = ReLU(W x), x' = ReLU(W^T h + b).

    Loss per instance: mean over the batch AND the features of I_i (x_i - x'_i)^2, as in the official notebook
    (``einops.reduce(error, 'b i f -> i', 'mean')``), so it is the paper's sum divided by B n; summed over instances
    by the training loop. The importance I_i = importance_decay^i (last one times ``importance_ratio``) is a
    per-instance buffer. Inputs: x_i ~ U[0, 1) with probability ``eps`` (= 1 - S), else 0 (``FeatureSampler``).
    Init: W xavier-normal per instance (see :func:`_xavier_normal`), b = 0 (+ ``bias_offset``, default 0).
    The L1 term, when some instance uses ``l1``, is the sum over hidden units of |h| (h = W x, or ReLU(W x) for
    hidden_relu), mean over the batch. Bias decay (``bias_decay``) acts on b.
    """

    def __init__(self, W: Tensor, b: Tensor, importance: Tensor, variant: str = "relu"):
        if variant not in ("relu", "linear", "hidden_relu"):
            raise ValueError(f"field 'tms_variant': must be one of 'relu', 'linear', 'hidden_relu' (got {variant!r})")
        super().__init__(W, b, importance)
        self.variant = variant

    @classmethod
    def init(cls, cfgs: Sequence[ExperimentConfig]) -> "TMSModel":
        """One instance per config, each from its own seed's init stream, on CPU."""
        c0 = cfgs[0]
        N, m = c0.data.N, c0.model.m
        W, b = [], []
        for cfg in cfgs:
            g = generator(cfg.run.seed, INIT_STREAM)
            W.append(_xavier_normal(m, N, g))
            b.append(torch.zeros(N) + cfg.model.bias_offset)
        return cls(torch.stack(W), torch.stack(b), _importances(cfgs), c0.model.tms_variant)

    @staticmethod
    def sampler(cfg: ExperimentConfig, device: torch.device) -> FeatureSampler:
        d = cfg.data
        probs = feature_probs(d.N, d.eps, d.distribution, d.power_law_exponent)
        return FeatureSampler(probs, cfg.optim.batch_size, generator(cfg.run.seed, DATA_STREAM, device), device)

    @property
    def n_instances(self) -> int:
        return self.W.shape[0]

    def forward(self, x: Float[Tensor, "I B n"]) -> tuple[Float[Tensor, "I B n"], Float[Tensor, "I B m"]]:
        h = torch.bmm(x, self.W.transpose(1, 2))
        if self.variant == "hidden_relu":
            h = torch.relu(h)
        out = torch.baddbmm(self.b.unsqueeze(1), h, self.W)
        if self.variant != "linear":
            out = torch.relu(out)
        return out, h

    def losses(
        self, x: Float[Tensor, "I B n"], task: str = "decoder", with_l1: bool = True
    ) -> tuple[Float[Tensor, " I"], Float[Tensor, " I"] | None]:
        if task != "decoder":
            raise ValueError(f"field 'task': model 'tms' supports only task 'decoder' (got {task!r})")
        out, h = self(x)
        err = (out - x).pow(2).mul_(self.importance.unsqueeze(1))
        task_loss = err.mean(dim=(1, 2))
        l1 = h.abs().sum(dim=(1, 2)) / x.shape[1] if with_l1 else None
        return task_loss, l1

    @classmethod
    def from_tensors(cls, t: dict[str, Tensor], variant: str = "relu") -> "TMSModel":
        return cls(t["W"].clone(), t["b"].clone(), t["importance"].clone(), variant)


class QuadraticModel(_WeightsBiasImportance):
    """I independent quadratic models of P&C (Scherlis et al. 2022, Sec. 3; shared/PAPERS.md §3).

    Target y = sum_i v_i x_i^2 with v_i = importance_decay^i (the feature importances), prediction
    y_hat = ||W x||^2 + b with W (I, D, n) (D = config field ``m``) and a scalar bias b (I,). Inputs are independent
    with zero mean, unit variance and kurtosis K (``KurtosisSampler``; fields ``kurtosis``, ``input_kind``).
    Loss per instance: mean over the batch of (y_hat - y)^2. Its expectation has the closed form of
    :func:`quadratic_expected_loss`. Init: W xavier-normal per instance, b = 0 (+ ``bias_offset``).
    The L1 term (if used) is the sum of |W x| over the D hidden units, mean over the batch.
    """

    @classmethod
    def init(cls, cfgs: Sequence[ExperimentConfig]) -> "QuadraticModel":
        c0 = cfgs[0]
        N, D = c0.data.N, c0.model.m
        W, b = [], []
        for cfg in cfgs:
            g = generator(cfg.run.seed, INIT_STREAM)
            W.append(_xavier_normal(D, N, g))
            b.append(torch.tensor(float(cfg.model.bias_offset)))
        return cls(torch.stack(W), torch.stack(b), _importances(cfgs))

    @staticmethod
    def sampler(cfg: ExperimentConfig, device: torch.device) -> KurtosisSampler:
        d = cfg.data
        gen = generator(cfg.run.seed, DATA_STREAM, device)
        return KurtosisSampler(d.N, d.kurtosis, d.input_kind, cfg.optim.batch_size, gen, device)

    @property
    def n_instances(self) -> int:
        return self.W.shape[0]

    def forward(self, x: Float[Tensor, "I B n"]) -> tuple[Float[Tensor, "I B"], Float[Tensor, "I B D"]]:
        h = torch.bmm(x, self.W.transpose(1, 2))
        return h.pow(2).sum(-1) + self.b.unsqueeze(1), h

    def target(self, x: Float[Tensor, "I B n"]) -> Float[Tensor, "I B"]:
        return torch.bmm(x.pow(2), self.importance.unsqueeze(-1)).squeeze(-1)

    def losses(
        self, x: Float[Tensor, "I B n"], task: str = "decoder", with_l1: bool = True
    ) -> tuple[Float[Tensor, " I"], Float[Tensor, " I"] | None]:
        if task != "decoder":
            raise ValueError(f"field 'task': model 'quadratic' supports only task 'decoder' (got {task!r})")
        y_hat, h = self(x)
        task_loss = (y_hat - self.target(x)).pow(2).mean(dim=1)
        l1 = h.abs().sum(dim=(1, 2)) / x.shape[1] if with_l1 else None
        return task_loss, l1

    @classmethod
    def from_tensors(cls, t: dict[str, Tensor]) -> "QuadraticModel":
        return cls(t["W"].clone(), t["b"].clone(), t["importance"].clone())


def quadratic_expected_loss(
    W: Float[Tensor, "*I D n"], b: Float[Tensor, "*I"], v: Float[Tensor, "*I n"], kurtosis: float | Tensor,
) -> Float[Tensor, "*I"]:
    """Exact expected loss E[(||W x||^2 + b - sum_i v_i x_i^2)^2] of the quadratic model (P&C, Sec. 3).

    For independent x_i with E x_i = 0, E x_i^2 = 1, E x_i^4 = K (odd moments do not enter), with M = W^T W and
    A = M - diag(v):  E[(x^T A x + b)^2] = K sum_i A_ii^2 + sum_{i != k} A_ii A_kk + 2 sum_{i != j} A_ij^2
    + 2 b tr A + b^2, i.e.

        L = (K - 1) sum_i (v_i - M_ii)^2 + 2 sum_{i != j} M_ij^2 + (b + sum_i (M_ii - v_i))^2.

    The last term vanishes at the optimal bias b* = sum_i (v_i - M_ii), which gives PAPERS.md §3's formula.
    Batched over any leading axes; ``kurtosis`` a float or a tensor of the leading shape.
    """
    M = W.transpose(-1, -2) @ W
    diag = torch.diagonal(M, dim1=-2, dim2=-1)
    off = M.pow(2).sum(dim=(-2, -1)) - diag.pow(2).sum(-1)
    K = torch.as_tensor(kurtosis, dtype=W.dtype, device=W.device)
    return (K - 1) * (v - diag).pow(2).sum(-1) + 2 * off + (b + (diag - v).sum(-1)).pow(2)


def quadratic_capacity_theory(v: Float[Tensor, " n"], D: int, kurtosis: float) -> tuple[Float[Tensor, " n"], float]:
    """Optimal capacities and loss of the quadratic model from the capacity-allocation argument (PAPERS.md §3).

    At fixed capacity C_i, the best norm M_ii gives feature i the loss
    l_i(C) = 2 (K-1) v_i^2 (1 - C) / (2 + (K-3) C). For K > 3 this is convex in C, so the KKT point of
    min sum_i l_i(C_i) s.t. sum_i C_i <= D, 0 <= C_i <= 1 is the optimum:
    C_i = clip([sqrt(2) (K-1) v_i / sqrt(lambda) - 2] / (K-3), 0, 1) with lambda set by bisection so that
    sum_i C_i = D (capacities linear in v_i between the clips). For K <= 3 the returns are increasing (or constant
    at K = 3): the D most important features get C = 1, the rest 0. Assumes the allocation is realisable (a tight
    frame), which the direct minimisation :func:`quadratic_optimum` confirms at n = 8, D = 4 (tested).
    Returns (C, expected loss at the optimum).
    """
    v = v.to(torch.float64)
    n, K = v.numel(), float(kurtosis)
    if D >= n:
        return torch.ones(n, dtype=torch.float64), 0.0

    def loss_of(C: Tensor) -> float:
        return float((2 * (K - 1) * v.pow(2) * (1 - C) / (2 + (K - 3) * C)).sum())

    if K <= 3:
        C = torch.zeros(n, dtype=torch.float64)
        C[torch.argsort(v, descending=True)[:D]] = 1.0
        return C, loss_of(C)

    def caps(log_lam: float) -> Tensor:
        return ((math.sqrt(2) * (K - 1) * v / math.exp(0.5 * log_lam) - 2) / (K - 3)).clamp(0, 1)

    lo, hi = -60.0, 60.0  # sum C decreases in lambda
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if float(caps(mid).sum()) > D else (lo, mid)
    C = caps((lo + hi) / 2)
    return C, loss_of(C)


def quadratic_optimum(
    v: Float[Tensor, " n"], D: int, kurtosis: float, restarts: int = 8, steps: int = 300, seed: int = 0,
) -> tuple[Float[Tensor, "D n"], float]:
    """The lowest expected loss (bias at its optimum) found by minimising :func:`quadratic_expected_loss` directly.

    Deterministic full-gradient descent (Adam then L-BFGS) from ``restarts`` random starts in float64; returns the
    best W and its loss. It is the theory reference for the trained models' capacities (no sampling noise).
    """
    g = torch.Generator().manual_seed(seed)
    v = v.to(torch.float64)
    n = v.numel()
    W = (torch.randn(restarts, D, n, generator=g, dtype=torch.float64) * math.sqrt(2.0 / (D + n))).requires_grad_()
    opt = torch.optim.Adam([W], lr=0.03)
    zero_b = torch.zeros(restarts, dtype=torch.float64)

    def loss_fn(Wt: Tensor) -> Tensor:
        M = Wt.transpose(-1, -2) @ Wt
        b = (v - torch.diagonal(M, dim1=-2, dim2=-1)).sum(-1)  # optimal bias
        return quadratic_expected_loss(Wt, b + zero_b, v.expand(Wt.shape[0], n), kurtosis)

    for _ in range(steps):
        opt.zero_grad()
        loss_fn(W).sum().backward()
        opt.step()
    lbfgs = torch.optim.LBFGS([W], max_iter=300, tolerance_grad=1e-12, tolerance_change=1e-15,
                              line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        lbfgs.zero_grad()
        total = loss_fn(W).sum()
        total.backward()
        return total

    lbfgs.step(closure)
    with torch.no_grad():
        losses = loss_fn(W)
        best = int(losses.argmin())
        return W[best].detach().clone(), float(losses[best])


MODELS["tms"] = TMSModel
MODELS["quadratic"] = QuadraticModel
