"""The rules of the EM claims (docs/papers.md §4 rows 1-7), in one place: every threshold, and which model each
claim reads. The judges (``judges``, ``grid_judges``, ``mechanism``) read them from here; the study records their
hash before its runs train (``toymodels.reproduce.registration``), so a rule changed after the data is visible.

**What decides.** Each effect is a 95% interval over seeds (``toymodels.reproduce.intervals``): paired by seed
where both sides ran the same seeds with the same shapes (an lr, bias offset or penalty changes nothing the seed
draws), a bootstrap over seeds otherwise (different k). An effect counts when its whole interval is at or beyond
the floor; an interval that lies strictly inside (-floor, floor) is "no effect"; one that straddles a floor is
``inconclusive``. Trends are Spearman's rho over every seed's point with a seed-bootstrap interval, never a
threshold on rho. Only the paper's criterion can make a verdict; criteria from other sources (re-runs, our
derivations) are reported beside it and change no verdict word.

**Which model.** Every claim reads the model after the last step (for paper_cosine, step 2^15 - 1, a peak of the
periodic lr); the last trough (step 2^15 - 513) is a sensitivity reading, judged by the same rules.

Example:
    >>> RULES.scaled(2.0).floor_neurons
    10.0
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace


@dataclass(frozen=True)
class EMRules:
    """The thresholds of the EM judges (``scaled`` multiplies every one of them, for the sensitivity line)."""

    #: the detection floor in mono neurons: a sweep whose largest mean count is below it is inconclusive, and an
    #: effect in neurons counts only when its interval clears it
    floor_neurons: float = 5
    #: "no loss cost": the loss ratio's interval at or below 1 + loss_tol; "a loss cost": above it
    loss_tol: float = 0.05
    #: mono/feature a model must reach to be at the paper's level (the paper and its re-run: ≈1; LR2's re-run ≈0.5)
    paper_level: float = 0.5
    power_law_level: float = 0.3
    #: claim 4: a "moderate negative" optimum lies in [-moderate_depth, -moderate_near] (Table 1's grid: -1.4, -0.8,
    #: -0.2 qualify); not scaled
    moderate_depth: float = 1.4
    moderate_near: float = 0.2
    #: a setting whose mean dead-neuron fraction reaches this has collapsed (reported, e.g. LR2 at lr 0.03)
    collapse_dead_fraction: float = 0.9
    # Claim 6 (mechanism). The regime: the paper's LR3 models are highly monosemantic (mono/feature about 1; Bloom's
    # LR1 re-run at lr 0.03 settles at 1.0) with almost no dead neurons (Wright: 1-2 of 1024); a model at half that
    # or with a quarter of its neurons dead found another solution, and its leftover neurons say nothing about Sec. 5.
    regime_mono_per_feature: float = 0.75
    regime_max_dead_fraction: float = 0.25
    #: with fewer broad neurons a fraction of them moves in steps of more than 20% and the block's fit is one or two
    #: neurons' weights
    min_broad: int = 5
    #: "mostly positive bias": the fraction of broad neurons with b > 0 (median over the models in the regime)
    positive_bias_min: float = 0.5
    #: broad block ≈ c·EᵀE: c > 0 and relative residual at most this (a random block gives about 1)
    fit_residual_max: float = 0.5
    #: "stay in the linear region": this fraction of (training-like input, broad neuron) pairs fire
    linear_fraction_min: float = 0.5
    #: the broad block matters: removing it raises the lone-feature loss by at least this fraction
    loss_rise_min: float = 0.01

    #: fields ``scaled`` leaves alone: grid positions, the regime's definition and descriptive cut-offs
    UNSCALED = ("moderate_depth", "moderate_near", "collapse_dead_fraction", "regime_mono_per_feature",
                "regime_max_dead_fraction", "min_broad")
    #: fractions: scaled, then capped at 1
    CAPPED = ("paper_level", "power_law_level", "positive_bias_min", "linear_fraction_min")

    def scaled(self, factor: float) -> "EMRules":
        """These rules with every evidence threshold multiplied by ``factor`` (fractions capped at 1)."""
        changed = {}
        for f in fields(self):
            if f.name in self.UNSCALED:
                continue
            value = getattr(self, f.name) * factor
            changed[f.name] = min(value, 1.0) if f.name in self.CAPPED else value
        return replace(self, **changed)


RULES = EMRules()
#: the model each claim reads: "final" (after the last step); the trough is a sensitivity reading
CHECKPOINT = "final"
#: the modules whose source is the EM claims' rules (hashed by ``registration.RuleSet``)
RULE_MODULES = (
    "toymodels.reproduce.em_claims.rules",
    "toymodels.reproduce.em_claims.judges",
    "toymodels.reproduce.em_claims.grid_judges",
    "toymodels.reproduce.em_claims.mechanism",
    "toymodels.reproduce.em_claims.oscillation",
    "toymodels.reproduce.em_claims.sweeps",
    "toymodels.reproduce.intervals",
    "toymodels.reproduce.verdict",
)
