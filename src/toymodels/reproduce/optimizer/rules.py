"""The rules of the optimizer study (OPT1), in one place: every threshold, which checkpoints are read, what counts as
the paper's effect in one cell and how the answer is derived. The judges (``judges``: one cell; ``answer``: the
answer from the cells) read them from here; this module is registered as the study's rules
(``registration.RuleSet``), so a change to it after a results folder was trained makes that folder's answer
``post hoc``.

**Which models are read.** Every run at two checkpoints: its final step (paper_cosine's last lr *peak*, the
paper's final model) and its last lr *trough* (``optim.last_trough_step``: step 511 mod 1024, where paper_cosine's
lr is ~0; for constant and cosine, whose lr does not oscillate, the same step is a control). The loss at a
checkpoint is the mean task loss logged on the training batches in the :data:`LOSS_WINDOW` steps up to it (at the
final step, ``final_loss``).

**One cell** (setting x optimizer x schedule): the optimizer's highest lr against its lowest, paired by seed (the
two lrs share their seeds: the same data and initial weights). Every decision reads a 95% interval
(``toymodels.reproduce.intervals``): the paired t interval of d = mono neurons (high lr) - mono neurons (low lr),
the t interval of each lr's mean mono neurons, and the paired bootstrap interval of mean loss (high) / mean loss
(low). With F = ``Thresholds.mono_floor`` the cell's effect is, first match (:data:`EFFECTS`):

1. ``too few seeds``: fewer than :data:`MIN_SEEDS` seeds ran at both lrs;
2. ``diverged``: fewer than MIN_SEEDS of them finished (no divergence) at both lrs;
3. ``no mono``: at neither lr does the model become monosemantic: both lrs' intervals of mono neurons lie wholly
   below F (outside the regime the claim is about);
4. the interval of d wholly at or above F: ``yes`` when the loss ratio's interval lies wholly at or below
   1 + ``loss_tol`` (the paper's claim: more monosemantic at no loss cost), ``mono up, loss up`` when it lies
   wholly above, ``mono up, loss unclear`` otherwise;
5. ``reversed``: the interval of d wholly at or below -F;
6. ``no effect``: the interval of d wholly inside (-F, F);
7. ``unclear``: the interval of d straddles F or -F (the runs cannot tell).

"Becomes monosemantic?" at one lr (:func:`becomes_mono`): ``yes`` when the interval of its mean mono neurons lies
at or above F, ``no`` when wholly below, ``unclear`` otherwise.

**The answer** counts only ``yes`` cells: LAMB is *not needed* when a cell of another optimizer is ``yes``, *needed*
when only LAMB cells are, *cannot tell* when no other optimizer's cell can be judged; no ``yes`` cell at all is
``inconclusive``. The wording names, per optimizer, its ``yes`` cells out of its judged cells (so that a LAMB with
0 of 3 is never hidden behind "as well"). The schedule part counts ``yes`` per schedule, compares paper_cosine at
its peak and at its trough, and reports which schedules end *annealed* (final lr factor below
:data:`ANNEALED_FINAL_LR`) and whether any of their cells becomes monosemantic (computed from the cells). The
oscillation: at the high lr, the (setting, optimizer) pairs whose mono neurons at the last peak minus the last
trough, paired by seed, have an interval wholly beyond +-F.

**Threshold sensitivity.** :class:`Thresholds` (F and the loss tolerance) is scaled by 0.5 and 2 and the answer
restated (``answer.sensitivity``); :data:`MIN_SEEDS` is a count of runs, not scaled.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from toymodels.engine.train import LOG_EVERY
from toymodels.running.runner import FINAL_LOSS_LOGS

#: A cell is judged only with at least this many seeds finished (and not diverged) at both of its lrs.
MIN_SEEDS = 3
#: The loss at a checkpoint: the mean of the task losses logged (every LOG_EVERY steps, on the training batch) in
#: the LOSS_WINDOW steps up to it, the same logs as ``final_loss`` at the final step.
LOSS_WINDOW = FINAL_LOSS_LOGS * LOG_EVERY
#: The checkpoints read: the final step (``peak``) and the last lr trough of paper_cosine (``trough``).
CHECKPOINTS = ("peak", "trough")
#: A schedule whose lr at the final step is below this fraction of its base lr ends annealed (cosine: ~0).
ANNEALED_FINAL_LR = 0.1
#: "At matched loss": the settings whose mean final loss is within this fraction of the best of their setting.
MATCHED_LOSS = 0.10
#: The cell effects, in the order the rule tries them.
EFFECTS = ("too few seeds", "diverged", "no mono", "yes", "mono up, loss up", "mono up, loss unclear", "reversed",
           "no effect", "unclear")
#: The effects of cells the rule cannot judge (the answer names them and counts nothing from them).
UNJUDGED = ("too few seeds", "diverged", "no mono")


@dataclass(frozen=True)
class Thresholds:
    """The marks of the cell rule; :meth:`scaled` multiplies both (the sensitivity check: 0.5 and 2)."""

    #: F, the detection floor in mono neurons: a change (or a level) smaller than this is not an effect. The same
    #: value as the EM claims' floor (em_claims), held here so that OPT1's rules fingerprint covers it.
    mono_floor: float = 5.0
    #: "no loss cost": the high lr's mean loss within this fraction above the low lr's
    loss_tol: float = 0.05

    def scaled(self, factor: float) -> Thresholds:
        """Every threshold multiplied by ``factor``."""
        return replace(self, **{f.name: getattr(self, f.name) * factor for f in fields(self)})


#: the thresholds in force
THRESHOLDS = Thresholds()
