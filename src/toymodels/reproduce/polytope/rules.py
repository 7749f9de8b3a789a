"""The rules of the polytope-lens study (docs/polytope_lens.md), in one place: every threshold, what each prediction
is judged on, which models and which checkpoint are read, and the modules whose source the study registers before
its runs train (``toymodels.reproduce.registration``), so that a rule changed after the data shows as post hoc.

**Which models.** Three families with ReLU layers, each read at its **final checkpoint** (``CHECKPOINT``:
``families.polytope.lens_table(results, final_only=True)``), only instances that did not diverge (status ``ok``):

* ``EM``: the EM claims' primary LR1 sweep (its results folder, shared): monosemantic at high lr, polysemantic at low
  lr (the LR1 claim);
* ``TMS``: the TMS ReLU model (n = 20, m = 5) across seven feature densities, the dictionary study's SAE-TMS source
  (shared): dense features are held in dimensions of their own, sparse ones in superposition;
* ``SAE``: the ReLU (``relu_l1``) part of the SAE-L0 study (shared): SAEs on a synthetic dictionary whose features
  are known exactly, at the width equal to the number of true features (``SAE_AT_N``).

**The monosemantic axis** (``AXES``): the value that rises as a family's models become monosemantic, for the trend
of prediction 1: EM the learning rate (the LR1 claim: monosemanticity rises with lr); TMS the feature density eps
(denser features: fewer in superposition); SAE its MCC against the true features (no SAE knob is monotone in
monosemanticity: too much L1 kills latents). The measured monosemanticity (``MONO``) is shown beside every setting.

**What decides** (every effect a 95% interval over seeds, ``toymodels.reproduce.intervals``; an effect counts only
when its whole interval is on one side of its margin, else that family is ``inconclusive``):

* POLY-1 (polytopes pick out monosemantic regions better than neurons): per family, the **F-score** (harmonic mean
  of purity and completeness, ``code_match`` against ``neuron_match``: purity alone rewards splitting every input
  into its own polytope) of spline codes minus that of the most-active-unit partition, on the same models: per seed
  the mean over the family's settings, a paired t interval over seeds, against +-``advantage_margin``: above =
  codes better (agrees), below = neurons better, inside = as good (both disagree). Beside it, not deciding (the
  paper does not predict it; the issue asks it): whether the advantage grows as the model becomes monosemantic,
  Spearman's rho of the per-model difference against the family's axis with a seed bootstrap, against
  +-``trend_floor``.
* POLY-2 (boundaries are dense at semantic boundaries): per family, per seed log(sum over settings of the density
  between two features / the same sum along one feature), a t interval over seeds against +-log(1 +
  ``density_margin``): above = denser between features (agrees), below or inside = disagrees.
* POLY-3 (a feature direction is valid only within a region): per family, per seed the mean over settings of the
  median probe's validity range (how far up its ray the output stays within 1% of the affine map it has at the top
  of its training magnitudes, in units of that top), a t interval over seeds against ``validity_bound`` = 1 +
  ``validity_slack``: wholly below = at least half the feature directions leave 1% of affine within that multiple
  of their top training magnitude (agrees); wholly above = they stay valid beyond it (disagrees). TMS settings count
  only where the model represents at least half its features (``MIN_REPRESENTED``): an unrepresented feature has no
  direction, its ray is the origin's polytope and would pass as valid everywhere.

A family with fewer than ``min_seeds`` seeds is inconclusive. A prediction's verdict over the families: agrees /
disagrees when every family does, partly when decided families differ, inconclusive when any family is (its reason
names the decided ones). ``scaled`` halves / doubles the evidence thresholds for the sensitivity line every verdict
carries.

Example:
    >>> RULES.scaled(2.0).validity_bound, RULES.scaled(0.5).advantage_margin
    (3.0, 0.025)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class PolytopeRules:
    """The thresholds of the polytope judges (``scaled`` multiplies the evidence thresholds)."""

    #: POLY-1: an F-score difference (codes - neurons, on a 0-1 scale) whose interval stays inside +-this is "as good"
    advantage_margin: float = 0.05
    #: POLY-1 beside: the advantage grows (shrinks) as the model becomes monosemantic when rho's seed-bootstrap
    #: interval is at or beyond +-this
    trend_floor: float = 0.3
    #: POLY-2: between-feature boundaries are denser when the ratio's interval is at or above 1 + this
    density_margin: float = 0.1
    #: POLY-3: the bound on the median validity range is 1 + this (in units of the top training magnitude)
    validity_slack: float = 1.0
    #: a family judged on fewer seeds is inconclusive (a guard, not an evidence threshold: not scaled)
    min_seeds: int = 3

    #: fields ``scaled`` leaves alone
    UNSCALED = ("min_seeds",)
    #: fractions: scaled, then capped at 1
    CAPPED = ("trend_floor",)

    @property
    def log_density_floor(self) -> float:
        """POLY-2's floor on log(between / within)."""
        return math.log1p(self.density_margin)

    @property
    def validity_bound(self) -> float:
        """POLY-3's bound on the median validity range, in units of the top training magnitude."""
        return 1.0 + self.validity_slack

    def scaled(self, factor: float) -> PolytopeRules:
        """These rules with every evidence threshold multiplied by ``factor`` (fractions capped at 1)."""
        changed = {}
        for f in fields(self):
            if f.name in self.UNSCALED:
                continue
            value = getattr(self, f.name) * factor
            changed[f.name] = min(value, 1.0) if f.name in self.CAPPED else value
        return replace(self, **changed)


RULES = PolytopeRules()
#: the factors of the sensitivity line
FACTORS = (0.5, 2.0)
#: every model is read after its last step (``lens_table(..., final_only=True)``)
CHECKPOINT = "final"
#: the name users type (``toymodels reproduce POLY``) and the ids of the three predictions' verdicts
CLAIM = "POLY"
PREDICTIONS = ("POLY-1", "POLY-2", "POLY-3")
#: the families in the document's order
FAMILIES = ("EM", "TMS", "SAE")
#: each family's swept setting (the knob of its sweep)
SETTINGS = {"EM": "lr", "TMS": "eps", "SAE": "l1"}
#: each family's monosemantic axis for POLY-1's trend (rises as the models become monosemantic; module docstring)
AXES = {"EM": "lr", "TMS": "eps", "SAE": "mcc"}
#: the measured monosemanticity shown beside each setting (from the instances table), and the sign that makes it
#: rise with monosemanticity (TMS's superposition falls)
MONO = {"EM": ("mono_per_feature", 1), "TMS": ("superposition", -1), "SAE": ("mcc", 1)}
#: SAE: only SAEs as wide as the number of true features (the SAE-L0 judge's width)
SAE_AT_N = True
#: POLY-3, TMS: a setting counts where the model represents at least this fraction of its features
MIN_REPRESENTED = 0.5
#: the modules whose source is this study's rules (hashed by ``registration.RuleSet``)
RULE_MODULES = (
    "toymodels.reproduce.polytope.rules",
    "toymodels.reproduce.polytope.judges",
    "toymodels.reproduce.polytope.measure",
    "toymodels.metrics.polytope",
    "toymodels.metrics.polytope_features",
    "toymodels.families.polytope",
    "toymodels.reproduce.intervals",
    "toymodels.reproduce.verdict",
)
