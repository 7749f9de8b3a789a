"""The EM family: the two-layer model of *Engineering Monosemanticity in Toy Models* (docs/papers.md §1.3).

Everything the package needs to know about it: the model (``model.py``), its metrics at checkpoints
(``evaluate.py``), its own figures (``figures.py``: single-feature activations, biases, multi-feature probe,
mechanism), its section of ``report.html`` (``report.py``: the mechanism numbers), its dashboard panel
(``dashboard.py``: single-feature activations with biases, the mechanism; plotly), its presets (``presets.py``:
Table 1 and OPT1) and, here, the family object that train, sweep, report and dashboard reach through the registry,
with the layers an SAE can read (the embedding ``x`` and the hidden layer ``h``).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor

from toymodels import metrics
from toymodels.config import ExperimentConfig
from toymodels.engine.counter_rng import CounterFeatureSampler, group_feature_sampler
from toymodels.engine.data import DATA_STREAM, Sampler, feature_sampler, generator
from toymodels.config.firing import FIRING_FIELDS
from toymodels.config.registry import register
from toymodels.families.base import (ActivationLayer, DashboardPanel, FigureSpec, Presentation, ReluLayers,
                                     SweptOverlay)
from toymodels.families.em.evaluate import PROBE_SAMPLES, em_evaluate, em_probe, probe_inputs
from toymodels.families.em.model import EMModel
from toymodels.families.em.polytope import em_relu_layers
from toymodels.families.em import presets  # noqa: F401  (registers Table 1's presets and OPT1)
from toymodels.results.store import Results

__all__ = ["EM", "EMFamily", "EMModel", "PROBE_SAMPLES", "em_evaluate", "em_probe", "probe_inputs"]


def probe_confirmed_mono(rows: Any) -> Any:
    """Per instance row: the mono neurons per feature that the multi-feature probe confirms, (mono_neurons -
    false_mono) / N (the dotted line on the swept figure's mono panel)."""
    return (rows["mono_neurons"].to_numpy(dtype=float) - rows["false_mono"].to_numpy(dtype=float)) / rows[
        "N"].to_numpy(dtype=float)


def embedding_truth(t: dict[str, Tensor], cfg: ExperimentConfig) -> Tensor:
    """Feature j's true direction in the embedding: column E_j (one row per feature)."""
    return t["E"][0].T


def hidden_truth(t: dict[str, Tensor], cfg: ExperimentConfig) -> Tensor:
    """Feature j's true direction in the hidden layer: its single-feature response h(e_j)."""
    sfa = metrics.single_feature_activations(t["W1"].double(), t["b1"].double(), t["E"].double(),
                                             cfg.model.nonlinearity)
    return sfa[0].T.float()


#: the layers an SAE can read in a trained EM model (``EMFamily.activation_layers``)
EM_LAYERS = {"x": ActivationLayer(lambda c: c.model.m, lambda model, v: model.embed(v), embedding_truth),
             "h": ActivationLayer(lambda c: c.model.k, lambda model, v: model(v)[1], hidden_truth)}


class EMFamily:
    """Features -> fixed random embedding E -> Linear+bias -> ReLU/GeLU/SoLU -> Linear, on three tasks."""

    name = "em"
    summary = "two-layer model of Engineering Monosemanticity (embedding, k neurons, decoder/reprojector/abs)"
    tasks = ("decoder", "reprojector", "abs")
    fields = ("N", "eps", "distribution", "power_law_exponent", "m", "k", "nonlinearity", "bias_offset", "task",
              *FIRING_FIELDS)
    presentation = Presentation(
        labels={"loss": "task loss", "final_loss": "final loss", "mono_per_feature": "mono neurons / feature",
                "features_covered": "features covered", "mean_bias": "mean bias", "dead_neurons": "dead neurons",
                "dims_per_feature": "dimensions per feature D*"},
        summary_metrics=("final_loss", "mono_per_feature", "features_covered", "mean_bias", "false_mono"),
        training_metrics=("loss", "mono_per_feature", "mean_bias"),
        swept_metrics=("mono_per_feature", "features_covered", "final_loss"),
        table_metrics=("mono_per_feature", "features_covered", "mean_bias", "dead_neurons", "mono_neurons"),
        swept_overlays=(SweptOverlay("mono_per_feature", "mono beyond multi-feature probe",
                                     ("mono_neurons", "false_mono"), probe_confirmed_mono),),
        descriptions={
            "mono_per_feature": "monosemantic neurons (> 99.9% of a neuron's single-feature activation on one "
                                "feature) divided by the number of features N; can exceed 1",
            "features_covered": "fraction of the features that have at least one monosemantic neuron",
            "mean_bias": "mean hidden-layer bias b1 over the neurons (negative biases let neurons threshold)",
            "false_mono": "monosemantic neurons that the multi-feature probe catches firing without their own "
                          "feature (on all-but-one or random training-like inputs): mono only on lone features",
            "mono_neurons": "count of monosemantic neurons", "dead_neurons": "neurons that fire for no lone feature",
        },
    )

    def check(self, cfg: ExperimentConfig) -> str | None:
        # the embedding is an SVD of an N x m Gaussian: at most N orthogonal directions
        if cfg.model.m > cfg.data.N:
            return f"field 'm': must be at most N={cfg.data.N} for model 'em' (got {cfg.model.m})"
        return None

    def build(self, cfgs: Sequence[ExperimentConfig]) -> EMModel:
        return EMModel.init(cfgs)

    def from_tensors(self, tensors: dict[str, Tensor], cfg: ExperimentConfig) -> EMModel:
        return EMModel.from_tensors(tensors, cfg.model.nonlinearity)

    def sampler(self, cfg: ExperimentConfig, device: torch.device) -> Sampler:
        """This instance's batches: its feature law (``firing`` section), its own data stream; abs draws v1 - v2."""
        gen = generator(cfg.run.seed, DATA_STREAM, device)
        return feature_sampler(cfg.data, cfg.firing, cfg.optim.batch_size, gen, device, signed=cfg.task.task == "abs")

    def group_sampler(self, cfgs: Sequence[ExperimentConfig], device: torch.device) -> CounterFeatureSampler:
        """The whole group's batches in one pass (config field ``sampler``: 'counter', a GPU's default)."""
        return group_feature_sampler(cfgs, device, signed=cfgs[0].task.task == "abs")

    def input_size(self, cfg: ExperimentConfig) -> int:
        return cfg.data.N

    def flops_per_step(self, cfg: ExperimentConfig) -> float:
        """Forward, and backward without the input gradient: embedding, W1 (fwd + dW1), W2 (fwd, dW2, dh)."""
        d, mo, o = cfg.data, cfg.model, cfg.optim
        out = mo.m if cfg.task.task == "reprojector" else d.N
        return 2.0 * o.batch_size * (d.N * mo.m + 2 * mo.m * mo.k + 3 * mo.k * out)

    def instance_bytes(self, cfg: ExperimentConfig) -> int:
        """A rough upper bound of one instance's training memory (activations dominate)."""
        d, mo, o = cfg.data, cfg.model, cfg.optim
        per_sample = 3 * d.N + mo.m + 3 * mo.k
        params = mo.k * (mo.m + 1 + d.N) + d.N * (mo.m + 1)
        return 4 * (4 * o.batch_size * per_sample + 6 * params + d.N * mo.m * 2)

    def evaluate(self, cfgs: Sequence[ExperimentConfig], tensors: dict[str, Tensor]) -> dict[str, Tensor]:
        return em_evaluate(cfgs, tensors)

    def figures(self) -> list[FigureSpec]:
        # deferred: the figures import matplotlib, which training (and SLURM workers) never need
        from toymodels.families.em.figures import FIGURES

        return list(FIGURES)

    def activation_layers(self) -> dict[str, ActivationLayer]:
        """The embedding ``x`` (m dims; truth: the columns of E) and the hidden layer ``h`` (k dims; truth: each
        feature's single-feature response h(e_j), the neuron metrics' reference) an SAE can read."""
        return EM_LAYERS

    def report_html(self, results: Results) -> str:
        """The mechanism numbers of the most monosemantic instance (``report.mechanism_html``)."""
        # deferred: the mechanism analysis reads the results tables (pandas), which training never needs
        from toymodels.families.em.report import mechanism_html

        return mechanism_html(results)

    def dashboard_panel(self) -> DashboardPanel:
        """The dashboard's panel of one instance: single-feature activations with biases, the neuron mechanism."""
        # deferred: the panel draws with plotly, the optional `app` extra, which training never imports
        from toymodels.families.em.dashboard import PANEL

        return PANEL

    def relu_layers(self, tensors: dict[str, Tensor], cfgs: Sequence[ExperimentConfig]) -> ReluLayers | None:
        """The hidden ReLU layer reading the embedding, for the polytope lens (``em/polytope.py``)."""
        return em_relu_layers(tensors, cfgs)


EM = register(EMFamily())
