"""The rules of the dictionary-learning study (docs/dictionary_learning.md), in one place: every threshold, the one
coverage criterion, which checkpoint is read, and the modules whose source the study registers before its runs
train (``toymodels.reproduce.registration``), so that a rule changed after the data shows as post hoc.

**Which model.** Every SAE and every source model is read after its last step (``CHECKPOINT``), the model an SAE
reads from its source (``Results.params``' default). SAE-LR reads the primary LR1 sweep of the EM claims (2^15
steps at quick scale), the same results folder.

**One coverage criterion** for EM neurons and SAE latents (``metrics.dictionary.covered_features``): a unit covers
feature j when its responses to single features (feature j alone on at amplitude 1) pass the paper's monosemanticity
test, max / sum of the positive part > 1 - ``selectivity_slack`` (0.999), with j its argmax. Why this one and not
the SAE literature's decoder |cos| > 0.9: it is the EM paper's own test, the one its claims count neurons with, and
it needs only what every unit has, its activation on each single-feature input (a neuron's sfa row; a latent's
``encode`` of the layer's single-feature activations); a neuron has no decoder direction, and a direction test
would ask how a feature's response is spread over units, not whether a unit answers one feature. Decoder |cos|,
MCC and the mean best |cos| are reported beside it for the SAEs.

**What decides.** Every effect is a 95% interval over seeds (``toymodels.reproduce.intervals``): paired by seed
where both sides come from the same seed (the neurons and the SAE of one source model; the hierarchical and the
null SAE of one seed and sparsity), a t interval of per-seed values otherwise, and for trends Spearman's rho over
every seed's point with a bootstrap that resamples whole seeds. An effect counts when its whole interval is at or
beyond its floor, "no effect" when it lies strictly inside (-floor, floor), and is unclear otherwise. A question
judged at several points (lrs, architectures) is ``answered`` only when every point is decided; otherwise it is
``inconclusive`` and its reason names the points decided. ``scaled`` halves / doubles the evidence thresholds for
the sensitivity line every verdict carries.

Example:
    >>> RULES.scaled(2.0).coverage_margin, RULES.scaled(2.0).selectivity
    (0.1, 0.998)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

from toymodels.metrics.features import MONO_THRESHOLD


@dataclass(frozen=True)
class DictionaryRules:
    """The thresholds of the dictionary-learning judges (``scaled`` multiplies the evidence thresholds)."""

    #: the coverage criterion's slack: a unit is selective when max / sum of its single-feature responses exceeds
    #: 1 - slack (the paper's 0.999 for neurons, applied to latents too)
    selectivity_slack: float = round(1 - MONO_THRESHOLD, 12)
    #: SAE-LR: a difference in covered features (a fraction of N) whose interval stays inside +-this is "as many"
    coverage_margin: float = 0.05
    #: an SAE below this MCC learned nothing: the points it decides are inconclusive (a guard on what the SAEs
    #: learned, not an evidence threshold: not scaled)
    mcc_floor: float = 0.5
    #: SAE-L0: the best-MCC L0 is "near" the true L0 when log2(L0 / true L0) stays within +-log2(this)
    l0_factor: float = 2.0
    #: SAE-ABS: absorption beyond chance when the interval of (hierarchical gap - null gap) is at or above this
    absorption_floor: float = 0.1
    #: SAE-TMS: recovery rises (falls) with superposition when rho's seed-bootstrap interval is at or beyond +-this
    trend_floor: float = 0.3
    #: SAE-TMS: a feature is represented by the TMS model when ||W_i|| exceeds this (the TMS claims' threshold,
    #: ``families.tms.TMS_REPRESENTED_NORM``); a definition, not scaled
    represented_norm: float = 0.5
    #: the SAE literature's secondary count, reported for SAEs only: a decoder direction with |cos| above this
    recovered_cos: float = 0.9

    #: fields ``scaled`` leaves alone: definitions of what is counted and the guard, not evidence thresholds
    UNSCALED = ("represented_norm", "recovered_cos", "mcc_floor")
    #: fractions: scaled, then capped at 1
    CAPPED = ("selectivity_slack", "coverage_margin", "trend_floor")

    @property
    def selectivity(self) -> float:
        """The coverage criterion's threshold on max / sum (0.999)."""
        return round(1 - self.selectivity_slack, 12)

    @property
    def l0_log2_floor(self) -> float:
        """The SAE-L0 floor on log2(L0 / true L0)."""
        return math.log2(self.l0_factor)

    def scaled(self, factor: float) -> DictionaryRules:
        """These rules with every evidence threshold multiplied by ``factor`` (``l0_factor`` in log space, so a
        factor 2 of L0 becomes 4 when doubled and sqrt(2) when halved; fractions capped at 1)."""
        changed = {}
        for f in fields(self):
            if f.name in self.UNSCALED:
                continue
            value = getattr(self, f.name)
            value = 2 ** (math.log2(value) * factor) if f.name == "l0_factor" else value * factor
            changed[f.name] = min(value, 1.0) if f.name in self.CAPPED else value
        return replace(self, **changed)


RULES = DictionaryRules()
#: the factors the sensitivity line asks about, and the selectivity thresholds the measurement computes for them
FACTORS = (0.5, 1.0, 2.0)
SELECTIVITIES = tuple(RULES.scaled(f).selectivity for f in FACTORS)
#: every judge reads each model after its last step
CHECKPOINT = "final"
#: SAE-LR's source: the EM claims' primary LR1 sweep (``em_claims.sweeps.claim_sweeps("LR1", ...)["LR1"]``)
LR_SOURCE = "LR1"
#: samples per SAE for the absorption gaps (hierarchical and null): about 160 samples of a parent and child both
#: on per edge for independent features at density 0.05
GAP_SAMPLES = 2**16
#: SAEs trained per source model (SAE-LR, SAE-TMS): the replicate is the source's seed, each with its own SAE
SAES_PER_SOURCE = 1
#: the modules whose source is this study's rules (hashed by ``registration.RuleSet``)
RULE_MODULES = (
    "toymodels.reproduce.dictionary_learning.rules",
    "toymodels.reproduce.dictionary_learning.judges",
    "toymodels.reproduce.dictionary_learning.measure",
    "toymodels.metrics.dictionary",
    "toymodels.reproduce.intervals",
    "toymodels.reproduce.verdict",
)


def coverage_column(prefix: str, selectivity: float) -> str:
    """The measured column of coverage at one selectivity threshold, e.g. ``cover_h@0.999``."""
    return f"{prefix}@{selectivity:g}"
