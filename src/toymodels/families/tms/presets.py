"""The TMS family's presets: *Toy Models of Superposition* (TMS-intro, TMS-basic, TMS-dim, TMS-phase), registered
with ``config.presets.register_preset`` when ``toymodels.families.tms`` is imported (docs/papers.md §2 and §4 rows
8-11). *Polysemanticity and Capacity*'s PC-kurtosis is the quadratic family's (``families/quadratic/presets.py``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from toymodels.config.presets import PRESETS, Preset, register_preset, scaled

# ---------------------------------------------------------------------------------------------------------------
# Superposition: Toy Models of Superposition (TMS, Elhage et al. 2022) and Polysemanticity & Capacity (P&C,
# Scherlis et al. 2022); docs/papers.md §2, §3 and §4 rows 8-12. Seeds are restarts: the analysis
# (toymodels.reproduce.superposition.study) keeps the lowest-loss restart where the paper does (intro, phase diagram).
#
# TMS defaults (official notebook, docs/papers.md §2.2): AdamW, lr 1e-3 constant, weight decay 0.01, batch 1024,
# 10,000 steps. ``k`` is unused by these models (set to 1, the smallest valid value).
# Scales: ``paper`` = the paper's sizes and steps; ``quick`` = the same model sizes (the geometry depends on
# n and m), fewer steps and/or a smaller batch, calibrated so a preset runs in minutes on 2 CPU cores (see each
# preset's notes for what was cut and why); ``smoke`` = seconds (at most three values per swept field).

_TMS_BASE = dict(model="tms", task="decoder", tms_variant="relu", k=1, optimizer="adamw", lr=1e-3,
                 schedule="constant", weight_decay=0.01, batch_size=1024, steps=10_000, bias_decay=0.0, l1=0.0)


def _geom(start: float, stop: float, num: int) -> list[float]:
    """``num`` log-spaced values from start to stop, rounded to 6 significant digits (readable in tables)."""
    return [float(f"{v:.6g}") for v in np.geomspace(start, stop, num)]


TMS_INTRO_EPS = [float(f"{v:.6g}") for v in 20.0 ** -np.linspace(0, 1, 10)]
TMS_BASIC_EPS = [1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001]
TMS_DIM_EPS = [float(f"{v:.6g}") for v in 20.0 ** (-np.arange(20) / 19)]

def notebook_init_std(n: int, m: int, levels: int) -> float:
    """W's init std in the official TMS notebook (docs/papers.md §2.2): xavier over its joint (levels, n, m) tensor,
    sqrt(2 / (m (n + levels))) (0.021 at n=200, m=20, 20 levels; one (m, n) matrix's xavier gives 0.095)."""
    return float(f"{math.sqrt(2.0 / (m * (n + levels))):.6g}")


#: the smoke scale of the small notebook presets (TMS-intro, TMS-basic): seconds, not a result
_NOTEBOOK_SMOKE = scaled({"smoke": dict(steps=100, batch_size=64)})


def _notebook_base(n: int, m: int, importance_decay: float, eps: list[float]) -> dict[str, Any]:
    """A TMS preset's base at the notebook's budget (``_TMS_BASE``) and init scale, one instance per density."""
    return {**_TMS_BASE, "N": n, "m": m, "importance_decay": importance_decay,
            "init_std": notebook_init_std(n, m, len(eps))}


register_preset(Preset(
    name="TMS-intro", family="tms", figure="TMS intro figure",
    summary="n=5 features in m=2 dims, importance 0.9^i: from 2 orthogonal features (dense) to a pentagon (sparse)",
    base=_notebook_base(5, 2, 0.9, TMS_INTRO_EPS),
    grid={"eps": TMS_INTRO_EPS},
    notes="docs/papers.md §4 row 8; seeds are restarts (keep the lowest loss). quick = paper: the notebook's budget "
          "and init (std 0.258); 5,000 steps were not converged (dense: dropped norms 0.63 -> 0.38 in 900 steps).",
    scale_fn=_NOTEBOOK_SMOKE,
))
register_preset(Preset(
    name="TMS-basic", family="tms", figure="TMS basic results (Fig. 'Demonstrating superposition')",
    summary="n=20, m=5, importance 0.7^i: ReLU output vs linear model across sparsity",
    base=_notebook_base(20, 5, 0.7, TMS_BASIC_EPS),
    grid={"tms_variant": ["relu", "linear"], "eps": TMS_BASIC_EPS},
    notes="docs/papers.md §4 row 9 (adonath's densities). quick = paper: the notebook's budget (the replication's) "
          "and init (std 0.122; 3 seeds calibrated: 5, 7, 9, 10, 10.3, 10.7, 12.7 represented).",
    scale_fn=_NOTEBOOK_SMOKE,
))
register_preset(Preset(
    name="TMS-dim", family="tms", figure="TMS feature dimensionality (D* and D_i vs 1/(1-S))",
    summary="n=200, m=20, 20 sparsity levels p=20^(-k/19): D* sticks at 1/2, D_i on polytope fractions",
    base=_notebook_base(200, 20, 1.0, TMS_DIM_EPS),
    grid={"eps": TMS_DIM_EPS},
    notes="docs/papers.md §4 row 10. quick = paper: the notebook's budget and init (std 0.0213, not the per-matrix "
          "0.095); ~0.4 s per step for 3 seeds on one CPU thread (69 min measured).",
    scale_fn=scaled({"smoke": dict(N=40, m=4, batch_size=64, steps=100, init_std=notebook_init_std(40, 4, 3))}),
))
register_preset(Preset(
    name="TMS-phase", family="tms", figure="TMS phase change (n=2, m=1)",
    summary="n=2, m=1: relative importance r of feature 2 x feature density; which solution wins per cell",
    base={**_TMS_BASE, "N": 2, "m": 1, "importance_decay": 1.0},
    grid={"importance_ratio": _geom(0.1, 10, 21), "eps": _geom(0.01, 1, 21)},
    notes="docs/papers.md §4 row 11; seeds are restarts (>= 5; keep the lowest loss per cell). quick: a 9 x 9 grid, "
          "batch 256, 3,000 steps at lr 3e-3. The analytic boundary (docs/papers.md §2.3) fixes unit weights and zero "
          "biases; a one-off numerical minimisation of the exact expected loss of the antipodal pair with free "
          "magnitudes and biases (Gauss-Legendre quadrature) changed the predicted winner in only 2 of the 81 "
          "quick-grid cells (1-S = 0.18 at r = 0.1 and r = 10, where it favours the pair).",
    scale_fn=scaled({"quick": dict(batch_size=256, steps=3_000, lr=3e-3),
                     "smoke": dict(batch_size=64, steps=100)},
                    grids={"quick": {"importance_ratio": _geom(0.1, 10, 9), "eps": _geom(0.01, 1, 9)}}),
))


def superposition_presets() -> list[str]:
    """Names of the TMS / P&C presets (docs/papers.md §4 rows 8-12), in row order."""
    return [name for name, p in PRESETS.items() if p.family in ("tms", "quadratic")]
