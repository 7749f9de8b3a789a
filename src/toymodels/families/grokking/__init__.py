"""The grokking family: modular arithmetic as in *Progress measures for grokking via mechanistic interpretability*
(Nanda, Chan, Lieberum, Smith, Steinhardt 2023; docs/papers.md §5).

The data and each instance's split (``data.py``), the paper's one-layer transformer and a cheap MLP (``model.py``),
the Fourier measures (``fourier.py``), the metrics at checkpoints (``evaluate.py``), what a finished folder says
(``analysis.py``: when accuracy saturates, the final key frequencies, restricted / excluded loss over training, the
phases), the presets (``presets.py``), the figures, the report section, the dashboard panel and the conversion to
TransformerLens (``lens.py``); here, the family object the rest of the package reaches through the registry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from toymodels.config import ExperimentConfig
from toymodels.config.registry import register
from toymodels.families.base import DashboardPanel, FigureSpec, Presentation
from toymodels.families.grokking import presets  # noqa: F401  (registers the GROK-* presets)
from toymodels.families.grokking.config import GrokkingConfig  # registers the section
from toymodels.families.grokking.data import GrokSampler, n_train
from toymodels.families.grokking.evaluate import grok_evaluate
from toymodels.families.grokking.model import ModularModel, build, from_tensors
from toymodels.results.store import Results

__all__ = ["GROKKING", "GrokkingFamily"]

DESCRIPTIONS = {
    "train_acc": "accuracy on the instance's own training pairs",
    "test_acc": "accuracy on the pairs it never trained on (its test set)",
    "train_loss": "cross entropy on the training pairs (float64)", "test_loss": "cross entropy on the test pairs",
    "weight_norm": "sum of squared weights, every parameter (falls during circuit formation and cleanup)",
    "embed_gini": "Gini coefficient of the norms of the embedding's Fourier components (1: concentrated)",
    "logit_gini": "Gini coefficient of the norms of W_L's Fourier components (W_L = neurons -> logits)",
    "n_key_freqs": "frequencies whose embedding norm is at least 1/4 of the largest (few once grokked)",
    "top_freq": "the embedding's strongest frequency k (w = 2 pi k / P)",
    "restricted_loss": "loss with only the key frequencies' (a+b) waves and the constant kept, on every pair (this "
                       "checkpoint's own key frequencies; the paper's curve, with the final model's, is "
                       "analysis.progress_measures)",
    "excluded_loss": "training loss with the key frequencies' (a+b) waves removed (this checkpoint's own)",
    "neuron_fve": "mean over neurons of the variance share their best frequency explains",
    "neurons_explained": "share of neurons with more than 85% of their variance in one frequency",
}


class GrokkingFamily:
    """(a op b) mod P from "a b =": the paper's one-layer ReLU transformer or a two-layer MLP, full-batch."""

    name = "grokking"
    summary = "modular arithmetic (a+b, a-b, a*b mod P): the grokking paper's 1-layer transformer or an MLP"
    tasks = ("decoder",)  # the shared task field is the superposition families'; the arithmetic is `operation`
    fields = tuple(GrokkingConfig.model_fields)
    presentation = Presentation(
        labels={"loss": "train loss (full batch)", "final_loss": "final train loss", "train_acc": "train accuracy",
                "test_acc": "test accuracy", "test_loss": "test loss", "weight_norm": "sum of squared weights",
                "embed_gini": "Gini of W_E's Fourier norms", "logit_gini": "Gini of W_L's Fourier norms",
                "n_key_freqs": "key frequencies", "restricted_loss": "restricted loss (own keys)",
                "excluded_loss": "excluded loss (own keys)", "neurons_explained": "neurons explained by 1 frequency"},
        summary_metrics=("final_loss", "train_acc", "test_acc", "test_loss", "n_key_freqs", "embed_gini",
                         "weight_norm"),
        training_metrics=("loss", "test_loss", "test_acc", "restricted_loss", "excluded_loss", "embed_gini",
                          "weight_norm"),
        swept_metrics=("test_acc", "test_loss", "embed_gini", "weight_norm"),
        table_metrics=("train_acc", "test_acc", "test_loss", "n_key_freqs", "embed_gini", "weight_norm"),
        descriptions=DESCRIPTIONS,
    )

    def check(self, cfg: ExperimentConfig) -> str | None:
        g = cfg.grokking
        if g.modulus % 2 == 0:
            return f"field 'modulus': must be odd for model 'grokking' (the Fourier basis of docs/papers.md §5.3; " \
                   f"got {g.modulus})"
        if g.grok_arch == "transformer" and g.d_model % g.n_heads:
            return f"field 'n_heads': must divide d_model={g.d_model} (got {g.n_heads})"
        if cfg.optim.batch_size < n_train(cfg):
            return (f"field 'batch_size': model 'grokking' trains full-batch, so it must be at least the training "
                    f"pairs floor(train_frac P^2) = {n_train(cfg)} (got {cfg.optim.batch_size}); rows beyond an "
                    "instance's own pairs are padding")
        return None

    def build(self, cfgs: Sequence[ExperimentConfig]) -> ModularModel:
        return build(cfgs)

    def from_tensors(self, tensors: dict[str, Tensor], cfg: ExperimentConfig) -> ModularModel:
        return from_tensors(tensors, [cfg])

    def sampler(self, cfg: ExperimentConfig, device: torch.device) -> GrokSampler:
        """This instance's rows: every training pair each step when ``batch_size`` >= its training pairs."""
        return GrokSampler(cfg, cfg.optim.batch_size, device)

    def input_size(self, cfg: ExperimentConfig) -> int:
        return 3

    def flops_per_step(self, cfg: ExperimentConfig) -> float:
        """The per-row products (forward and backward: W_out W_U and the sparse mix of 8 table rows) and the shared
        tables (model.py's docstring)."""
        g = cfg.grokking
        rows = cfg.optim.batch_size
        P, d, n = g.modulus, g.d_model, g.d_mlp
        if g.grok_arch == "mlp":
            return 6.0 * rows * n * P
        V = P + 1
        tables = 2 * 3 * V * d * d + 3 * V * V * d + 3 * V * d * (n + P) + d * (n + P) * d + n * d * P
        return 6.0 * rows * (n * P + 8 * (n + P)) + 6.0 * tables

    def instance_bytes(self, cfg: ExperimentConfig) -> int:
        """Activations per row (neurons, logits in float32 and float64, the attention's values), the tables, the
        parameters and their optimizer state."""
        g = cfg.grokking
        P, d, n = g.modulus, g.d_model, g.d_mlp
        per_row = 4 * (3 * n + 3 * P + 4 * d) + 8 * 3 * P
        params = (P + 1) * d * 6 + 4 * d * d + 2 * d * n + d * P + 2 * P * n
        tables = 4 * ((P + 1) ** 2 * 12 + 3 * (P + 1) * d)
        return int(cfg.optim.batch_size * per_row + 16 * params + 3 * tables)

    def evaluate(self, cfgs: Sequence[ExperimentConfig], tensors: dict[str, Tensor]) -> dict[str, Tensor]:
        return grok_evaluate(cfgs, tensors)

    def figures(self) -> list[FigureSpec]:
        # deferred: the figures import matplotlib, which training (and SLURM workers) never need
        from toymodels.families.grokking.figures import FIGURES

        return list(FIGURES)

    def optimizer_options(self, cfg: ExperimentConfig) -> dict[str, Any]:
        """Adam's betas of the group (the paper's code: (0.9, 0.98)); read by the training loop."""
        return {"betas": (cfg.grokking.adam_beta1, cfg.grokking.adam_beta2)}

    def report_html(self, results: Results) -> str:
        """Per instance: when train and test accuracy saturated, the final key frequencies, the phases."""
        # deferred: the section reads every checkpoint's tables (pandas), which training never needs
        from toymodels.families.grokking.report import grokking_html

        return grokking_html(results)

    def dashboard_panel(self) -> DashboardPanel:
        """The dashboard's panel of one instance: its curves with the phases, the Fourier spectrum, the neurons."""
        # deferred: the panel draws with plotly, the optional `app` extra, which training never imports
        from toymodels.families.grokking.dashboard import PANEL

        return PANEL


GROKKING = register(GrokkingFamily())


def training_rows(cfg: ExperimentConfig) -> int:
    """How many pairs ``cfg`` trains on (a preset's ``batch_size`` is the largest of its grid: full batch)."""
    return n_train(cfg)
