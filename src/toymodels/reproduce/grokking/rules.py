"""The rules of the grokking study (docs/grokking.md; docs/papers.md §5), in one place: every threshold, which model
each claim reads, and the modules the study registers before its runs train (``toymodels.reproduce.registration``).

**The claims** (Nanda et al. 2023, *Progress measures for grokking via mechanistic interpretability*):

* ``GROK-1`` train accuracy saturates long before test accuracy (their Fig. 2): per seed, the first checkpoint with
  test accuracy above ``GROKKED`` divided by the first with train accuracy above ``MEMORISED``; a seed that never
  groks within the budget counts with the budget's end (a lower bound, so the rule stays conservative);
* ``GROK-2`` the final model concentrates its embedding in a few key frequencies (their §4.1: five in the main run;
  Fig. 3's sparse Fourier norms): the number of key frequencies (norm >= 1/4 of the largest) and the Gini
  coefficient of the embedding's Fourier norms, final model;
* ``GROK-3`` restricted loss falls before test loss (their §5.1, Fig. 7): per seed, the first checkpoint after
  memorisation at which each loss is below ``drop_fraction`` of its value at the end of memorisation, with the final
  model's key frequencies for the whole run (as the paper); the lead is test's step minus restricted's;
* ``GROK-4`` the weight norm falls during cleanup (their §5.2): the sum of squared weights at the end of cleanup
  (test accuracy above ``GROKKED``) over its value at the start (test accuracy above ``CLEANUP_STARTS``);
* ``GROK-5`` without weight decay it does not generalise within the budget (their App. D.1; Power et al. 2022):
  the share of weight-decay-0 instances (at the scale's training fraction and at half of it) that grok, with the
  weight-decay-1 instances at the scale's fraction as the positive control (the budget suffices when weight decay
  is there); weight decay 1 at half the fraction is reported beside it.

**What decides.** 95% intervals over seeds (``toymodels.reproduce.intervals``: a t interval of per-seed values, or
of per-seed differences and ratios, since both sides of every comparison come from the same run), and exact
Clopper-Pearson intervals for the shares of GROK-5. A claim holds when its whole interval is on the claim's side of
its threshold, fails when the whole interval is on the other side, and is ``inconclusive`` otherwise; fewer than 2
seeds with a defined value is ``inconclusive``. ``scaled`` moves every evidence threshold for the sensitivity line.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

#: the accuracy thresholds of the phases (``families.grokking.analysis``): memorised, cleanup started, grokked
MEMORISED = 0.99
CLEANUP_STARTS = 0.1
GROKKED = 0.99
#: the model each claim reads: the final one (GROK-2), the whole run's checkpoints (GROK-1, 3, 4), the final
#: accuracy of each phase-sweep instance (GROK-5)
CHECKPOINT = "final"


@dataclass(frozen=True)
class GrokRules:
    """The evidence thresholds (``scaled`` multiplies the ones marked, for the sensitivity line)."""

    #: GROK-1: grokking takes at least this many times the steps memorising takes (the paper: ~1.4k vs ~10k steps)
    long_before: float = 3.0
    #: GROK-2: at most this many key frequencies (the paper's main run: 5; "a handful")
    max_key_frequencies: float = 10.0
    #: GROK-2: Gini coefficient of the embedding's Fourier norms at least this (5 key frequencies of 56 carrying
    #: the norm give about 0.9; a random embedding about 0.25-0.3)
    min_gini: float = 0.6
    #: GROK-3: a loss has "fallen" below this share of its value at the end of memorisation
    drop_fraction: float = 0.5
    #: GROK-3: restricted loss leads test loss by at least this many checkpoints (the resolution of the readings)
    min_lead_checkpoints: float = 1.0
    #: GROK-4: the norm falls by at least this share during cleanup
    norm_drop: float = 0.05
    #: GROK-5: the share of weight-decay-0 instances that grok (both fractions) at most this (upper end of its exact
    #: interval: 0 of 10 gives 0.31, 0 of 6 gives 0.46)
    max_share: float = 0.5
    #: GROK-5's positive control: the share of weight-decay-1 instances at the scale's fraction that grok at least
    #: this (lower end: 5 of 5 gives 0.48, 3 of 3 only 0.29, so 3 exploratory seeds cannot decide the claim)
    min_control: float = 0.4

    UNSCALED = ("drop_fraction",)

    def scaled(self, factor: float) -> "GrokRules":
        """Every evidence threshold times ``factor`` (shares and the Gini capped below 1)."""
        out = {}
        for f in fields(self):
            if f.name not in self.UNSCALED:
                value = getattr(self, f.name) * factor
                out[f.name] = min(value, 0.95) if f.name in ("min_gini", "max_share", "min_control") else value
        return replace(self, **out)


RULES = GrokRules()
RULE_MODULES = (
    "toymodels.reproduce.grokking.rules",
    "toymodels.reproduce.grokking.judges",
    "toymodels.reproduce.grokking.measure",
    "toymodels.families.grokking.analysis",
    "toymodels.families.grokking.fourier",
    "toymodels.reproduce.intervals",
    "toymodels.reproduce.verdict",
)
