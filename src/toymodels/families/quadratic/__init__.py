"""The quadratic family: the model of *Polysemanticity and Capacity in Neural Networks* (Scherlis et al. 2022,
docs/papers.md §3), its exact expected loss and capacity theory, its metrics at checkpoints and the family object;
its capacity view (``capacity.py``) drawn in the report (``figures.py``, ``report.py``) and the dashboard
(``dashboard.py``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence

import torch
from jaxtyping import Float
from torch import Tensor

from toymodels import metrics
from toymodels.config import ExperimentConfig
from toymodels.engine.data import DATA_STREAM, INIT_STREAM, KurtosisSampler, generator
from toymodels.config.registry import register
from toymodels.families.base import DashboardPanel, FigureSpec, Presentation, SweptOverlay
from toymodels.families.quadratic.config import QuadraticConfig  # registers the section
from toymodels.families.common import WeightsBiasFamily, WeightsBiasImportance, importances, xavier_normal
from toymodels.families.quadratic import presets  # noqa: F401  (registers PC-kurtosis)

if TYPE_CHECKING:  # a type name only: the results floor is read by the hooks, not by training
    from toymodels.results.store import Results

#: P&C capacities within this distance of 0 / 1 count as ignored / monosemantic; in between, fractional.
CAPACITY_TOLERANCE = 0.05


class QuadraticModel(WeightsBiasImportance):
    """I independent quadratic models of P&C (Scherlis et al. 2022, Sec. 3; docs/papers.md §3).

    Target y = sum_i v_i x_i^2 with v_i = importance_decay^i (the feature importances), prediction
    y_hat = ||W x||^2 + b with W (instances, hidden, features) (hidden: D = config field ``m``) and a scalar bias
    b (instances,). Inputs are independent with zero mean, unit variance and kurtosis K (``KurtosisSampler``;
    fields ``kurtosis``, ``input_kind``).
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
            W.append(xavier_normal(D, N, g))
            b.append(torch.tensor(float(cfg.model.bias_offset)))
        return cls(torch.stack(W), torch.stack(b), importances(cfgs))

    @staticmethod
    def sampler(cfg: ExperimentConfig, device: torch.device) -> KurtosisSampler:
        d = cfg.data
        gen = generator(cfg.run.seed, DATA_STREAM, device)
        q = cfg.quadratic
        return KurtosisSampler(d.N, q.kurtosis, q.input_kind, cfg.optim.batch_size, gen, device)

    @property
    def n_instances(self) -> int:
        return self.W.shape[0]

    def forward(
        self, x: Float[Tensor, "instances batch features"]
    ) -> tuple[Float[Tensor, "instances batch"], Float[Tensor, "instances batch hidden"]]:
        h = torch.bmm(x, self.W.transpose(1, 2))
        return h.pow(2).sum(-1) + self.b.unsqueeze(1), h

    def target(self, x: Float[Tensor, "instances batch features"]) -> Float[Tensor, "instances batch"]:
        return torch.bmm(x.pow(2), self.importance.unsqueeze(-1)).squeeze(-1)

    def losses(
        self, x: Float[Tensor, "instances batch features"], task: str = "decoder", with_l1: bool = True
    ) -> tuple[Float[Tensor, " instances"], Float[Tensor, " instances"] | None]:
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
    W: Float[Tensor, "*instances hidden features"], b: Float[Tensor, "*instances"],
    v: Float[Tensor, "*instances features"], kurtosis: float | Tensor,
) -> Float[Tensor, "*instances"]:
    """Exact expected loss E[(||W x||^2 + b - sum_i v_i x_i^2)^2] of the quadratic model (P&C, Sec. 3).

    For independent x_i with E x_i = 0, E x_i^2 = 1, E x_i^4 = K (odd moments do not enter), with M = W^T W and
    A = M - diag(v):  E[(x^T A x + b)^2] = K sum_i A_ii^2 + sum_{i != k} A_ii A_kk + 2 sum_{i != j} A_ij^2
    + 2 b tr A + b^2, i.e.

        L = (K - 1) sum_i (v_i - M_ii)^2 + 2 sum_{i != j} M_ij^2 + (b + sum_i (M_ii - v_i))^2.

    The last term vanishes at the optimal bias b* = sum_i (v_i - M_ii), which gives docs/papers.md §3's formula.
    Batched over any leading axes; ``kurtosis`` a float or a tensor of the leading shape.
    """
    M = W.transpose(-1, -2) @ W
    diag = torch.diagonal(M, dim1=-2, dim2=-1)
    off = M.pow(2).sum(dim=(-2, -1)) - diag.pow(2).sum(-1)
    K = torch.as_tensor(kurtosis, dtype=W.dtype, device=W.device)
    return (K - 1) * (v - diag).pow(2).sum(-1) + 2 * off + (b + (diag - v).sum(-1)).pow(2)


