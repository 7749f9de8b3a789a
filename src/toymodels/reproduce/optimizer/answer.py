"""OPT1's answer from its judged cells (the rule: ``rules``): whether the effect needs LAMB, per schedule, at
paper_cosine's peak and trough; the annealed-schedule finding; the oscillation (peak vs trough at the high lr); and
how the answer moves with the thresholds halved or doubled. Every word and count is computed from the cells.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from toymodels.engine.optim import schedule_factors
from toymodels.reproduce.intervals import threshold_sensitivity
from toymodels.reproduce.optimizer.judges import (
    becomes_mono,
    count_effects,
    judge_cells,
    peak_vs_trough,
)
from toymodels.reproduce.optimizer.rules import (
    ANNEALED_FINAL_LR,
    MIN_SEEDS,
    THRESHOLDS,
    UNJUDGED,
    Thresholds,
)

Cells = dict[tuple[str, str, str], dict[str, Any]]


def final_lr_factors(schedules: list[str], steps: int) -> dict[str, float]:
    """Each schedule's lr at the final step as a fraction of its base lr (cosine ends near 0, paper_cosine at a
    peak, constant at 1)."""
    return {s: float(schedule_factors(s, steps)[-1]) for s in schedules}


def _interval(v: dict[str, float]) -> Any:
    """A spread's 95% t interval as (low, high)."""
    return v["lo95"], v["hi95"]


def oscillation(pvt: dict, schedule: str, thresholds: Thresholds = THRESHOLDS) -> dict[str, Any]:
    """At the high lr of ``schedule``, over the (setting, optimizer) pairs with >= MIN_SEEDS seeds: ``n`` of them,
    ``regime`` (those monosemantic at the peak or the trough: the interval of mean mono neurons at or above F),
    ``up`` / ``down`` (the paired interval of mono neurons peak - trough wholly at or above F / at or below -F) and
    ``loss_up`` (the paired interval of loss peak - trough wholly above 0)."""
    F = thresholds.mono_floor
    mine = {k: v for k, v in pvt.items() if k[2] == schedule and k[3] == "high" and v["n"] >= MIN_SEEDS}
    return {"n": len(mine),
                "regime": [k for k, v in mine.items() if max(_interval(v["neurons_peak"])[0],
                                                          _interval(v["neurons_trough"])[0]) >= F],
                "up": [k for k, v in mine.items() if v["d"].versus(F) == "above"],
                "down": [k for k, v in mine.items() if v["d"].versus(F) == "below"],
                "loss_up": [k for k, v in mine.items() if v["d_loss"].low > 0]}


def oscillation_summary(pvt: dict, thresholds: Thresholds = THRESHOLDS) -> str:
    """One sentence for the answer: how often paper_cosine's final peak differs from its last trough."""
    osc = oscillation(pvt, "paper_cosine", thresholds)
    if not osc["n"]:
        return ""
    F = thresholds.mono_floor
    return (f"At the high lr of paper_cosine the final model (an lr peak) has at least {F:g} more mono neurons than "
            f"the last lr trough (paired 95% interval) in {len(osc['up'])} of {osc['n']} (setting, optimizer) pairs "
            f"and fewer in {len(osc['down'])}, while its loss is higher at the peak in {len(osc['loss_up'])} of them "
            "(section 'Peak vs trough').")


def _answers(cells: Cells, schedules: list[str]) -> list[str]:
    """The 'becomes monosemantic at the high lr?' answers of the judged-or-regime cells of ``schedules``."""
    return [j["mono"]["high"][0] for k, j in cells.items()
            if k[2] in schedules and j["effect"] not in ("too few seeds", "diverged") and j["mono"]]


