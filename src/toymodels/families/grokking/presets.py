"""The grokking presets (docs/papers.md §5): the paper's mainline run over seeds, the weight decay x training
fraction phase diagram (Power et al. 2022; the paper's App. C.2.2 and D.1) and the three operations.

Scales: ``paper`` is the paper's setting (P = 113, the one-layer transformer with d_model 128, 4 heads, 512
neurons; full-batch AdamW lr 1e-3, weight decay 1, betas (0.9, 0.98), a 10-step linear warm-up, 30% of the pairs,
40,000 steps); ``quick`` (minutes on 2 cores) the same transformer at P = 59 with d_model 64 and 256 neurons, lr
3e-3, 40% of the pairs, 4,000 steps, which still memorises first and groks later with a sparse Fourier embedding
(measured: docs/papers.md §5.5; at 30% it did not grok within 6,000 steps); ``smoke`` (seconds, tests) a tiny
transformer at P = 11. Every scale trains
full-batch: ``batch_size`` is set to the largest training set of the grid (rows beyond an instance's own pairs are
padding, so instances of different fractions share one group).
"""

from __future__ import annotations

from typing import Any

from toymodels.config import ExperimentConfig
from toymodels.config.presets import Preset, register_preset
from toymodels.families.grokking.data import n_train

#: the paper's code warms the lr up over its first 10 steps (lr factor min(t / 10, 1))
WARMUP_STEPS = 10
PAPER = {"model": "grokking", "grok_arch": "transformer", "modulus": 113, "operation": "add", "train_frac": 0.3,
         "d_model": 128, "n_heads": 4, "d_mlp": 512, "optimizer": "adamw", "lr": 1e-3, "weight_decay": 1.0,
         "adam_beta1": 0.9, "adam_beta2": 0.98, "schedule": "warmup_constant", "steps": 40_000,
         "checkpoint_every": 500}
#: the quick scale: the same transformer at half the width and P = 59, lr 3e-3 and 40% of the pairs, which groks
#: within the budget (measured: memorised by step 256, test accuracy 99% near step 2,500; docs/papers.md §5.5)
QUICK = {"modulus": 59, "d_model": 64, "n_heads": 4, "d_mlp": 256, "train_frac": 0.4, "lr": 3e-3, "steps": 4_000,
         "checkpoint_every": 100}
SMOKE = {"modulus": 11, "d_model": 16, "n_heads": 2, "d_mlp": 24, "train_frac": 0.5, "steps": 60,
         "checkpoint_every": 20, "lr": 3e-3}
SCALE_BASE = {"paper": {}, "quick": QUICK, "smoke": SMOKE}


def full_batch(base: dict[str, Any], grid: dict[str, list[Any]]) -> dict[str, Any]:
    """``base`` with ``batch_size`` the largest training set of any grid point and the 10-step warm-up as a share
    of the run."""
    fracs = grid.get("train_frac", [base["train_frac"]])
    cfg = ExperimentConfig.from_flat({**base, "train_frac": max(fracs), "batch_size": 1 << 30})
    return {**base, "batch_size": n_train(cfg), "warmup_frac": min(WARMUP_STEPS / base["steps"], 0.5)}


def grok_scale(grids: dict[str, dict[str, list[Any]]]):
    """A ``scale_fn``: the preset's base over the scale's model and budget, the scale's grid, full batch."""

    def fn(p: Preset, scale: str) -> tuple[dict[str, Any], dict[str, list[Any]]]:
        base = {**p.base, **SCALE_BASE[scale]}
        grid = {k: list(v) for k, v in grids.get(scale, p.grid).items()}
        return full_batch(base, grid), grid

    return fn


register_preset(Preset(
    name="GROK-main", family="grokking", figure="Progress measures, Fig. 2 and 7 (train/test curves; phases)",
    summary="a + b mod 113, the one-layer transformer, 30% of the pairs, weight decay 1: memorise, then grok",
    base=PAPER, grid={"seed": [0, 1, 2, 3, 4]},
    notes="docs/papers.md §5.2-5.4: five seeds as the paper's Figure 2; the study (`toymodels reproduce GROK`) "
          "judges its curves. quick: P = 59, d_model 64, 40% of the pairs, lr 3e-3, 3 seeds; smoke: 2 seeds.",
    scale_fn=grok_scale({"quick": {"seed": [0, 1, 2]}, "smoke": {"seed": [0, 1]}}),
))
register_preset(Preset(
    name="GROK-phase", family="grokking", figure="Phase diagram: weight decay x training fraction (App. C.2.2, D.1)",
    summary="which (weight decay, training fraction) grok within the budget: none without weight decay, none below "
            "~20-30% of the pairs",
    base=PAPER, grid={"weight_decay": [0.0, 0.3, 1.0, 3.0], "train_frac": [0.1, 0.2, 0.3, 0.5, 0.7]},
    notes="docs/papers.md §5.4. Weight decays train in separate groups (weight_decay is a group field); the "
          "fractions of one weight decay share a group, each padded to the largest training set.",
    scale_fn=grok_scale({"quick": {"weight_decay": [0.0, 0.3, 1.0, 3.0], "train_frac": [0.3, 0.4, 0.5, 0.7]},
                         "smoke": {"weight_decay": [0.0, 1.0], "train_frac": [0.3, 0.5]}}),
))
register_preset(Preset(
    name="GROK-ops", family="grokking", figure="The three operations (a + b, a - b, a * b mod P)",
    summary="add, subtract and multiply mod P in one group: which grok, and which with sparse Fourier embeddings",
    base=PAPER, grid={"operation": ["add", "subtract", "multiply"]},
    notes="docs/papers.md §5.3: restricted / excluded loss use the waves of a + b (add) or a - b (subtract); "
          "multiply has no such waves in this basis (NaN).",
    scale_fn=grok_scale({}),
))
