"""Named experiments: every batch of Table 1 of *Engineering Monosemanticity in Toy Models*, at three scales.

Scales:

* ``paper``: the paper's sizes -- N=512, m=64, k=1024 (2048 for abs), batch 2^13, 2^17 steps (a GPU job).
* ``quick``: a few minutes on 2 CPU cores. N, m and k are divided by 4 (N=128, m=16, k=256), which keeps N/m, k/N,
  eps, the active features per input dimension (N*eps/m) and the per-neuron interference noise sqrt(N*eps/(3m)),
  and the unit-feature pre-activation scale, so a bias offset of -1 means the same thing (shared/PAPERS.md §4).
  Batch 128 and 2^15 steps: at this size more steps beat a larger batch (PAPERS.md §4.1: lr 0.03 reached 0.57
  mono/feature with batch 128 x 2^15 steps against 0.24 with batch 1024 x 2^13). The paper_cosine period stays 1024
  steps (it is set in steps, not as a fraction of training). Bias decay is multiplied by 4 = 2^17/2^15 so that the
  cumulative pull (1 - decay*lr)^(steps/2) matches the paper's run; pass ``--set bias_decay=...`` to undo it.
* ``smoke``: seconds, for tests: N=32, m=4, k=64, batch 64, 256 steps, at most three values per swept field.

Example:
    >>> sweep = preset("LR1", scale="quick")
    >>> sweep.grid["lr"]
    [0.001, 0.003, 0.005, 0.007, 0.01, 0.03]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .config import ConfigError, ExperimentConfig, SweepConfig

SCALES = ("smoke", "quick", "paper")

LRS = [0.001, 0.003, 0.005, 0.007, 0.01, 0.03]
BIASES = [round(float(b), 4) for b in np.linspace(-2, 1, 11)]
EPSS = [float(e) for e in 2 ** (-np.linspace(1, 5, 11))]
POW10 = [10.0 ** -e for e in range(1, 8)]

# The paper's sizes and each scale's (N, m, k divisor, batch, steps).
_SIZES = {
    "paper": dict(N=512, m=64, div=1, batch_size=2**13, steps=2**17),
    "quick": dict(N=128, m=16, div=4, batch_size=128, steps=2**15),
    "smoke": dict(N=32, m=4, div=16, batch_size=64, steps=256),
}


@dataclass(frozen=True)
class Preset:
    """A named sweep: fixed paper-scale values plus the grid that the paper varies."""

    name: str
    summary: str
    base: dict[str, Any]
    grid: dict[str, list[Any]]
    figure: str | None = None
    notes: str = ""
    family: str = "em"
    scale_fn: Any = field(default=None, repr=False)

    @property
    def swept(self) -> list[str]:
        return list(self.grid)

    def config(self, scale: str = "quick", seeds: int = 1) -> SweepConfig:
        if scale not in SCALES:
            raise ConfigError(f"field 'scale': must be one of {', '.join(SCALES)} (got {scale!r})")
        fn = self.scale_fn or _em_scale
        base, grid = fn(self, scale)
        return SweepConfig(name=f"{self.name}-{scale}", base=ExperimentConfig.from_flat(base), grid=grid,
                           seeds=seeds)


def _thin(values: list[Any]) -> list[Any]:
    """At most three values (first, middle, last) for smoke runs."""
    if len(values) <= 3:
        return list(values)
    return [values[0], values[len(values) // 2], values[-1]]


def _em_scale(p: Preset, scale: str) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    s = _SIZES[scale]
    base = dict(p.base)
    k_paper = base.pop("k", 1024)
    base.update(N=s["N"], m=s["m"], k=max(1, k_paper // s["div"]), batch_size=s["batch_size"], steps=s["steps"])
    decay_scale = _SIZES["paper"]["steps"] / s["steps"] if scale == "quick" else 1.0
    if "bias_decay" in base:
        base["bias_decay"] = base["bias_decay"] * decay_scale
    grid = {}
    for key, values in p.grid.items():
        if key == "k":
            values = [max(1, v // s["div"]) for v in values]
        if key == "bias_decay":
            values = [v * decay_scale for v in values]
        grid[key] = _thin(values) if scale == "smoke" else list(values)
    return base, grid


def _em(name: str, summary: str, *, task="decoder", act="relu", dist="uniform", k=1024, eps=1 / 64, lr=None,
        decay=0.0, bias=0.0, l1=0.0, grid: dict[str, list[Any]], figure: str | None = None, notes: str = "") -> Preset:
    base = dict(model="em", task=task, nonlinearity=act, distribution=dist, k=k, eps=eps, bias_decay=decay,
                bias_offset=bias, l1=l1, optimizer="lamb", schedule="paper_cosine")
    if lr is not None:
        base["lr"] = lr
    return Preset(name=name, summary=summary, base=base, grid=grid, figure=figure, notes=notes)


PRESETS: dict[str, Preset] = {}


def _add(p: Preset) -> None:
    PRESETS[p.name] = p


# Table 1 (shared/PAPERS.md §1.5), N=512 and m=64 throughout.
_add(_em("LR1", "learning rate steers monosemanticity (no bias tricks)", grid={"lr": LRS}, figure="Fig. 3"))
_add(_em("LR2", "learning-rate sweep with power-law features", dist="power_law", grid={"lr": LRS}, figure="Fig. 6"))
_add(_em("LR3", "negative initial bias + bias decay, learning-rate sweep", decay=0.03, bias=-1.0,
         grid={"lr": LRS}, figure="Fig. 7"))
_add(_em("LR4", "negative bias + decay with power-law features", dist="power_law", decay=0.03, bias=-1.0,
         grid={"lr": LRS}, figure="Fig. 12"))
_add(_em("LR5", "abs task, negative bias + decay, learning-rate sweep", task="abs", k=2048, decay=0.03, bias=-1.0,
         grid={"lr": LRS}))
for _name, _eps, _decay in [("B1", 1 / 16, 0.03), ("B2", 1 / 32, 0.003), ("B3", 1 / 64, 0.003),
                            ("B4", 1 / 128, 0.003), ("B5", 1 / 256, 0.003)]:
    _add(_em(_name, f"initial-bias sweep at eps=1/{round(1 / _eps)}", eps=_eps, lr=0.003, decay=_decay,
             grid={"bias_offset": BIASES}))
for _name, _decay in [("E1", 0.03), ("E2", 0.01), ("E3", 0.003), ("E4", 0.001)]:
    _add(_em(_name, f"feature-density sweep with bias decay {_decay}", lr=0.003, decay=_decay, bias=-1.0,
             grid={"eps": EPSS}))
_add(_em("K0", "neuron-count sweep, no bias tricks", lr=0.007, grid={"k": [2**j for j in range(4, 11)]},
         notes="run only to k=2^10 in the paper"))
_add(_em("K1", "neuron-count sweep with negative bias + decay", lr=0.007, decay=0.03, bias=-1.0,
         grid={"k": [2**j for j in range(4, 12)]}))
_add(_em("K2", "neuron-count sweep, power-law features, negative bias + decay", dist="power_law", lr=0.007,
         decay=0.03, bias=-1.0, grid={"k": [2**j for j in range(4, 12)]}))
_add(_em("RG1", "L1 activation penalty sweep", lr=0.005, decay=0.03, bias=-1.0, grid={"l1": POW10}))
_add(_em("RP1", "random re-projector task, learning-rate sweep", task="reprojector", decay=0.03, bias=-1.0,
         grid={"lr": LRS}))
_add(_em("D1", "abs task, bias-decay sweep", task="abs", k=2048, lr=0.007, bias=-1.0, grid={"bias_decay": POW10}))
_add(_em("G1", "GeLU: learning-rate x initial-bias sweep with decay", act="gelu", decay=0.03,
         grid={"lr": LRS, "bias_offset": BIASES},
         notes="Table 1's GeLU batch (labelled 'B3' in the transcription; named G1 here)"))


def preset(name: str, scale: str = "quick", seeds: int = 1) -> SweepConfig:
    """The SweepConfig of a named experiment at a scale.

    >>> preset("K1", scale="paper").grid["k"][-1]
    2048
    """
    if name not in PRESETS:
        raise ConfigError(f"unknown preset '{name}'; available: {', '.join(PRESETS)}")
    return PRESETS[name].config(scale, seeds=seeds)


# ---------------------------------------------------------------------------------------------------------------
# Superposition: Toy Models of Superposition (TMS, Elhage et al. 2022) and Polysemanticity & Capacity (P&C,
# Scherlis et al. 2022); shared/PAPERS.md §2, §3 and §4 rows 8-12. Seeds are restarts: the analysis
# (toymodels.reproduce_superposition) keeps the lowest-loss restart where the paper does (intro, phase diagram).
#
# TMS defaults (official notebook, PAPERS.md §2.2): AdamW, lr 1e-3 constant, weight decay 0.01, batch 1024,
# 10,000 steps. ``k`` is unused by these models; it is set to 1 so that the sweep planner's memory estimate
# (which counts k hidden units per sample) does not split the groups needlessly.
# Scales: ``paper`` = the paper's sizes and steps; ``quick`` = the same model sizes (the geometry depends on
# n and m), fewer steps and/or a smaller batch, calibrated so a preset runs in minutes on 2 CPU cores (see each
# preset's notes for what was cut and why); ``smoke`` = seconds (at most three values per swept field).

_TMS_BASE = dict(model="tms", task="decoder", tms_variant="relu", k=1, optimizer="adamw", lr=1e-3,
                 schedule="constant", weight_decay=0.01, batch_size=1024, steps=10_000, bias_decay=0.0, l1=0.0)


def _scaled(per_scale: dict[str, dict[str, Any]], grids: dict[str, dict[str, list[Any]]] | None = None):
    """A ``scale_fn``: the preset's base updated with ``per_scale[scale]``; the grid as given (``grids[scale]``
    replaces it where present), thinned to three values per field at smoke scale."""

    def fn(p: Preset, scale: str) -> tuple[dict[str, Any], dict[str, list[Any]]]:
        base = {**p.base, **per_scale.get(scale, {})}
        grid = dict((grids or {}).get(scale, p.grid))
        if scale == "smoke" and scale not in (grids or {}):
            grid = {key: _thin(values) for key, values in grid.items()}
        return base, grid

    return fn


def _geom(start: float, stop: float, num: int) -> list[float]:
    """``num`` log-spaced values from start to stop, rounded to 6 significant digits (readable in tables)."""
    return [float(f"{v:.6g}") for v in np.geomspace(start, stop, num)]


TMS_INTRO_EPS = [float(f"{v:.6g}") for v in 20.0 ** -np.linspace(0, 1, 10)]
TMS_BASIC_EPS = [1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001]
TMS_DIM_EPS = [float(f"{v:.6g}") for v in 20.0 ** (-np.arange(20) / 19)]
PC_KURTOSIS = [1.5, 2.0, 3.0, 5.0, 10.0, 30.0]

_add(Preset(
    name="TMS-intro", family="tms", figure="TMS intro figure",
    summary="n=5 features in m=2 dims, importance 0.9^i: from 2 orthogonal features (dense) to a pentagon (sparse)",
    base={**_TMS_BASE, "N": 5, "m": 2, "importance_decay": 0.9},
    grid={"eps": TMS_INTRO_EPS},
    notes="PAPERS.md §4 row 8; seeds are restarts (keep the lowest loss). quick: 5,000 steps (half the paper's).",
    scale_fn=_scaled({"quick": dict(steps=5_000), "smoke": dict(steps=100, batch_size=64)}),
))
_add(Preset(
    name="TMS-basic", family="tms", figure="TMS basic results (Fig. 'Demonstrating superposition')",
    summary="n=20, m=5, importance 0.7^i: ReLU output vs linear model across sparsity",
    base={**_TMS_BASE, "N": 20, "m": 5, "importance_decay": 0.7},
    grid={"tms_variant": ["relu", "linear"], "eps": TMS_BASIC_EPS},
    notes="PAPERS.md §4 row 9 (adonath's sparsity levels). quick: 5,000 steps.",
    scale_fn=_scaled({"quick": dict(steps=5_000), "smoke": dict(steps=100, batch_size=64)}),
))
_add(Preset(
    name="TMS-dim", family="tms", figure="TMS feature dimensionality (D* and D_i vs 1/(1-S))",
    summary="n=200, m=20, 20 sparsity levels p=20^(-k/19): D* sticks at 1/2, D_i on polytope fractions",
    base={**_TMS_BASE, "N": 200, "m": 20, "importance_decay": 1.0},
    grid={"eps": TMS_DIM_EPS},
    notes="PAPERS.md §4 row 10. quick: batch 256 and 3,000 steps at lr 3e-3 (about 1/13 of the paper's "
          "samples; the larger lr keeps the total parameter movement of Adam near the paper's 10k x 1e-3).",
    scale_fn=_scaled({"quick": dict(batch_size=256, steps=3_000, lr=3e-3),
                      "smoke": dict(N=40, m=4, batch_size=64, steps=100)}),
))
_add(Preset(
    name="TMS-phase", family="tms", figure="TMS phase change (n=2, m=1)",
    summary="n=2, m=1: relative importance r of feature 2 x feature density; which solution wins per cell",
    base={**_TMS_BASE, "N": 2, "m": 1, "importance_decay": 1.0},
    grid={"importance_ratio": _geom(0.1, 10, 21), "eps": _geom(0.01, 1, 21)},
    notes="PAPERS.md §4 row 11; seeds are restarts (>= 5; keep the lowest loss per cell). quick: a 9 x 9 grid, "
          "batch 256, 3,000 steps at lr 3e-3.",
    scale_fn=_scaled({"quick": dict(batch_size=256, steps=3_000, lr=3e-3),
                      "smoke": dict(batch_size=64, steps=100)},
                     grids={"quick": {"importance_ratio": _geom(0.1, 10, 9), "eps": _geom(0.01, 1, 9)}}),
))
_add(Preset(
    name="PC-kurtosis", family="quadratic", figure="P&C: capacity allocation vs importance at K<3 and K>3",
    summary="quadratic model y=||Wx||^2+b, n=8, D=4, v_i=0.8^i: input kurtosis K decides mono vs fractional capacity",
    base=dict(model="quadratic", task="decoder", N=8, m=4, k=1, importance_decay=0.8, input_kind="auto",
              optimizer="adam", lr=3e-3, schedule="cosine", batch_size=2**14, steps=20_000),
    grid={"kurtosis": PC_KURTOSIS},
    notes="PAPERS.md §4 row 12. K < 3: sign inputs with Bernoulli(1/K) dropout; K >= 3: Bernoulli(3/K) x N(0,1), "
          "scaled to unit variance. Adam with a cosine decay to 0 and a large batch stand in for full-batch "
          "training. quick: batch 4096, 5,000 steps.",
    scale_fn=_scaled({"quick": dict(batch_size=4096, steps=5_000), "smoke": dict(batch_size=256, steps=100)}),
))


def superposition_presets() -> list[str]:
    """Names of the TMS / P&C presets (PAPERS.md §4 rows 8-12), in row order."""
    return [name for name, p in PRESETS.items() if p.family in ("tms", "quadratic")]