def annealed_finding(peak_cells: Cells, trough_cells: Cells, final_lr: dict[str, float],
                     thresholds: Thresholds = THRESHOLDS) -> str:
    """Do cells of the schedules that end annealed (final lr below ANNEALED_FINAL_LR of the base lr) become
    monosemantic at the high lr, against those that end at a high lr, and paper_cosine at its trough (lr ~0)
    against its peak? Computed from the cells; empty when no schedule ends annealed."""
    annealed = [s for s, f in final_lr.items() if f < ANNEALED_FINAL_LR]
    ending_high = [s for s, f in final_lr.items() if f >= ANNEALED_FINAL_LR]
    a, h = _answers(peak_cells, annealed), _answers(peak_cells, ending_high)
    if not annealed or not a:
        return ""
    F = thresholds.mono_floor
    tops = [j["mono"]["high"][1].high for k, j in peak_cells.items() if k[2] in annealed and j["mono"]]
    text = (f"Schedules that end annealed ({', '.join(f'{s}: final lr {final_lr[s]:.2g} x base' for s in annealed)})"
            f": {a.count('yes')} of {len(a)} cells become monosemantic at the high lr (mono neurons' 95% interval at "
            f"or above {F:g}); {a.count('no')} do not (the whole interval below {F:g}, the highest upper bound "
            f"{max(tops):.3g} neurons), {a.count('unclear')} cannot tell. Schedules that end at a high lr "
            f"({', '.join(ending_high) or 'none'}): {h.count('yes')} of {len(h)} cells do.")
    pc = _answers(trough_cells, ["paper_cosine"]) if trough_cells else []
    if pc:
        text += (f" paper_cosine read at its last trough (lr ~0): {pc.count('yes')} of {len(pc)} cells monosemantic "
                 f"at the high lr, against {_answers(peak_cells, ['paper_cosine']).count('yes')} at its final peak.")
    if not a.count("yes") and h.count("yes"):
        text += " No annealed cell becomes monosemantic while cells that end at a high lr do: the effect seems to "\
                "need a high final lr."
    elif a.count("yes"):
        text += " Annealing the lr to ~0 does not prevent it here."
    return text


def _per_optimizer(judged: Cells, yes: list) -> str:
    parts = []
    for o in dict.fromkeys(k[1] for k in judged):
        mine = {k: j for k, j in judged.items() if k[1] == o}
        n_yes = sum(k[1] == o for k in yes)
        rest = count_effects({k: j for k, j in mine.items() if j["effect"] != "yes"})
        parts.append(f"{o} {n_yes}/{len(mine)}" + (f" ({', '.join(f'{n} {e}' for e, n in rest.items())})"
                                                   if rest else ""))
    return ", ".join(parts)


