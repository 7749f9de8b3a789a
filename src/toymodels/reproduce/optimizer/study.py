"""The optimizer x schedule study (OPT1): does the paper's learning-rate effect need LAMB and its schedule?

Not a claim of the paper but a question about it: preset ``OPT1`` trains the LR1 and LR3 settings with four
optimizers x three (paper: four) schedules x a low and a high lr, >= 3 seeds, with checkpoints every 512 steps so
that paper_cosine's last lr peak (the final step) and last trough (step 511 mod 1024) are both kept. Each cell is
judged by the rule of ``judges.judge_opt_cell`` (fixed before the runs; a detection floor of
MIN_MONO_NEURONS neurons in every seed, >= MIN_SEEDS seeds) at the peak and at the trough. :func:`answer` derives
the answer from the judged cells only:

* verdict ``inconclusive`` when no cell can be judged (too few seeds, diverged, or no mono neurons at either lr:
  outside the regime the question is about) or when the effect is ``yes`` in no cell;
* otherwise ``answered``: LAMB is *not needed* when a cell of another optimizer is ``yes``, *needed* when only
  LAMB cells are ``yes`` and another optimizer has a judged cell, *cannot tell* when no other optimizer's cell can
  be judged; the schedule part counts ``yes`` per schedule and compares paper_cosine judged at its final peak and
  at its last trough;
* the oscillation (a finding in every case): at the high lr, the (setting, optimizer) pairs whose mono neurons
  differ between the last peak and the last trough by >= MIN_MONO_NEURONS in every seed, and where the loss is
  higher, with constant and cosine (no oscillation) as the contrast.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from toymodels.config.presets import PRESETS
from toymodels.families.em.presets import OPT_SCHEDULES
from toymodels.results.store import Results
from toymodels.results.tables import mean_std
from toymodels.reproduce.em_claims.judges import LOSS_TOL
from toymodels.reproduce.optimizer.figures import (
    figure_curves,
    figure_effect,
    figure_matched,
    figure_peak_trough,
)
from toymodels.reproduce.optimizer.judges import (
    EFFECTS,
    LOSS_WINDOW,
    MIN_MONO_NEURONS,
    MIN_SEEDS,
    checkpoint_tables,
    count_effects,
    judge_cells,
    judge_opt_cell,
    last_trough_step,
    peak_vs_trough,
)
from toymodels.reproduce.study import StudyOptions, train_sweep
from toymodels.reproduce.verdict import Verdict, at_scale
from toymodels.reproduce.writer import md_table, provenance, write_document

TITLE = "Optimizer x schedule study (OPT1): does the learning-rate effect need LAMB and the oscillating schedule?"
MATCHED_LOSS = 0.10  # "matched loss": within 10% of the best final loss of the setting
UNJUDGED = ("too few seeds", "diverged", "no mono")
DOCUMENT = "optimizer_study.md"

__all__ = ["DOCUMENT", "TITLE", "answer", "judge_cells", "judge_opt_cell", "optimizer_study", "run_claims",
           "run_optimizer_study"]


def run_claims(claims: Sequence[str], options: StudyOptions) -> list[Verdict]:
    """OPT1 as ``reproduce()`` runs it (the study registry's signature): its one question, one Verdict."""
    return [run_optimizer_study(options.scale, options.seeds, options.out_dir, options.docs_dir,
                                progress=options.progress, command=options.command)]


def run_optimizer_study(scale: str, seeds: int, out_dir: Path, docs_dir: Path, progress: bool = True,
                        command: str | None = None) -> Verdict:
    """Train (or reload) every part of OPT1 into ``out_dir/OPT1-<scale>/<part>`` (the layout of
    ``toymodels run OPT1 --out out_dir/OPT1-<scale>``) and write ``docs_dir/optimizer_study.md``."""
    t0 = time.time()
    p = PRESETS["OPT1"]
    root = Path(out_dir) / f"OPT1-{scale}"
    results = {part: train_sweep(sw, root / part, progress)
               for part, sw in zip(p.part_names(), p.sweeps(scale, seeds))}
    cmd = command or f"toymodels reproduce OPT1 --scale {scale} --seeds {seeds} --out {out_dir}"
    return optimizer_study(results, Path(docs_dir), cmd, scale, seeds, time.time() - t0)


def ms(s: dict[str, float], digits: int = 3) -> str:
    """'mean ± sd' of a ``spread``."""
    return mean_std(s["mean"], s["sd"], digits)


def effect_text(d: dict[str, float]) -> str:
    """A paired change in neurons: mean ± sd, the 95% t interval and the seeds' min..max."""
    if not d["n"]:
        return "-"
    if d["n"] < 2:
        return f"{d['mean']:+.1f} (1 seed)"
    return (f"{d['mean']:+.1f} ± {d['sd']:.1f} [{d['lo95']:+.1f}, {d['hi95']:+.1f}] "
            f"({d['min']:+.0f}..{d['max']:+.0f})")


def cell_table(peak_cells: dict, trough_cells: dict) -> pd.DataFrame:
    """The table of the judged cells: both lrs' mono/feature and loss, the effect with its spread, the verdict at
    the last peak and, where there is one, at the last trough."""
    rows = []
    for key, j in peak_cells.items():
        lv = j["level"]
        row = {"setting": key[0], "optimizer": key[1], "schedule": key[2], "lrs": f"{j['lo']:g} → {j['hi']:g}",
               "seeds": j["n"],
               "mono/feature low": ms(lv["low"]["mono"]) if lv else "-",
               "mono/feature high": ms(lv["high"]["mono"]) if lv else "-",
               "Δ mono neurons": effect_text(j["d_neurons"]),
               "loss low": ms(lv["low"]["loss"]) if lv else "-", "loss high": ms(lv["high"]["loss"]) if lv else "-",
               "loss ratio": f"{j['loss_ratio']:.3f}", "effect (peak)": j["effect"]}
        if trough_cells:
            row["effect (trough)"] = trough_cells[key]["effect"] if key in trough_cells else "-"
        rows.append(row)
    return pd.DataFrame(rows)


def pull_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per optimizer, LR3's bias decay, its lrs and the per-step pull decay x lr on the bias."""
    lr3 = df[df["setting"] == "LR3"]
    rows = []
    for opt, g in lr3.groupby("optimizer", sort=False):
        decay = float(g["bias_decay"].iloc[0])
        for lr in sorted(g["lr"].unique()):
            rows.append({"optimizer": opt, "bias decay": f"{decay:g}", "lr": f"{lr:g}", "pull decay x lr":
                         f"{decay * lr:.2g}"})
    return pd.DataFrame(rows)


def oscillation(pvt: dict, schedule: str) -> dict[str, Any]:
    """At the high lr of ``schedule``, over the (setting, optimizer) pairs with >= MIN_SEEDS seeds: ``n`` of them,
    ``regime`` (those with MIN_MONO_NEURONS mono neurons on average at the peak or the trough), ``up`` / ``down``
    (those whose mono neurons are higher / lower at the last peak than at the last trough by >= MIN_MONO_NEURONS in
    every seed) and ``loss_up`` (those whose mean loss is higher at the peak than at the trough)."""
    mine = {k: v for k, v in pvt.items() if k[2] == schedule and k[3] == "high" and v["n"] >= MIN_SEEDS}
    return dict(n=len(mine),
                regime=[k for k, v in mine.items()
                        if max(v["neurons_peak"]["mean"], v["neurons_trough"]["mean"]) >= MIN_MONO_NEURONS],
                up=[k for k, v in mine.items() if v["d_neurons"]["min"] >= MIN_MONO_NEURONS],
                down=[k for k, v in mine.items() if v["d_neurons"]["max"] <= -MIN_MONO_NEURONS],
                loss_up=[k for k, v in mine.items() if v["loss_peak"]["mean"] > v["loss_trough"]["mean"]])


def oscillation_summary(pvt: dict) -> str:
    """One sentence for the answer: how often paper_cosine's final peak differs from its last trough."""
    osc = oscillation(pvt, "paper_cosine")
    if not osc["n"]:
        return ""
    return (f"At the high lr of paper_cosine the final model (an lr peak) has at least {MIN_MONO_NEURONS} more mono "
            f"neurons than the last lr trough in every seed in {len(osc['up'])} of {osc['n']} (setting, optimizer) "
            f"pairs and fewer in {len(osc['down'])}, while its loss is higher at the peak in {len(osc['loss_up'])} "
            "of them (section 'Peak vs trough').")


def oscillation_text(pvt: dict) -> str:
    """The oscillation as a finding, in numbers: paper_cosine at the high lr, peak vs trough, against the schedules
    whose lr does not oscillate."""
    osc = oscillation(pvt, "paper_cosine")
    if not osc["n"]:
        return ("There is no lr trough checkpoint at this scale (or fewer than 3 seeds), so the peak and trough of "
                "paper_cosine cannot be compared.")
    moved = len(osc["up"]) + len(osc["down"])
    text = ("The oscillation of paper_cosine's lr changes the model: " if moved else
            f"At this scale the oscillation does not move the mono neurons by {MIN_MONO_NEURONS} or more in every "
            "seed: ")
    text += (f"at the high lr, {len(osc['regime'])} of the {osc['n']} (setting, optimizer) pairs have at least "
             f"{MIN_MONO_NEURONS} mono neurons on average at the last peak or trough; the peak has at least "
             f"{MIN_MONO_NEURONS} more than the trough in every seed in {len(osc['up'])} pairs and fewer in "
             f"{len(osc['down'])}; the loss (on the training batches) is higher at the peak in "
             f"{len(osc['loss_up'])} of {osc['n']}.")
    for key, v in pvt.items():
        if key[2] == "paper_cosine" and key[3] == "high" and key[1] == "lamb":
            text += (f" At the high lr, paper_cosine LAMB ({key[0]}) has {ms(v['mono_peak'])} mono/feature at the "
                     f"last peak and {ms(v['mono_trough'])} at the last trough (paired change "
                     f"{effect_text(v['d_neurons'])} neurons); its loss is {ms(v['loss_peak'])} at the peak and "
                     f"{ms(v['loss_trough'])} at the trough.")
    for sched in ("constant", "cosine"):
        c = oscillation(pvt, sched)
        if c["n"]:
            text += (f" With {sched} (whose lr does not oscillate; its 'trough' is just the checkpoint 512 steps "
                     f"before the end) the same change passes the floor in {len(c['up']) + len(c['down'])} of "
                     f"{c['n']} pairs.")
    return text


def answer(peak_cells: dict, trough_cells: dict, pvt: dict) -> tuple[str, str, str]:
    """(verdict word, the answer in one line, the answer paragraph) from the judged cells (rule: module
    docstring). Noise-level gains (``below floor``) and cells outside the regime are never counted as effects."""
    counts = count_effects(peak_cells)
    tail = (" " + oscillation_summary(pvt)).rstrip()
    count_line = ", ".join(f"{n} {e}" for e, n in counts.items())
    judged = {k: j for k, j in peak_cells.items() if j["effect"] not in UNJUDGED}
    yes = [k for k, j in judged.items() if j["effect"] == "yes"]
    opts = list(dict.fromkeys(k[1] for k in peak_cells))
    per_opt = ", ".join(f"{o} {sum(k[1] == o for k in yes)}/{sum(k[1] == o for k in judged)}" for o in opts)
    rule = (f"(yes = at least {MIN_MONO_NEURONS} more mono neurons at the high lr in every one of >= {MIN_SEEDS} "
            f"seeds, at a loss within {int(100 * LOSS_TOL)}% of the low lr's)")
    if not judged:
        return "inconclusive", f"no cell can be judged ({count_line})", (
            f"**Answer: inconclusive. None of the {len(peak_cells)} setting x optimizer x schedule cells can be "
            f"judged ({count_line}): the runs are outside the regime the question is about, so nothing is derived "
            "from them.**" + tail)
    if not yes:
        return "inconclusive", f"effect in no cell ({count_line})", (
            f"**Answer: inconclusive. The paper's effect {rule} holds in none of the {len(judged)} cells that can "
            f"be judged ({count_line}), so the study cannot say what it depends on.**" + tail)
    others = [k for k in yes if k[1] != "lamb"]
    # "only LAMB" needs another optimizer's cell judged without the effect; none judged cannot tell
    lamb_word = "no" if others else "yes" if any(k[1] != "lamb" for k in judged) else "cannot tell"
    text = "**Answer: " + (
        f"the effect does not need LAMB: it holds {rule} in cells of "
        f"{', '.join(dict.fromkeys(k[1] for k in others))} as well (yes / judged cells per optimizer: {per_opt}). "
        if others else
        f"only LAMB shows the effect {rule} (yes / judged cells per optimizer: {per_opt}). " if lamb_word == "yes"
        else f"LAMB shows the effect {rule} and no other optimizer's cell can be judged (yes / judged cells per "
             f"optimizer: {per_opt}). ")
    scheds = list(dict.fromkeys(k[2] for k in peak_cells))
    text += "Per schedule, at the final step: " + ", ".join(
        f"{s} {sum(k[2] == s for k in yes)}/{sum(k[2] == s for k in judged)}" for s in scheds) + "."
    pc = [k for k in judged if k[2] == "paper_cosine"]
    if trough_cells and pc:
        at_trough = sum(trough_cells.get(k, {}).get("effect") == "yes" for k in pc)
        text += (f" Judged at paper_cosine's last lr trough instead of its final peak, the effect holds in "
                 f"{at_trough} of these {len(pc)} paper_cosine cells (at the peak: {sum(k in yes for k in pc)}).")
    text += "** All cells: " + count_line + "." + tail
    osc = oscillation(pvt, "paper_cosine")
    short = (f"needs LAMB: {lamb_word}; yes per optimizer {per_opt}"
             + (f"; paper_cosine peak > trough by >= {MIN_MONO_NEURONS} neurons in {len(osc['up'])}/{osc['n']}"
                if osc["n"] else ""))
    return "answered", short, text


def matched_loss(peak: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Per setting, the (optimizer, schedule, lr) whose mean final loss is within MATCHED_LOSS of the setting's best,
    most monosemantic first, and one sentence per setting (which names a most monosemantic one only when it has
    at least MIN_MONO_NEURONS mono neurons on average)."""
    ok = peak[peak["status"] == "ok"]
    agg = ok.groupby(["setting", "optimizer", "schedule", "lr"]).agg(
        loss=("loss", "mean"), loss_sd=("loss", "std"), mono=("mono_per_feature", "mean"),
        mono_sd=("mono_per_feature", "std"), neurons=("mono_neurons", "mean")).reset_index()
    rows, text = [], []
    for setting, g in agg.groupby("setting", sort=False):
        best = g["loss"].min()
        band = g[g["loss"] <= best * (1 + MATCHED_LOSS)].sort_values("mono", ascending=False)
        for _, r in band.iterrows():
            rows.append({"setting": setting, "optimizer": r["optimizer"], "schedule": r["schedule"],
                         "lr": f"{r['lr']:g}", "final loss": mean_std(r["loss"], r["loss_sd"]),
                         "mono/feature": mean_std(r["mono"], r["mono_sd"]), "mono neurons": f"{r['neurons']:.1f}"})
        top = band.iloc[0]
        text.append(f"{setting}: {len(band)} settings lie within {int(100 * MATCHED_LOSS)}% of the best final loss "
                    f"{best:.3g}; " + (
                        f"the most monosemantic of them is {top['optimizer']}/{top['schedule']} at lr {top['lr']:g} "
                        f"({top['mono']:.3g} mono/feature)" if top["neurons"] >= MIN_MONO_NEURONS else
                        f"none of them has {MIN_MONO_NEURONS} mono neurons on average"))
    return pd.DataFrame(rows), text


def pvt_table(pvt: dict) -> pd.DataFrame:
    """The peak and trough numbers per (setting, optimizer, schedule, lr level)."""
    return pd.DataFrame([{"setting": k[0], "optimizer": k[1], "schedule": k[2], "lr": k[3], "seeds": v["n"],
                          "mono/feature peak": ms(v["mono_peak"]), "mono/feature trough": ms(v["mono_trough"]),
                          "Δ mono neurons peak - trough": effect_text(v["d_neurons"]),
                          "loss peak": ms(v["loss_peak"]), "loss trough": ms(v["loss_trough"])}
                         for k, v in pvt.items()])


def draw_figures(docs_dir: Path, drawers: dict, notes: list[str]) -> dict[str, Path | None]:
    """Draw each figure; a figure that fails is noted, never loses the document."""
    figs: dict[str, Path | None] = {}
    for name, draw in drawers.items():
        try:
            figs[name] = draw(docs_dir / "figures" / f"{name}.png")
        except Exception as err:  # pragma: no cover - a figure must not lose the report
            figs[name] = None
            notes.append(f"(figure {name} failed: {type(err).__name__}: {err})")
    return figs


def optimizer_study(results: dict[str, Results], docs_dir: Path, command: str, scale: str, seeds: int,
                    elapsed_s: float = 0.0) -> Verdict:
    """Judge OPT1 (its parts' results by part name) and write ``docs_dir/optimizer_study.md`` with the figures
    ``opt_effect.png``, ``opt_peak_trough.png`` (when there is a trough checkpoint), ``opt_matched.png`` and
    ``opt_curves.png``."""
    docs_dir = Path(docs_dir)
    peak, trough = checkpoint_tables(results)
    peak_cells = judge_cells(peak)
    trough_cells = judge_cells(trough) if len(trough) else {}
    pvt = peak_vs_trough(peak, trough)
    verdict, short, lead = answer(peak_cells, trough_cells, pvt)
    matched, matched_text = matched_loss(peak)
    table = cell_table(peak_cells, trough_cells)
    notes: list[str] = []
    drawers = {"opt_effect": lambda path: figure_effect(peak_cells, MIN_MONO_NEURONS, path),
               "opt_matched": lambda path: figure_matched(peak, MATCHED_LOSS, path),
               "opt_curves": lambda path: figure_curves(results, path)}
    if pvt:
        drawers["opt_peak_trough"] = lambda path: figure_peak_trough(pvt, path)
    figs = draw_figures(docs_dir, drawers, notes)

    b = next(iter(results.values())).sweep.base
    steps = b.optim.steps
    trough_step = last_trough_step(steps)
    lrs = {o: sorted(peak[peak["optimizer"] == o]["lr"].unique()) for o in dict.fromkeys(peak["optimizer"])}
    scheds = list(dict.fromkeys(peak["schedule"]))
    dropped = [s for s in OPT_SCHEDULES if s not in scheds]
    n_seeds = sorted(peak.groupby(["setting", "optimizer", "schedule", "lr"])["seed"].nunique().unique())
    n_done = sum(len(r.instances) for r in results.values())
    n_all = sum(r.sweep.size() for r in results.values())
    lines = [
        f"Run at scale `{scale}` with `--seeds {seeds}` ({n_done}/{n_all} instances finished). Every verdict word, "
        "count and number in this document is computed by `toymodels.reproduce.optimizer.study` from the runs.",
        "", "## The rule (fixed before the runs)", "",
        f"A cell is one setting x optimizer x schedule; its effect is the change in monosemantic neurons from the "
        f"optimizer's lowest to its highest lr, paired by seed. Detection floor: {MIN_MONO_NEURONS} neurons "
        f"({MIN_MONO_NEURONS}/N = {MIN_MONO_NEURONS / b.data.N:.3g} mono/feature at N={b.data.N}). First match: "
        f"*too few seeds* (fewer than {MIN_SEEDS} seeds ran at both lrs); *diverged* (fewer than {MIN_SEEDS} "
        f"finished at both); *no mono* (neither lr has {MIN_MONO_NEURONS} mono neurons on average: outside the regime "
        f"the claim is about); **yes** (a gain of at least {MIN_MONO_NEURONS} neurons in every seed and the high lr's "
        f"mean loss within {int(100 * LOSS_TOL)}% of the low lr's); *mono up, loss up* (the same gain at a higher "
        f"loss); *reversed* (a loss of at least {MIN_MONO_NEURONS} in every seed); *below floor* (|mean change| < "
        f"{MIN_MONO_NEURONS} neurons: noise, counted neither way); *mixed seeds* (the mean passes the floor, the seeds "
        "disagree). The answer counts only *yes* cells and names the cells it cannot judge.",
        "", f"Effects are given as mean ± sd over seeds [95% t interval of the mean, mean ± t(n-1) sd/sqrt(n)] "
        "(min..max over seeds), in neurons. mono/feature and loss: mean ± sd over seeds. The loss at a checkpoint is "
        f"the mean task loss logged on the training batches (every 16 steps) in the {LOSS_WINDOW} steps up to it "
        "(at the final step this is `final_loss`); no loss is evaluated on the checkpoint itself.",
        "", "## What was run", "",
        f"Preset `OPT1` at `{scale}` scale: N={b.data.N}, m={b.model.m}, k={b.model.k}, eps={b.data.eps:g}, ReLU "
        f"decoder, batch {b.optim.batch_size}, **{steps} steps**, seeds per lr: {', '.join(map(str, n_seeds))}. "
        "Settings: LR1 (bias offset 0, no bias decay) and LR3 (bias offset -1, bias decay b *= 1 - decay x lr every "
        "step). Optimizers and their lrs: " + "; ".join(f"{o} {', '.join(f'{x:g}' for x in v)}" for o, v in lrs.items())
        + ". LAMB's lr is a relative step per tensor (the paper's), Adam/AdamW's an absolute step per weight, SGD's "
        f"(momentum 0.9) a multiple of the gradient; the i-th lr of each optimizer is LAMB's times one factor. "
        f"Schedules: {', '.join(scheds)}" + (
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
        "The bias decay acts per step as b *= 1 - decay x lr, so with one decay for all optimizers the pull would "
        "follow each optimizer's lr scale (30x apart). LR3's decay is set per optimizer so that decay x lr is the "
        "same at the same lr level for every optimizer: this separates the decay strength from the optimizer.", "",
        md_table(pull_table(peak)), "",
        "## Higher lr vs lower lr per cell", "",
        "*effect (peak)*: the rule at the final step (the lr peak of paper_cosine, like the paper's final model); "
        "*effect (trough)*: the same rule at the last trough checkpoint.", ""]
    if figs.get("opt_effect"):
        lines += ["![effect](figures/opt_effect.png)", ""]
    lines += [md_table(table), "", "## Peak vs trough: the oscillation", "", oscillation_text(pvt), ""]
    if figs.get("opt_peak_trough"):
        lines += ["![peak vs trough](figures/opt_peak_trough.png)", ""]
    if pvt:
        lines += [md_table(pvt_table(pvt)), ""]
    if figs.get("opt_curves"):
        lines += ["mono/feature over training at the high lr of each optimizer (mean over seeds; checkpoints at "
                  "2^j - 1 and every 512 steps):", "", "![curves](figures/opt_curves.png)", ""]
    lines += ["## At matched loss", "",
              f"Settings (optimizer, schedule, lr; seeds averaged) whose final loss is within "
              f"{int(100 * MATCHED_LOSS)}% of the best of their setting, most monosemantic first. "
              + " ".join(t + "." for t in matched_text), ""]
    if figs.get("opt_matched"):
        lines += ["![matched](figures/opt_matched.png)", ""]
    lines += [md_table(matched), ""]
    by_setting = peak[peak["status"] == "ok"].groupby("setting")[["loss", "dead_neurons"]].mean()
    lines += ["## Caveats", "",
              f"- {steps} steps and batch {b.optim.batch_size} against the paper's 2^17 and 8192; N={b.data.N} "
              f"against 512, so one neuron is {1 / b.data.N:.3g} mono/feature here."]
    if {"LR1", "LR3"} <= set(by_setting.index):
        lines += [f"- LR3 runs average {by_setting.loc['LR3', 'dead_neurons']:.0f} dead neurons (LR1: "
                  f"{by_setting.loc['LR1', 'dead_neurons']:.0f}) and a final loss of {by_setting.loc['LR3', 'loss']:.3g} "
                  f"(LR1: {by_setting.loc['LR1', 'loss']:.3g})."]
    lines += [f"- {max(len(v) for v in lrs.values())} lrs per optimizer: 'higher lr' is the top of each optimizer's "
              "range against its bottom; the ranges are matched by the size of a step, not tuned.",
              "- The loss at the trough is measured on the training batches of the 128 steps before it, while the "
              "lr falls to ~0; a loss evaluated on the checkpoint itself could differ slightly.", *notes, ""]
    v = at_scale(Verdict(claim="OPT1", title=TITLE, verdict=verdict, reason=lead, numbers=short, table=table,
                         figure="figures/opt_effect.png" if figs.get("opt_effect") else None,
                         details={"matched": matched, "cells": peak_cells, "trough_cells": trough_cells,
                                  "peak_vs_trough": pvt, "effects": EFFECTS, "elapsed_s": elapsed_s}), scale)
    write_document(docs_dir / DOCUMENT, TITLE, provenance(command, results.values()), lead=[v.reason],
                   body=lines)
    return v