def quadratic_capacity_theory(
    v: Float[Tensor, " features"], D: int, kurtosis: float
) -> tuple[Float[Tensor, " features"], float]:
    """Optimal capacities and loss of the quadratic model from the capacity-allocation argument (docs/papers.md §3).

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
    v: Float[Tensor, " features"], D: int, kurtosis: float, restarts: int = 8, steps: int = 300, seed: int = 0,
) -> tuple[Float[Tensor, "hidden features"], float]:
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


_OPTIMAL_LOSS: dict[tuple, float] = {}


@torch.no_grad()
def quadratic_evaluate(cfgs: Sequence[ExperimentConfig], t: dict[str, Tensor]) -> dict[str, Tensor]:
    """P&C quadratic-model summaries per instance (docs/papers.md §3):

    ``sum_capacity`` (<= D) and ``mean_capacity``; counts of ``monosemantic_features`` (C_i > 0.95),
    ``fractional_features`` (0.05 <= C_i <= 0.95) and ``ignored_features`` (C_i < 0.05);
    ``expected_loss``: the closed-form expected loss of the model as it is (its own bias), comparable to
    ``final_loss``; ``optimal_loss``: the lowest expected loss any model of this size can reach
    (``quadratic_capacity_theory``).
    """
    W, b, v = t["W"].double(), t["b"].double(), t["importance"].double()
    K = torch.tensor([c.quadratic.kurtosis for c in cfgs], dtype=torch.float64)
    cap = metrics.capacity(W)
    opt_list = []
    for i, c in enumerate(cfgs):
        key = (c.model.m, c.quadratic.kurtosis, tuple(v[i].tolist()))
        if key not in _OPTIMAL_LOSS:  # the same for every checkpoint: computed once per process
            _OPTIMAL_LOSS[key] = quadratic_capacity_theory(v[i], c.model.m, c.quadratic.kurtosis)[1]
        opt_list.append(_OPTIMAL_LOSS[key])
    opt = torch.tensor(opt_list, dtype=torch.float64)
    tol = CAPACITY_TOLERANCE
    return {
        "sum_capacity": cap.sum(-1),
        "mean_capacity": cap.mean(-1),
        "monosemantic_features": (cap > 1 - tol).sum(-1).double(),
        "fractional_features": ((cap >= tol) & (cap <= 1 - tol)).sum(-1).double(),
        "ignored_features": (cap < tol).sum(-1).double(),
        "expected_loss": quadratic_expected_loss(W, b, v, K),
        "optimal_loss": opt,
    }


def optimal_loss(rows: Any) -> Any:
    """The swept figure's line of the theory's optimal loss: one value per instance row."""
    return rows["optimal_loss"]


class QuadraticFamily(WeightsBiasFamily):
    """y_hat = ||W x||^2 + b against y = sum_i v_i x_i^2, inputs of chosen kurtosis."""

    name = "quadratic"
    summary = "quadratic model of Polysemanticity and Capacity: ||W x||^2 + b, inputs of chosen kurtosis"
    tasks = ("decoder",)
    fields = ("N", "importance_decay", "importance_ratio", *QuadraticConfig.model_fields, "m", "bias_offset")
    presentation = Presentation(
        labels={"loss": "task loss", "final_loss": "final loss", "sum_capacity": "total capacity",
                "mean_capacity": "mean capacity", "monosemantic_features": "monosemantic features"},
        summary_metrics=("final_loss", "sum_capacity", "monosemantic_features", "expected_loss"),
        training_metrics=("loss", "sum_capacity", "monosemantic_features"),
        swept_metrics=("sum_capacity", "monosemantic_features", "final_loss"),
        table_metrics=("sum_capacity", "monosemantic_features", "fractional_features", "expected_loss"),
        swept_overlays=(SweptOverlay("final_loss", "optimal loss (theory)", ("optimal_loss",), optimal_loss),),
        descriptions={
            "sum_capacity": "sum over features of the capacity C_i = (W_i . W_i)^2 / sum_j (W_i . W_j)^2 (at most "
                            "the hidden size D)",
            "mean_capacity": "mean over features of the capacity C_i",
            "monosemantic_features": f"features with capacity C_i > {1 - CAPACITY_TOLERANCE:g} (a dimension of "
                                     "their own)",
            "fractional_features": f"features with {CAPACITY_TOLERANCE:g} <= C_i <= {1 - CAPACITY_TOLERANCE:g} "
                                   "(sharing dimensions: polysemantic)",
            "ignored_features": f"features with C_i < {CAPACITY_TOLERANCE:g}",
            "expected_loss": "the closed-form expected loss of the final model (no sampling noise; compare with "
                             "optimal_loss)",
            "optimal_loss": "the lowest expected loss a model of this size can reach (capacity-allocation theory)",
        },
    )

    def build(self, cfgs: Sequence[ExperimentConfig]) -> QuadraticModel:
        return QuadraticModel.init(cfgs)

    def from_tensors(self, tensors: dict[str, Tensor], cfg: ExperimentConfig) -> QuadraticModel:
        return QuadraticModel.from_tensors(tensors)

    def sampler(self, cfg: ExperimentConfig, device: torch.device) -> KurtosisSampler:
        return QuadraticModel.sampler(cfg, device)

    def evaluate(self, cfgs: Sequence[ExperimentConfig], tensors: dict[str, Tensor]) -> dict[str, Tensor]:
        return quadratic_evaluate(cfgs, tensors)

    def figures(self) -> list[FigureSpec]:
        """The capacity view: C_i against v_i with the theory's allocation, and W^T W (``figures.py``)."""
        # deferred: the figures import matplotlib, which training (and SLURM workers) never need
        from toymodels.families.quadratic.figures import FIGURES

        return list(FIGURES)

    def report_html(self, results: Results) -> str:
        """Each setting's capacity allocation against the theory's, feature by feature (``report.py``)."""
        # deferred: the report section reads the results tables (pandas), which training never needs
        from toymodels.families.quadratic.report import capacity_html

        return capacity_html(results)

    def dashboard_panel(self) -> DashboardPanel:
        """The dashboard's panel of one instance: its capacities against the theory's, W^T W, its losses."""
        # deferred: the panel draws with plotly, the optional `app` extra, which training never imports
        from toymodels.families.quadratic.dashboard import PANEL

        return PANEL


QUADRATIC = register(QuadraticFamily())
