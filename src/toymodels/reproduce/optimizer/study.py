"""The optimizer x schedule study (OPT1): does the paper's learning-rate effect need LAMB and its schedule?

Not a claim of the paper but a question about it: preset ``OPT1`` trains the LR1 and LR3 settings with four
optimizers x three (paper: four) schedules x a low and a high lr, >= 3 seeds, with checkpoints every 512 steps so
that paper_cosine's last lr peak (the final step) and last trough (step 511 mod 1024) are both kept. Each cell is
judged by the rule of ``rules`` (``judges.judge_opt_cell``: 95% intervals over seeds against a detection floor) at
the peak and at the trough, and ``answer.derive`` derives the answer from the judged cells only:

* verdict ``inconclusive`` when no cell can be judged (too few seeds, diverged, or not monosemantic at either lr:
  outside the regime the question is about) or when the effect is ``yes`` in no cell;
* otherwise ``answered``: LAMB is *not needed* when a cell of another optimizer is ``yes``, *needed* when only
  LAMB cells are ``yes`` and another optimizer has a judged cell, *cannot tell* when no other optimizer's cell can
  be judged; the wording names each optimizer's ``yes`` cells out of its judged ones; the schedule part counts
  ``yes`` per schedule, compares paper_cosine at its final peak and its last trough, and says whether the
  schedules that end annealed make any cell monosemantic;
* the oscillation (a finding in every case): at the high lr, the (setting, optimizer) pairs whose mono neurons
  differ between the last peak and the last trough beyond the floor (paired interval), with constant and cosine
  (no oscillation) as the contrast.

Inside ``reproduce`` the verdict goes through ``confirmation.finalize`` before the document is written.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from toymodels.config.presets import PRESETS
from toymodels.families.em.presets import OPT_SCHEDULES
from toymodels.reproduce.confirmation import finalize, side_by_side
from toymodels.reproduce.optimizer.answer import (
    annealed_finding,
    derive,
    final_lr_factors,
    sensitivity,
)
from toymodels.reproduce.optimizer.figures import (
    figure_curves,
    figure_effect,
    figure_matched,
    figure_peak_trough,
)
from toymodels.reproduce.optimizer.judges import (
    checkpoint_tables,
    judge_cells,
    judge_opt_cell,
    last_trough_step,
)
from toymodels.reproduce.optimizer.rules import (
    LOSS_WINDOW,
    MATCHED_LOSS,
    MIN_SEEDS,
    THRESHOLDS,
)
from toymodels.reproduce.optimizer.tables import (
    cell_table,
    draw_figures,
    matched_loss,
    md_rule,
    oscillation_text,
    pull_table,
    pvt_table,
)
from toymodels.reproduce.study import StudyOptions, load_for_study, train_sweep
from toymodels.reproduce.verdict import Verdict, at_scale
from toymodels.reproduce.writer import md_table, provenance, write_document
from toymodels.results.store import Results

TITLE = "Optimizer x schedule study (OPT1): does the learning-rate effect need LAMB and the oscillating schedule?"
DOCUMENT = "optimizer_study.md"

__all__ = ["DOCUMENT", "TITLE", "judge_cells", "judge_opt_cell", "optimizer_study", "run_claims",
           "run_optimizer_study"]


def run_claims(claims: Sequence[str], options: StudyOptions) -> list[Verdict]:
    """OPT1 as ``reproduce()`` runs it (the study registry's signature): its one question, one Verdict."""
    return [run_optimizer_study(options.scale, options.seeds, options.out_dir, options.docs_dir,
                                progress=options.progress, command=options.command, train=options.train)]


def run_optimizer_study(scale: str, seeds: int, out_dir: Path, docs_dir: Path, progress: bool = True,
                        command: str | None = None, train: bool = True) -> Verdict:
    """Train (or reload) every part of OPT1 into ``out_dir/OPT1-<scale>/<part>`` (the layout of
    ``toymodels run OPT1 --out out_dir/OPT1-<scale>``) and write ``docs_dir/optimizer_study.md``. ``train``
    False: only reload the parts that exist."""
    t0 = time.time()
    p = PRESETS["OPT1"]
    root = Path(out_dir) / f"OPT1-{scale}"
    results = {}
    for part, sw in zip(p.part_names(), p.sweeps(scale, seeds)):
        if train:
            results[part] = train_sweep(sw, root / part, progress)
        elif (root / part / "sweep.json").exists():
            results[part] = load_for_study(root / part)
    cmd = command or f"toymodels reproduce OPT1 --scale {scale} --seeds {seeds} --out {out_dir}"
    if not results:
        v = Verdict(claim="OPT1", title=TITLE, verdict="inconclusive",
                    reason=f"not run: no OPT1 results folder under {root} and training was not asked for")
        write_document(Path(docs_dir) / DOCUMENT, TITLE, provenance(cmd, []), lead=[v.reason], body=[])
        return v
    return optimizer_study(results, Path(docs_dir), cmd, scale, seeds, time.time() - t0)


def optimizer_study(results: dict[str, Results], docs_dir: Path, command: str, scale: str, seeds: int,
                    elapsed_s: float = 0.0) -> Verdict:
    """Judge OPT1 (its parts' results by part name) and write ``docs_dir/optimizer_study.md`` with the figures
    ``opt_effect.png``, ``opt_peak_trough.png`` (when there is a trough checkpoint), ``opt_matched.png`` and
    ``opt_curves.png``."""
    docs_dir = Path(docs_dir)
    peak, trough = checkpoint_tables(results)
    b = next(iter(results.values())).sweep.base
    steps = b.optim.steps
    scheds = list(dict.fromkeys(peak["schedule"]))
    final_lr = final_lr_factors(scheds, steps)
    got = derive(peak, trough, final_lr)
    peak_cells, trough_cells, pvt = got["cells"], got["trough_cells"], got["pvt"]
    moves = sensitivity(peak, trough, final_lr, got["short"])
    lead = (f"{got['text']} Threshold sensitivity (the floor {THRESHOLDS.mono_floor:g} neurons and the loss "
            f"tolerance {THRESHOLDS.loss_tol:g}, halved or doubled), of the one-line answer '{got['short']}': "
            f"{moves}.")
    matched, matched_text = matched_loss(peak)
    table = cell_table(peak_cells, trough_cells)
    notes: list[str] = []
    drawers = {"opt_effect": lambda path: figure_effect(peak_cells, THRESHOLDS.mono_floor, path),
               "opt_matched": lambda path: figure_matched(peak, MATCHED_LOSS, path),
               "opt_curves": lambda path: figure_curves(results, path)}
    if pvt:
        drawers["opt_peak_trough"] = lambda path: figure_peak_trough(pvt, path)
    figs = draw_figures(docs_dir, drawers, notes)
    v = at_scale(Verdict(claim="OPT1", title=TITLE, verdict=got["word"], reason=lead, numbers=got["short"],
                         table=table, figure="figures/opt_effect.png" if figs.get("opt_effect") else None,
                         details={"matched": matched, "cells": peak_cells, "trough_cells": trough_cells,
                                  "peak_vs_trough": pvt, "final_lr": final_lr, "threshold_sensitivity": moves,
                                  "elapsed_s": elapsed_s}), scale)
    (v,) = finalize([v])  # post hoc data cannot decide; the exploratory verdict beside (confirmation)

    trough_step = last_trough_step(steps)
    lrs = {o: sorted(peak[peak["optimizer"] == o]["lr"].unique()) for o in dict.fromkeys(peak["optimizer"])}
    dropped = [s for s in OPT_SCHEDULES if s not in scheds]
    n_seeds = sorted(peak.groupby(["setting", "optimizer", "schedule", "lr"])["seed"].nunique().unique())
    n_done = sum(len(r.instances) for r in results.values())
    n_all = sum(r.sweep.size() for r in results.values())
    lines = [
        *side_by_side([v]),
        (f"Run at scale `{scale}` with `--seeds {seeds}` ({n_done}/{n_all} instances finished). Every verdict word, "
        "count and number in this document is computed by `toymodels.reproduce.optimizer` from the runs."),
        "", "## The rule", "",
        ("The rules (thresholds, checkpoints, the cell rule and how the answer is derived) are in "
        "`toymodels/reproduce/optimizer/rules.py`; whether they were fixed before these runs is the pre-registration "
        "line above."), "", md_rule(b.data.N),
        "", ("Effects are given as mean ± sd over seeds [95% t interval of the mean of the per-seed differences] "
        "(seeds min..max), in neurons; 'mono?' is whether the model becomes monosemantic at that lr, with the 95% "
        "interval of its mean mono neurons; the loss ratio with its paired bootstrap 95% interval. The loss at a "
        f"checkpoint is the mean task loss logged on the training batches (every 16 steps) in the {LOSS_WINDOW} "
        "steps up to it (at the final step this is `final_loss`); no loss is evaluated on the checkpoint itself."),
        "", "## What was run", "",
        f"Preset `OPT1` at `{scale}` scale: N={b.data.N}, m={b.model.m}, k={b.model.k}, eps={b.data.eps:g}, ReLU "
        f"decoder, batch {b.optim.batch_size}, **{steps} steps**, seeds per lr: {', '.join(map(str, n_seeds))}. "
        "Settings: LR1 (bias offset 0, no bias decay) and LR3 (bias offset -1, bias decay: b *= 1 - decay x lr0, "
        f"lr0 the base lr, after each of the first {steps // 2} steps, none in the second half, as the engine "
        "applies it). Optimizers and their lrs: "
        + "; ".join(f"{o} {', '.join(f'{x:g}' for x in v)}" for o, v in lrs.items())
        + ". LAMB's lr is a relative step per tensor (the paper's), Adam/AdamW's an absolute step per weight, SGD's "
        "(momentum 0.9) a multiple of the gradient; the i-th lr of each optimizer is LAMB's times one factor. "
        f"Schedules: {', '.join(f'{s} (final lr {final_lr[s]:.2g} x base)' for s in scheds)}" + (
            f" ({', '.join(dropped)} of the paper-scale preset is not run at this scale: "
            + ("smoke keeps three values per field)" if scale == "smoke" else
               f"compute budget, {steps} steps x {max(n_seeds)} seeds on a 2-core machine)") if dropped else "") +
        ". paper_cosine (CosineAnnealingLR T_max=512 stepped every step) oscillates with period 1024: the final "
        f"step {steps - 1} is at an lr **peak**" + (
            f", step {trough_step} (511 mod 1024) at the last **trough**; checkpoints every "
            f"{b.run.checkpoint_every} steps keep both" if trough_step is not None else
            "; the run is shorter than 512 steps, so it has no trough checkpoint") +
        ". cosine anneals the lr to ~0 at the end, constant never changes it.",
        "", "## Bias decay: the same pull for every optimizer", "",
        ("The bias decay acts per step as b *= 1 - decay x lr0 (in the first half of training), so with one decay for "
        "all optimizers the pull would follow each optimizer's lr scale (30x apart). LR3's decay is set per "
        "optimizer so that decay x lr is the same at the same lr level for every optimizer: this separates the "
        "decay strength from the optimizer."), "", md_table(pull_table(peak)), "",
        "## Higher lr vs lower lr per cell", "",
        ("*effect (peak)*: the rule at the final step (the lr peak of paper_cosine, like the paper's final model); "
        "*effect (trough)*: the same rule at the last trough checkpoint."), ""]
    if figs.get("opt_effect"):
        lines += ["![effect](figures/opt_effect.png)", ""]
    finding = annealed_finding(peak_cells, trough_cells, final_lr)
    lines += [md_table(table), "", "## Schedules that end annealed", "",
              finding or "No schedule of these runs ends with its lr below a tenth of its base lr.", "",
              "## Peak vs trough: the oscillation", "", oscillation_text(pvt), ""]
    if figs.get("opt_peak_trough"):
        lines += ["![peak vs trough](figures/opt_peak_trough.png)", ""]
    if pvt:
        lines += [md_table(pvt_table(pvt)), ""]
    if figs.get("opt_curves"):
        lines += [("mono/feature over training at the high lr of each optimizer (mean over seeds; checkpoints at "
                  "2^j - 1 and every 512 steps):"), "", "![curves](figures/opt_curves.png)", ""]
    lines += ["## At matched loss", "",
              f"Settings (optimizer, schedule, lr; seeds averaged) whose final loss is within "
              f"{int(100 * MATCHED_LOSS)}% of the best of their setting, most monosemantic first. "
              + " ".join(t + "." for t in matched_text), ""]
    if figs.get("opt_matched"):
        lines += ["![matched](figures/opt_matched.png)", ""]
    lines += [md_table(matched), ""]
    by_setting = peak[peak["status"] == "ok"].groupby("setting")[["loss", "dead_neurons"]].mean()
    lines += ["## Caveats", "",
              (f"- {steps} steps and batch {b.optim.batch_size} against the paper's 2^17 and 8192; N={b.data.N} "
              f"against 512, so one neuron is {1 / b.data.N:.3g} mono/feature here.")]
    if {"LR1", "LR3"} <= set(by_setting.index):
        lines += [(f"- LR3 runs average {by_setting.loc['LR3', 'dead_neurons']:.0f} dead neurons (LR1: "
                  f"{by_setting.loc['LR1', 'dead_neurons']:.0f}) and a final loss of "
                  f"{by_setting.loc['LR3', 'loss']:.3g} "
                  f"(LR1: {by_setting.loc['LR1', 'loss']:.3g}).")]
    lines += [(f"- {max(len(v) for v in lrs.values())} lrs per optimizer: 'higher lr' is the top of each optimizer's "
              "range against its bottom; the ranges are matched by the size of a step, not tuned."),
              (f"- With {MIN_SEEDS} seeds a 95% t interval is mean ± 4.3 sd/sqrt(3): a cell whose seeds disagree by a "
              "few neurons reads 'unclear' rather than a direction."),
              ("- The loss at the trough is measured on the training batches of the 128 steps before it, while the "
              "lr falls to ~0; a loss evaluated on the checkpoint itself could differ slightly."), *notes, ""]
    write_document(docs_dir / DOCUMENT, TITLE, provenance(command, results.values()), lead=[v.reason],
                   body=lines)
    return v
