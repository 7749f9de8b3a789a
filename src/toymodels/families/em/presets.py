"""The EM family's presets: every batch of Table 1 of *Engineering Monosemanticity in Toy Models* and the
optimizer x schedule study OPT1, at three scales, registered with ``config.presets.register_preset`` when
``toymodels.families.em`` is imported. Each carries its own scaling function (:func:`em_scale`).

Scales:

* ``paper``: the paper's sizes -- N=512, m=64, k=1024 (2048 for abs), batch 2^13, 2^17 steps (a GPU job).
* ``quick``: a few minutes on 2 idle CPU cores (10-20 min for a 6-value sweep with 2 seeds on a busy shared machine).
  N, m and k are divided by 4 (N=128, m=16, k=256), which keeps N/m, k/N, eps, the active features per input
  dimension (N*eps/m) and the per-neuron interference noise sqrt(N*eps/(3m)), and the unit-feature pre-activation
  scale, so a bias offset of -1 means the same thing (docs/papers.md §4). Batch 128 and 2^15 steps: at this size
  more steps beat a larger batch (docs/papers.md §4.1: lr 0.03 reached 0.57 mono/feature with batch 128 x 2^15 steps
  against 0.24 with batch 1024 x 2^13). The paper_cosine period stays 1024 steps (it is set in steps, not as a
  fraction of training). Bias decay keeps the paper's per-step value (see below).
* ``smoke``: seconds, for tests: N=32, m=4, k=64, batch 64, 256 steps, at most three values per swept field.

Calibration: docs/reproduction.md (``toymodels reproduce``) measures how much of each claim the quick scale shows.

Bias decay when steps are cut (docs/papers.md §4). During the first half of training the paper multiplies the bias
by (1 - decay*lr) after every step, so without gradients the bias would shrink by (1 - decay*lr)^(steps/2) overall.
Two quantities cannot both be kept when steps are cut by a factor s:

* the *cumulative* pull (1 - decay*lr)^(steps/2) -- kept by multiplying decay by s ("rescaled",
  ``with_steps(..., decay_rule="cumulative")``); e.g. LR3 at lr 0.01: 2^17 steps x decay 0.03 and 2^15 x 0.12 both
  give (1 - 3e-4)^65536 ~ (1 - 1.2e-3)^16384 ~ 3e-9;
* the *per-step* balance between the decay and the gradient's push on the bias -- kept by leaving decay alone
  ("unrescaled", the default of the ``quick`` scale and of :func:`with_steps`).

Lamb settles it: each step moves the bias tensor by at most lr * ||b|| (a fixed fraction of its norm), while the
decay shrinks it by decay * lr * ||b||. Both scale with lr * ||b||, so what decides whether the gradient can hold a
negative bias against the decay is the per-step ratio decay : 1, independent of the number of steps; the cumulative
product is never reached because the gradient pushes back every step. Rescaling multiplies that ratio by s: LR3 cut
to 4096 steps with decay 0.96 (= 0.03 x 2^17/4096) collapsed the biases to ~0 (|mean bias| < 0.005 at lr >= 0.003)
and no neuron became monosemantic, even at lr 0.03 where LR1 reaches 0.63 (measured, docs/reproduction.md); once
||b|| ~ 0 Lamb's relative steps cannot regrow it. So quick keeps the paper's decay (the scaling function multiplies
decay by 1: ``SCALE_DECAY_RULE``); the reproduction still runs the rescaled variant of LR3 to show this.

The per-step decay has its own cost when steps are cut hard: a *dead* neuron gets no gradient, so only the decay
moves its bias, and that is the cumulative pull again. With the -1 offset and 4096 steps at decay 0.03 (pull
(1 - 3e-4)^2048 = 0.54 at lr 0.01, against 3e-9 in the paper) 170-240 of 256 neurons stayed dead and the loss was
~45% above LR1's. A compromise, decay x sqrt(2^17/steps) (0.17 at 4096 steps), revived them (<= 8 dead at lr
0.005-0.01), gave a lower loss than LR1 at lr 0.005-0.01 and 0.58 mono/feature at lr 0.03; ``toymodels reproduce``
uses it for the bias-decay claims when it cuts steps. At the quick default (a 4x cut, pull 0.007 at lr 0.01) the
per-step decay is kept. :func:`scaled_bias_decay` computes all three rules.

Multi-part presets: ``OPT1`` (the optimizer x schedule study) needs a different lr range per optimizer and two bias
settings (LR1's and LR3's), which one grid product cannot express, so it is a list of sweeps, one per (setting,
optimizer): ``Preset.sweeps(scale)`` returns them, ``preset("OPT1-LR3-adam")`` returns one, ``toymodels run OPT1``
runs them all into ``<out>/<part>``. ``Preset.config()`` of a multi-part preset raises.

Example:
    >>> from toymodels.config.presets import preset
    >>> preset("LR1", scale="quick").grid["lr"]
    [0.001, 0.003, 0.005, 0.007, 0.01, 0.03]
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from toymodels.config import ConfigError, SweepConfig
from toymodels.config.presets import Preset, register_preset, thin_grid

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


def em_scale(p: Preset, scale: str) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """EM's scaling rule (module docstring): N, m and k of the scale (k divided like N), its batch and steps, the
    bias decay quoted at the paper's steps scaled by :func:`scaled_bias_decay`; three values per field at smoke."""
    s = _SIZES[scale]
    base = dict(p.base)
    k_paper = base.pop("k", 1024)
    steps = s["steps"]
    base.update(N=s["N"], m=s["m"], k=max(1, k_paper // s["div"]), batch_size=s["batch_size"], steps=steps)
    if "bias_decay" in base:  # the paper's decay is quoted at its 2^17 steps
        base["bias_decay"] = scaled_bias_decay(base["bias_decay"], PAPER_STEPS, steps)
    grid = {}
    for key, values in p.grid.items():
        if key == "k":
            values = [max(1, v // s["div"]) for v in values]
        if key == "bias_decay":
            values = [scaled_bias_decay(v, PAPER_STEPS, steps) for v in values]
        grid[key] = thin_grid(values) if (scale == "smoke" and not p.smoke_full_grid) else list(values)
    return base, grid


#: The paper's training length: every preset quotes its bias decay at it (Table 1).
PAPER_STEPS = 2**17
#: Bias decay when steps are cut by s = reference / steps (module docstring): x 1, x sqrt(s), x s (the pull).
DECAY_RULES = ("per_step", "sqrt", "cumulative")
#: The rule of the scales: quick and smoke train fewer steps than the paper but keep its per-step decay.
SCALE_DECAY_RULE = "per_step"


def scaled_bias_decay(decay: float, reference_steps: int, steps: int, rule: str = SCALE_DECAY_RULE) -> float:
    """The bias decay that stands in for ``decay`` over ``reference_steps`` in a run of ``steps`` steps: the one
    place the rule (one of DECAY_RULES) is computed. Rounded to 12 decimals, which keeps configs and results-folder
    names readable; ``decay`` itself when the factor is 1.

    >>> [scaled_bias_decay(0.03, 2**17, 2**13, rule) for rule in DECAY_RULES]
    [0.03, 0.12, 0.48]
    """
    s = reference_steps / steps
    factors = {"per_step": 1.0, "sqrt": math.sqrt(s), "cumulative": s}
    if rule not in factors:
        raise ConfigError(f"bias decay rule: must be one of {', '.join(DECAY_RULES)} (got {rule!r})")
    return decay if factors[rule] == 1 else round(decay * factors[rule], 12)


#: LAMB's weight-norm clamp in the paper's code (torch-optimizer's default clamp_value)
PAPER_LAMB_CLAMP = 10.0
PAPER_K = 1024


def size_scaled_lamb_clamp(k: int) -> float:
    """The LAMB clamp that treats a k-neuron EM model as the paper's clamp 10 treats its k=1024 one: 10 times the
    ratio of the initial norms, sqrt(k/1024) (||W1|| ~ sqrt(k/3) under PyTorch's default init; ||W2|| shrinks by the
    same factor when N scales with k). At paper size the init norms 18.4 and 13.1 are clamped from step 0, at quick
    size 9.2 and 6.5 are not, so with clamp 10 a quick-scale lr is a larger relative step than the paper's.

    >>> size_scaled_lamb_clamp(256)
    5.0
    """
    return round(PAPER_LAMB_CLAMP * math.sqrt(k / PAPER_K), 12)


def with_steps(sweep: SweepConfig, steps: int, decay_rule: str = SCALE_DECAY_RULE,
               reference_steps: int | None = None) -> SweepConfig:
    """The same sweep trained for ``steps`` steps (name suffix ``-s<steps>``), its bias decay (base and grid)
    scaled by :func:`scaled_bias_decay` with ``decay_rule`` from ``reference_steps`` (default: the sweep's own).

    >>> with_steps(preset("LR3", "quick"), 2**13).base.optim.bias_decay
    0.03
    >>> with_steps(preset("LR3", "quick"), 2**13, "cumulative").base.optim.bias_decay  # 0.03 * 2^15 / 2^13
    0.12
    """
    ref = reference_steps or sweep.base.optim.steps
    grid = dict(sweep.grid)
    grid.pop("steps", None)
    if "bias_decay" in grid:
        grid["bias_decay"] = [scaled_bias_decay(v, ref, steps, decay_rule) for v in grid["bias_decay"]]
    base = sweep.base.replace(steps=steps, bias_decay=scaled_bias_decay(sweep.base.optim.bias_decay, ref, steps,
                                                                        decay_rule))
    return SweepConfig(name=f"{sweep.name}-s{steps}", base=base, grid=grid, seeds=sweep.seeds)


def _em(name: str, summary: str, *, task="decoder", act="relu", dist="uniform", k=1024, eps=1 / 64, lr=None,
        decay=0.0, bias=0.0, l1=0.0, grid: dict[str, list[Any]], figure: str | None = None, notes: str = "") -> Preset:
    base = dict(model="em", task=task, nonlinearity=act, distribution=dist, k=k, eps=eps, bias_decay=decay,
                bias_offset=bias, l1=l1, optimizer="lamb", schedule="paper_cosine")
    if lr is not None:
        base["lr"] = lr
    return Preset(name=name, summary=summary, base=base, grid=grid, figure=figure, notes=notes, scale_fn=em_scale)


# Table 1 (docs/papers.md §1.5), N=512 and m=64 throughout.
register_preset(_em("LR1", "learning rate steers monosemanticity (no bias tricks)", grid={"lr": LRS}, figure="Fig. 3"))
register_preset(_em("LR2", "learning-rate sweep with power-law features", dist="power_law", grid={"lr": LRS}, figure="Fig. 6"))
register_preset(_em("LR3", "negative initial bias + bias decay, learning-rate sweep", decay=0.03, bias=-1.0,
         grid={"lr": LRS}, figure="Fig. 7"))
register_preset(_em("LR4", "negative bias + decay with power-law features", dist="power_law", decay=0.03, bias=-1.0,
         grid={"lr": LRS}, figure="Fig. 12"))
register_preset(_em("LR5", "abs task, negative bias + decay, learning-rate sweep", task="abs", k=2048, decay=0.03, bias=-1.0,
         grid={"lr": LRS}))
for _name, _eps, _decay in [("B1", 1 / 16, 0.03), ("B2", 1 / 32, 0.003), ("B3", 1 / 64, 0.003),
                            ("B4", 1 / 128, 0.003), ("B5", 1 / 256, 0.003)]:
    register_preset(_em(_name, f"initial-bias sweep at eps=1/{round(1 / _eps)}", eps=_eps, lr=0.003, decay=_decay,
             grid={"bias_offset": BIASES}))
for _name, _decay in [("E1", 0.03), ("E2", 0.01), ("E3", 0.003), ("E4", 0.001)]:
    register_preset(_em(_name, f"feature-density sweep with bias decay {_decay}", lr=0.003, decay=_decay, bias=-1.0,
             grid={"eps": EPSS}))
register_preset(_em("K0", "neuron-count sweep, no bias tricks", lr=0.007, grid={"k": [2**j for j in range(4, 11)]},
         notes="run only to k=2^10 in the paper"))
register_preset(_em("K1", "neuron-count sweep with negative bias + decay", lr=0.007, decay=0.03, bias=-1.0,
         grid={"k": [2**j for j in range(4, 12)]}))
register_preset(_em("K2", "neuron-count sweep, power-law features, negative bias + decay", dist="power_law", lr=0.007,
         decay=0.03, bias=-1.0, grid={"k": [2**j for j in range(4, 12)]}))
register_preset(_em("RG1", "L1 activation penalty sweep", lr=0.005, decay=0.03, bias=-1.0, grid={"l1": POW10}))
register_preset(_em("RP1", "random re-projector task, learning-rate sweep", task="reprojector", decay=0.03, bias=-1.0,
         grid={"lr": LRS}))
register_preset(_em("D1", "abs task, bias-decay sweep", task="abs", k=2048, lr=0.007, bias=-1.0, grid={"bias_decay": POW10}))
register_preset(_em("G1", "GeLU: learning-rate x initial-bias sweep with decay", act="gelu", decay=0.03,
         grid={"lr": LRS, "bias_offset": BIASES},
         notes="Table 1's GeLU batch (labelled 'B3' in the transcription; named G1 here)"))


# The optimizer x schedule study (what the seed asked to explore; not in the paper). Lamb's lr is a relative step
# per tensor (each step moves a tensor by lr times its clamped norm), so its values do not carry over: Adam/AdamW
# move each weight by about lr per step (quick-scale weights are ~U(+-0.25), so lr 1e-2 is a ~4% step, comparable
# to Lamb at 0.03) and SGD (momentum 0.9) moves by lr times the gradient of the summed loss (stable up to at least
# 0.3 at quick scale, 768 steps, measured). Each optimizer's lrs are LAMB's times one factor, so the i-th lr of every
# optimizer is "the same step size" for this study.
OPT_LRS = {"lamb": [0.001, 0.003, 0.01, 0.03], "adam": [3e-4, 1e-3, 3e-3, 1e-2], "adamw": [3e-4, 1e-3, 3e-3, 1e-2],
           "sgd": [0.01, 0.03, 0.1, 0.3]}
OPT_QUICK_LRS = {"lamb": [0.003, 0.03], "adam": [1e-3, 1e-2], "adamw": [1e-3, 1e-2], "sgd": [0.03, 0.3]}
OPT_SCHEDULES = ["paper_cosine", "cosine", "constant", "warmup_cosine"]
#: quick scale drops warmup_cosine (it ended like cosine in every cell of the 3072-step study) to fit 2^15 steps
#: x 3 seeds on 2 cores: two schedules end at peak lr (paper_cosine, constant), one anneals to 0 (cosine).
OPT_QUICK_SCHEDULES = ["paper_cosine", "cosine", "constant"]
#: LR3's decay per step is b *= 1 - decay*lr. To compare optimizers at the same pull on the bias, each optimizer's
#: decay is 0.03 x (LAMB's quick lr / its own), so decay*lr is 9e-5 at the low and 9e-4 at the high quick lr for
#: every optimizer (with 0.03 for all, the pull differed 30x between SGD's and Adam's lrs).
OPT_LR3_DECAY = 0.03
OPT_SETTINGS = {"LR1": dict(bias_offset=0.0, bias_decay=0.0), "LR3": dict(bias_offset=-1.0, bias_decay=OPT_LR3_DECAY)}


def opt_bias_decay(setting: str, optimizer: str) -> float:
    """The bias decay of one OPT1 part: the same per-step pull decay*lr as LAMB's for every optimizer.

    >>> [opt_bias_decay("LR3", o) for o in ("lamb", "adam", "sgd")]
    [0.03, 0.09, 0.003]
    """
    decay = OPT_SETTINGS[setting]["bias_decay"]
    ratio = OPT_QUICK_LRS["lamb"][0] / OPT_QUICK_LRS[optimizer][0]  # the same for both quick lrs
    return round(decay * ratio, 12) if decay else 0.0


def _opt1_scale(p: Preset, scale: str) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    base, grid = em_scale(p, scale)
    if scale == "quick":
        grid["lr"] = list(OPT_QUICK_LRS[base["optimizer"]])
        grid["schedule"] = list(OPT_QUICK_SCHEDULES)
    base["checkpoint_every"] = 512  # every peak and trough of paper_cosine
    return base, grid


register_preset(Preset(
    name="OPT1", summary="optimizer x schedule x lr on the LR1 and LR3 settings (the seed's exploration)",
    base=_em("OPT1", "", grid={}).base, grid={}, figure=None,
    smoke_full_grid=False, scale_fn=_opt1_scale,
    notes="multi-part: one sweep per (setting, optimizer), grid schedule x lr; quick: 2 lrs per optimizer "
          f"({OPT_QUICK_LRS}) and schedules {OPT_QUICK_SCHEDULES}; paper: 4 lrs per optimizer ({OPT_LRS}); LR3's "
          "bias decay gives every optimizer LAMB's per-step pull (opt_bias_decay)",
    parts=tuple((f"{setting}-{opt}", {**over, "optimizer": opt, "bias_decay": opt_bias_decay(setting, opt)},
                 {"schedule": OPT_SCHEDULES, "lr": OPT_LRS[opt]})
                for setting, over in OPT_SETTINGS.items() for opt in OPT_LRS),
))

