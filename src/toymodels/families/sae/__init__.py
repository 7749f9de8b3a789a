"""The SAE family: sparse autoencoders trained on activations whose true features are known (dictionary learning,
docs/dictionary_learning.md).

An SAE is a family like the toy models: ``model = "sae"`` with an architecture (``sae_arch``: relu_l1, topk,
batchtopk, jumprelu; one module each, ``architecture.py`` has what they share and their registry), a width
(``sae_width``), a sparsity setting (``l1`` or ``sae_k``), and a source of activations (``sources.py``: a synthetic
dictionary of N features in m dims, or a layer of a trained toymodels instance). Many SAEs train as one batched job
like any sweep: width and architecture change tensor shapes and so split groups; k, l1, lr and seed vary inside one.
Every checkpoint is scored against the truth (``evaluate.py``), so the metrics land in ``instances.parquet`` and
``metrics.parquet``; the dashboard shows one SAE against the truth in the family's panel (``dashboard.py``).

Example:
    >>> cfg = ExperimentConfig.from_flat({"model": "sae", "N": 32, "m": 8, "sae_arch": "topk", "sae_width": 32,
    ...                                   "sae_k": 2, "optimizer": "adam", "schedule": "constant", "lr": 1e-3,
    ...                                   "batch_size": 64, "steps": 32, "eps": 1 / 16})
    >>> SAE_FAMILY.build([cfg]).W_dec.shape
    torch.Size([1, 32, 8])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import torch
from torch import Tensor

from toymodels.config import ExperimentConfig
from toymodels.config.firing import FIRING_FIELDS
from toymodels.families.sae.config import SAEConfig
from toymodels.engine.data import DATA_STREAM, generator
from toymodels.config.registry import register
from toymodels.families.base import DashboardPanel, FigureSpec, Presentation, ReluLayers
from toymodels.families.sae import relu_l1, topk, batchtopk, jumprelu  # noqa: F401, I001  (registers them; this order in messages)
from toymodels.families.sae import presets  # noqa: F401  (registers the synthetic studies as presets)
from toymodels.families.sae.architecture import SAE, architecture_names, get_architecture, register_architecture
from toymodels.families.sae.evaluate import EVAL_SAMPLES, eval_batch, sae_evaluate, sae_model
from toymodels.families.sae.sources import SourceSampler, source_fingerprint, source_for, source_problem
from toymodels.families.sae.polytope import sae_relu_layers

if TYPE_CHECKING:  # a type name only: the results floor is read by the hooks, not by training
    from toymodels.results.store import Results

__all__ = ["EVAL_SAMPLES", "SAE", "SAEFamily", "SAE_FAMILY", "architecture_names", "eval_batch",
           "get_architecture", "register_architecture", "sae_evaluate", "sae_model", "source_for"]

#: one SAE's training memory must fit this (the planner's bound for a whole group)
MAX_INSTANCE_BYTES = 2 * 2**30


class SAEFamily:
    """Sparse autoencoders on activations with known features, scored against them."""

    name = "sae"
    summary = "sparse autoencoder (relu_l1, topk, batchtopk, jumprelu) on a synthetic dictionary or a toy model's layer"
    tasks = ("decoder",)
    fields = ("N", "m", "eps", "distribution", "power_law_exponent", "l1", *SAEConfig.model_fields, *FIRING_FIELDS)
    presentation = Presentation(
        labels={"loss": "reconstruction error", "final_loss": "final reconstruction error", "mcc": "MCC",
                "features_recovered": "features recovered (cos > 0.9)", "l0": "L0", "true_l0": "true L0",
                "explained_variance": "variance explained", "dead_latents": "dead latents", "f1": "F1",
                "absorption_gap": "absorption gap"},
        summary_metrics=("final_loss", "mcc", "features_recovered", "l0", "explained_variance", "dead_latents"),
        training_metrics=("loss", "mcc", "l0"),
        swept_metrics=("mcc", "features_recovered", "l0", "explained_variance"),
        table_metrics=("mcc", "features_recovered", "uniqueness", "f1", "l0", "true_l0", "dead_latents",
                       "shrinkage", "explained_variance"),
        descriptions={
            "final_loss": "mean of the last 8 logged reconstruction errors (mean squared error per sample)",
            "mcc": "mean |cos| of the optimal one-to-one match of decoder directions and true feature directions "
                   "(1: every true feature has its own exact latent)",
            "features_recovered": "fraction of true features whose best latent has |cos| > 0.9",
            "l0": "mean number of active latents per sample", "true_l0": "mean number of active true features "
            "per sample (the L0 a perfect SAE would have)",
            "explained_variance": "1 - E||x - x_hat||^2 / total variance of the activations",
            "dead_latents": "latents that never fire on the evaluation samples",
            "uniqueness": "distinct true features among the latents' best matches, per latent",
            "f1": "F1 of each latent firing as a detector of its best-matching feature, mean over latents",
            "shrinkage": "mean over samples of ||x_hat|| / ||x|| (1: none; an L1 penalty pushes it below 1)",
            "absorption_gap": "hierarchical features: P(parent's latent fires | parent on, child off) - P(it fires "
                              "| child on), mean over edges (0: no absorption; 1: the child absorbed the parent)",
        },
    )

    def check(self, cfg: ExperimentConfig) -> str | None:
        if cfg.sae.sae_arch not in architecture_names():
            return f"field 'sae_arch': must be one of {', '.join(architecture_names())} (got {cfg.sae.sae_arch!r})"
        if self.instance_bytes(cfg) > MAX_INSTANCE_BYTES:
            return (f"field 'sae_width': one SAE of width {cfg.sae.sae_width} on {cfg.model.m} dims with batch "
                    f"{cfg.optim.batch_size} needs {self.instance_bytes(cfg) / 2**30:.1f} GiB, over the "
                    f"{MAX_INSTANCE_BYTES / 2**30:.0f} GiB a group may use")
        return get_architecture(cfg.sae.sae_arch).check(cfg) or source_problem(cfg)

    def build(self, cfgs: Sequence[ExperimentConfig]) -> SAE:
        sources = [source_for(c) for c in cfgs]
        truth = torch.stack([s.truth for s in sources])
        parents = torch.stack([s.parents for s in sources])
        return get_architecture(cfgs[0].sae.sae_arch).init(cfgs, truth, parents)

    def from_tensors(self, tensors: dict[str, Tensor], cfg: ExperimentConfig) -> SAE:
        return get_architecture(cfg.sae.sae_arch).from_tensors(tensors)

    def sampler(self, cfg: ExperimentConfig, device: torch.device) -> SourceSampler:
        return SourceSampler(source_for(cfg), cfg.optim.batch_size, generator(cfg.run.seed, DATA_STREAM, device),
                             device)

    def input_size(self, cfg: ExperimentConfig) -> int:
        return cfg.model.m

    def flops_per_step(self, cfg: ExperimentConfig) -> float:
        """Encoder and decoder (B x d x L each), forward and backward, plus the source's features -> activations."""
        B, d, L, N = cfg.optim.batch_size, cfg.model.m, cfg.sae.sae_width, cfg.data.N
        return 12.0 * B * d * L + 2.0 * B * N * d

    def instance_bytes(self, cfg: ExperimentConfig) -> int:
        B, d, L, N = cfg.optim.batch_size, cfg.model.m, cfg.sae.sae_width, cfg.data.N
        return 4 * (4 * B * (2 * d + 3 * L + N) + 6 * (2 * d * L + L + d) + N * d)

    def evaluate(self, cfgs: Sequence[ExperimentConfig], tensors: dict[str, Tensor]) -> dict[str, Tensor]:
        return sae_evaluate(cfgs, tensors)

    def figures(self) -> list[FigureSpec]:
        # deferred: the figures import matplotlib, which training (and SLURM workers) never need
        from toymodels.families.sae.figures import FIGURES

        return list(FIGURES)

    def input_fingerprints(self, cfg: ExperimentConfig) -> dict[str, str]:
        """The source model it reads (none for a synthetic source), fingerprinted by its checkpoints' checksum."""
        return source_fingerprint(cfg)

    def report_html(self, results: Results) -> str:
        """The best SAE (highest MCC) per architecture and width (``report.py``)."""
        # deferred: the report section reads the results tables (pandas), which training never needs
        from toymodels.families.sae.report import best_sae_html

        return best_sae_html(results)

    def dashboard_panel(self) -> DashboardPanel:
        """The dashboard's panel of one SAE: matched decoder vs true features, its metrics, MCC against L0."""
        # deferred: the panel draws with plotly, the optional `app` extra, which training never imports
        from toymodels.families.sae.dashboard import PANEL

        return PANEL

    def relu_layers(self, tensors: dict[str, Tensor], cfgs: Sequence[ExperimentConfig]) -> ReluLayers | None:
        """A ReLU or JumpReLU encoder reading the SAE's input, for the polytope lens (``sae/polytope.py``)."""
        return sae_relu_layers(tensors, cfgs)


SAE_FAMILY = register(SAEFamily())
