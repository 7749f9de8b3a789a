"""The TMS family: the toy models of *Toy Models of Superposition* (Elhage et al. 2022, docs/papers.md §2.1).

The model (``TMSModel``), its metrics at checkpoints (``tms_evaluate``) and the family object the rest of the
package reaches through the registry; its feature geometry (``geometry.py``) drawn in the report (``figures.py``:
the hidden plane, W^T W with the feature norms, the D_i; ``report.py``: the D_i on the polytope fractions) and in
the dashboard (``dashboard.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import torch
from jaxtyping import Float
from torch import Tensor

from toymodels import metrics
from toymodels.config import ExperimentConfig
from toymodels.engine.counter_rng import CounterFeatureSampler, group_feature_sampler
from toymodels.engine.data import DATA_STREAM, INIT_STREAM, Sampler, feature_sampler, generator
from toymodels.config.firing import FIRING_FIELDS
from toymodels.config.registry import register
from toymodels.families.base import ActivationLayer, DashboardPanel, FigureSpec, Presentation, ReluLayers
from toymodels.families.tms.config import TMSConfig  # registers the section
from toymodels.families.common import WeightsBiasFamily, WeightsBiasImportance, importances, xavier_normal
from toymodels.families.tms import presets  # noqa: F401  (registers the TMS-* presets)
from toymodels.families.tms.polytope import tms_relu_layers

if TYPE_CHECKING:  # a type name only: the results floor is read by the hooks, not by training
    from toymodels.results.store import Results

#: ||W_i|| above this counts a TMS feature as represented (docs/papers.md §4 row 9).
TMS_REPRESENTED_NORM = 0.5


class TMSModel(WeightsBiasImportance):
    """I independent TMS toy models (Elhage et al. 2022, docs/papers.md §2.1).

    W (instances, hidden, features) holds feature i's embedding as column W_i; b (instances, features). Variants
    (config field ``tms_variant``):

    * ``relu`` (the ReLU output model): x' = ReLU(W^T W x + b);
    * ``linear``: x' = W^T W x + b;
    * ``hidden_relu`` (privileged basis): h = ReLU(W x), x' = ReLU(W^T h + b).

    Loss per instance: mean over the batch AND the features of I_i (x_i - x'_i)^2, as in the official notebook
    (``einops.reduce(error, 'b i f -> i', 'mean')``), so it is the paper's sum divided by B n; summed over instances
    by the training loop. The importance I_i = importance_decay^i (last one times ``importance_ratio``) is a
    per-instance buffer. Inputs: x_i ~ U[0, 1) with probability ``eps`` (= 1 - S), else 0 (``FeatureSampler``).
    Init: W xavier-normal per instance (see :func:`xavier_normal`), or normal with the std ``init_std`` where the
    config sets it (:func:`init_std`); b = 0 (+ ``bias_offset``, default 0).
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
            std = init_std(cfg)
            W.append(xavier_normal(m, N, g) if std is None else torch.randn((m, N), generator=g) * std)
            b.append(torch.zeros(N) + cfg.model.bias_offset)
        return cls(torch.stack(W), torch.stack(b), importances(cfgs), c0.tms.tms_variant)

    @property
    def n_instances(self) -> int:
        return self.W.shape[0]

    def forward(
        self, x: Float[Tensor, "instances batch features"]
    ) -> tuple[Float[Tensor, "instances batch features"], Float[Tensor, "instances batch hidden"]]:
        h = torch.bmm(x, self.W.transpose(1, 2))
        if self.variant == "hidden_relu":
            h = torch.relu(h)
        out = torch.baddbmm(self.b.unsqueeze(1), h, self.W)
        if self.variant != "linear":
            out = torch.relu(out)
        return out, h

    def losses(
        self, x: Float[Tensor, "instances batch features"], task: str = "decoder", with_l1: bool = True
    ) -> tuple[Float[Tensor, " instances"], Float[Tensor, " instances"] | None]:
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


def init_std(cfg: ExperimentConfig) -> float | None:
    """The std of W's normal init when the config sets one (field ``init_std``; e.g. the official notebook's
    xavier init over all its instances at once, ``tms.presets.notebook_init_std``), else None: xavier-normal of one
    (m, n) matrix."""
    std = cfg.tms.init_std
    return None if std is None else float(std)


def represented(W: Float[Tensor, "instances hidden features"]) -> Tensor:
    """Features whose column norm ||W_i|| exceeds ``TMS_REPRESENTED_NORM`` (docs/papers.md §4 row 9), (instances,
    features) bool."""
    return W.norm(dim=-2) > TMS_REPRESENTED_NORM


@torch.no_grad()
def tms_evaluate(cfgs: Sequence[ExperimentConfig], t: dict[str, Tensor]) -> dict[str, Tensor]:
    """TMS summaries per instance (docs/papers.md §2.1):

    ``represented_features`` (count of ||W_i|| > 0.5), ``dims_per_feature`` D* = m / ||W||_F^2,
    ``mean_capacity`` / ``sum_capacity`` (mean / sum over features of D_i = C_i, sum <= m),
    ``superposition`` (mean over represented features of sum_{j != i} (W_i_hat . W_j)^2; 0 if none),
    ``mean_bias``, ``min_bias``.
    """
    W, b = t["W"].double(), t["b"].double()
    rep = represented(W)
    cap = metrics.capacity(W)
    sup = metrics.superposition(W)
    n_rep = rep.sum(-1)
    return {
        "represented_features": n_rep.double(),
        "dims_per_feature": metrics.dims_per_feature(W),
        "mean_capacity": cap.mean(-1),
        "sum_capacity": cap.sum(-1),
        "superposition": (sup * rep).sum(-1) / n_rep.clamp(min=1),
        "mean_bias": b.mean(-1),
        "min_bias": b.amin(-1),
    }


def hidden_truth(t: dict[str, Tensor], cfg: ExperimentConfig) -> Tensor:
    """Feature i's true direction in the hidden layer: column W_i (one row per feature)."""
    return t["W"][0].T


#: the layers an SAE can read in a trained TMS model (``TMSFamily.activation_layers``)
TMS_LAYERS = {"h": ActivationLayer(lambda c: c.model.m, lambda model, v: model(v)[1], hidden_truth)}


class TMSFamily(WeightsBiasFamily):
    """ReLU(W^T W x + b) and its linear and hidden-ReLU variants, with feature importances."""

    name = "tms"
    summary = "toy model of superposition: x -> W x -> ReLU(W^T h + b) (variants linear, hidden_relu)"
    tasks = ("decoder",)
    fields = ("N", "eps", "distribution", "power_law_exponent", "importance_decay", "importance_ratio", "m",
              "bias_offset", *TMSConfig.model_fields, *FIRING_FIELDS)
    presentation = Presentation(
        labels={"loss": "task loss", "final_loss": "final loss", "dims_per_feature": "dimensions per feature D*",
                "superposition": "superposition", "represented_features": "represented features",
                "sum_capacity": "total capacity", "mean_capacity": "mean capacity"},
        summary_metrics=("final_loss", "represented_features", "dims_per_feature", "superposition"),
        training_metrics=("loss", "dims_per_feature", "superposition"),
        swept_metrics=("dims_per_feature", "superposition", "final_loss"),
        table_metrics=("represented_features", "dims_per_feature", "superposition", "mean_capacity"),
        descriptions={
            "represented_features": f"features whose column W_i has norm > {TMS_REPRESENTED_NORM} (embedded in "
                                    "the hidden space)",
            "dims_per_feature": "D* = m / ||W||_F^2: hidden dimensions per embedded feature (1/2: antipodal "
                                "pairs, 2/5: pentagons)",
            "superposition": "mean over represented features of sum_{j != i} (W_i_hat . W_j)^2: how much the "
                             "other features interfere along a feature's direction (0: a direction of its own)",
            "mean_capacity": "mean over features of the feature dimensionality D_i (1: a dedicated dimension, "
                             "0: not represented)",
            "sum_capacity": "sum over features of D_i (at most m)",
        },
    )

    def build(self, cfgs: Sequence[ExperimentConfig]) -> TMSModel:
        return TMSModel.init(cfgs)

    def from_tensors(self, tensors: dict[str, Tensor], cfg: ExperimentConfig) -> TMSModel:
        return TMSModel.from_tensors(tensors, cfg.tms.tms_variant)

    def sampler(self, cfg: ExperimentConfig, device: torch.device) -> Sampler:
        """This instance's batches: its feature law (``firing`` section) from its own data stream."""
        gen = generator(cfg.run.seed, DATA_STREAM, device)
        return feature_sampler(cfg.data, cfg.firing, cfg.optim.batch_size, gen, device)

    def group_sampler(self, cfgs: Sequence[ExperimentConfig], device: torch.device) -> CounterFeatureSampler:
        """The whole group's batches in one pass (config field ``sampler``: 'counter', a GPU's default)."""
        return group_feature_sampler(cfgs, device, signed=False)

    def evaluate(self, cfgs: Sequence[ExperimentConfig], tensors: dict[str, Tensor]) -> dict[str, Tensor]:
        return tms_evaluate(cfgs, tensors)

    def activation_layers(self) -> dict[str, ActivationLayer]:
        """The hidden layer ``h`` (W v, ReLU'd for hidden_relu; m dims) an SAE can read; truth: the columns of W."""
        return TMS_LAYERS

    def relu_layers(self, tensors: dict[str, Tensor], cfgs: Sequence[ExperimentConfig]) -> ReluLayers | None:
        """The ReLU output (and hidden ReLU) reading the hidden layer W x, for the polytope lens (``tms/polytope.py``)."""
        return tms_relu_layers(tensors, cfgs)

    def figures(self) -> list[FigureSpec]:
        """The feature geometry: the hidden plane (m = 2), W^T W with the feature norms, the D_i (``figures.py``)."""
        # deferred: the figures import matplotlib, which training (and SLURM workers) never need
        from toymodels.families.tms.figures import FIGURES

        return list(FIGURES)

    def report_html(self, results: Results) -> str:
        """The feature geometry of each setting's lowest-loss seed, on the polytope fractions (``report.py``)."""
        # deferred: the report section reads the results tables (pandas), which training never needs
        from toymodels.families.tms.report import geometry_html

        return geometry_html(results)

    def dashboard_panel(self) -> DashboardPanel:
        """The dashboard's panel of one instance: W^T W, norms and superposition, the hidden plane, the D_i."""
        # deferred: the panel draws with plotly, the optional `app` extra, which training never imports
        from toymodels.families.tms.dashboard import PANEL

        return PANEL


TMS = register(TMSFamily())