def answer(peak_cells: Cells, trough_cells: Cells, pvt: dict, final_lr: dict[str, float] | None = None,
           thresholds: Thresholds = THRESHOLDS) -> tuple[str, str, str]:
    """(verdict word, the answer in one line, the answer paragraph) from the judged cells (rule: ``rules``).
    Cells with no effect, an unclear one or outside the regime are never counted as effects."""
    F, tol = thresholds.mono_floor, thresholds.loss_tol
    counts = count_effects(peak_cells)
    tail = (" " + oscillation_summary(pvt, thresholds)).rstrip()
    count_line = ", ".join(f"{n} {e}" for e, n in counts.items())
    judged = {k: j for k, j in peak_cells.items() if j["effect"] not in UNJUDGED}
    yes = [k for k, j in judged.items() if j["effect"] == "yes"]
    per_opt = _per_optimizer(judged, yes)
    finding = annealed_finding(peak_cells, trough_cells, final_lr or {}, thresholds)
    tail = (" " + finding if finding else "") + tail
    rule = (f"(yes = the paired 95% interval of the gain in mono neurons from the low to the high lr wholly at or "
            f"above {F:g}, over >= {MIN_SEEDS} seeds, and the interval of the loss ratio high / low wholly at or "
            f"below {1 + tol:g})")
    if not judged:
        return "inconclusive", f"no cell can be judged ({count_line})", (
            f"**Answer: inconclusive. None of the {len(peak_cells)} setting x optimizer x schedule cells can be "
            f"judged ({count_line}): the runs are outside the regime the question is about, so nothing is derived "
            "from them.**" + tail)
    if not yes:
        return "inconclusive", f"effect in no cell ({count_line})", (
            f"**Answer: inconclusive. The paper's effect {rule} holds in none of the {len(judged)} cells that can "
            f"be judged ({count_line}; yes / judged cells per optimizer: {per_opt}), so the study cannot say what it "
            "depends on.**" + tail)
    others = [k for k in yes if k[1] != "lamb"]
    lamb_yes = [k for k in yes if k[1] == "lamb"]
    lamb_judged = sum(k[1] == "lamb" for k in judged)
    # "only LAMB" needs another optimizer's cell judged without the effect; none judged cannot tell
    lamb_word = "no" if others else "yes" if any(k[1] != "lamb" for k in judged) else "cannot tell"
    opts = ", ".join(dict.fromkeys(k[1] for k in others))
    if others and lamb_yes:
        head = f"the effect does not need LAMB: it holds {rule} in {len(lamb_yes)} LAMB cell(s) and in cells of {opts}"
    elif others:
        head = (f"the effect does not need LAMB, and LAMB does not show it here: it holds {rule} only in cells of "
                f"{opts}, in none of LAMB's {lamb_judged} judged cell(s)" if lamb_judged else
                f"the effect does not need LAMB: it holds {rule} in cells of {opts} (no LAMB cell can be judged)")
    elif lamb_word == "yes":
        head = f"only LAMB shows the effect {rule}"
    else:
        head = f"LAMB shows the effect {rule} and no other optimizer's cell can be judged"
    text = (f"**Answer: {head}. The cells: {', '.join(' '.join(k) for k in yes)}. Yes / judged cells per optimizer "
            f"(the others' effects in brackets): {per_opt}. ")
    scheds = list(dict.fromkeys(k[2] for k in peak_cells))
    text += "Per schedule, at the final step: " + ", ".join(
        f"{s} {sum(k[2] == s for k in yes)}/{sum(k[2] == s for k in judged)}" for s in scheds) + "."
    pc = [k for k in judged if k[2] == "paper_cosine"]
    if trough_cells and pc:
        at_trough = sum(trough_cells.get(k, {}).get("effect") == "yes" for k in pc)
        text += (f" Judged at paper_cosine's last lr trough instead of its final peak, the effect holds in "
                 f"{at_trough} of these {len(pc)} paper_cosine cells (at the peak: {sum(k in yes for k in pc)}).")
    text += "** All cells: " + count_line + "." + tail
    osc = oscillation(pvt, "paper_cosine", thresholds)
    short = (f"needs LAMB: {lamb_word}; yes per optimizer "
             + ", ".join(f"{o} {sum(k[1] == o for k in yes)}/{sum(k[1] == o for k in judged)}"
                         for o in dict.fromkeys(k[1] for k in judged))
             + (f"; paper_cosine peak > trough by >= {F:g} neurons in {len(osc['up'])}/{osc['n']}" if osc["n"] else ""))
    return "answered", short, text


def derive(peak: pd.DataFrame, trough: pd.DataFrame, final_lr: dict[str, float],
           thresholds: Thresholds = THRESHOLDS) -> dict[str, Any]:
    """Everything the answer rests on, from the checkpoint tables at ``thresholds``: ``cells``, ``trough_cells``,
    ``pvt`` and ``word``, ``short``, ``text`` of :func:`answer`."""
    cells = judge_cells(peak, thresholds)
    trough_cells = judge_cells(trough, thresholds) if len(trough) else {}
    pvt = peak_vs_trough(peak, trough)
    word, short, text = answer(cells, trough_cells, pvt, final_lr, thresholds)
    return {"cells": cells, "trough_cells": trough_cells, "pvt": pvt, "word": word, "short": short, "text": text}


def sensitivity(peak: pd.DataFrame, trough: pd.DataFrame, final_lr: dict[str, float], current: str) -> str:
    """How the one-line answer ``current`` changes with the floor and the loss tolerance halved or doubled."""
    return threshold_sensitivity(lambda f: derive(peak, trough, final_lr, THRESHOLDS.scaled(f))["short"], current)


__all__ = ["annealed_finding", "answer", "becomes_mono", "derive", "final_lr_factors", "oscillation",
           "oscillation_summary", "sensitivity"]
