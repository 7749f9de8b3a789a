"""docs/reproduction.md: the EM claims' verdicts, what was run, the setup and its deviations, the oscillation finding
and one section per claim. Every sentence is computed from the results and configs or true by construction
(a rule restated from the judges' constants); nothing is written by hand about the outcome.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import pandas as pd

from toymodels.config.presets import preset
from toymodels.families.em.presets import PAPER_K, PAPER_LAMB_CLAMP, PAPER_STEPS
from toymodels.results.store import Results
from toymodels.reproduce.confirmation import side_by_side
from toymodels.reproduce.em_claims.judges import OTHER_SOURCES, STATEMENTS, lr_phase
from toymodels.reproduce.em_claims.rules import RULES
from toymodels.reproduce.em_claims.oscillation import Oscillation, oscillation_sentence
from toymodels.reproduce.em_claims.sweeps import B_PRESETS
from toymodels.reproduce.verdict import Verdict
from toymodels.reproduce.writer import md_table, provenance, write_document

TITLE = "Reproduction of *Engineering Monosemanticity in Toy Models* (Jermyn et al. 2022)"
PAPER_N = 512
#: Table 1's batch behind each primary sweep label (its decay is the paper's, per step)
TABLE1_BATCH = {"LR1": "LR1", "LR2": "LR2", "LR3": "LR3", **{f"B-eps{t}": b for t, b in B_PRESETS.items()},
                "K1": "K1", "RG1": "RG1"}
PAPER_B_OFFSETS = 11  # np.linspace(-2, 1, 11) (docs/papers.md §1.5)


def _fmt(v: object) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _relative_step(norm_squared: float, clamp: float) -> str:
    """'0.54 lr': the relative LAMB step of a tensor of norm √norm_squared under ``clamp``."""
    return f"{min(1.0, clamp / math.sqrt(norm_squared)):.2f} lr"


def sweep_line(res: Results) -> str:
    """One row of the 'What was run' table: grid, fixed fields, instances done, the commit that trained it."""
    sw = res.sweep
    b = sw.base.flat()
    fixed = ", ".join(f"{k}={_fmt(b[k])}" for k in
                      ("task", "distribution", "N", "m", "k", "eps", "lr", "bias_offset", "bias_decay", "l1",
                       "optimizer", "lamb_clamp", "schedule", "batch_size", "steps", "checkpoint_every")
                      if k in b and k not in sw.grid)
    grid = "; ".join(f"{k} ∈ {{{', '.join(_fmt(v) for v in vals)}}}" for k, vals in sw.grid.items())
    n_ok = int((res.instances["status"] == "ok").sum()) if "status" in res.instances else 0
    commit = str(res.meta.get("git_commit") or "unknown")[:12]
    return f"| `{sw.name}` | {grid} | {fixed} | {len(res.instances)}/{sw.size()} ({n_ok} ok) | `{commit}` |"


def _short(v: Verdict) -> str:
    """The verdict table's short column: mono/feature per lr for rows 1-2, else the numbers (or the reason)."""
    t = v.table
    if v.claim in ("LR1", "LR2") and t is not None and len(t):
        return "; ".join(f"lr {a}: {b}" for a, b in zip(t["lr"], t["mono_per_feature"])) + " mono/feature"
    txt = v.numbers or v.reason
    return txt if len(txt) < 400 else txt[:397] + "…"


def _sensitivity(v: Verdict) -> tuple:
    return tuple(v.details.get("sensitivity", ()))


def _final_step_text(results: dict[str, Results]) -> str:
    """Which step the verdicts read, and where it sits on the lr schedule, per distinct (steps, schedule)."""
    cases = sorted({(int(r.instances["steps"].iloc[0]), str(r.instances["schedule"].iloc[0]))
                    for r in results.values() if len(r.instances)})
    parts = []
    for steps, schedule in cases:
        phase = lr_phase(steps - 1, schedule)
        parts.append(f"step {steps - 1} of {schedule}" + (f", a {phase} of the periodic lr" if phase else
                                                           ", neither a peak nor a trough of the lr"))
    return "; ".join(parts)


def setup_lines(results: dict[str, Results], steps: dict[str, int]) -> list[str]:
    """'Setup and deviations from the paper': sizes, decays, the LAMB clamp, checkpoints, grids; all computed."""
    done = {k: r for k, r in results.items() if len(r.instances)}
    if not done:
        return ["No sweep has finished results yet."]
    first = next(iter(done.values())).sweep.base
    all_steps = sorted({r.sweep.base.optim.steps for r in done.values()})
    lines = [f"- Sizes: N={first.data.N}, m={first.model.m}, batch {first.optim.batch_size}, "
             f"{' or '.join(map(str, all_steps))} steps (paper: N={PAPER_N}, m=64, k={PAPER_K}, batch 8192, "
             f"{PAPER_STEPS} steps: {PAPER_STEPS * 8192 / (max(all_steps) * first.optim.batch_size):.0f}x the "
             "training samples of the longest run here)"
             + (f"; steps cut by `--steps` to {', '.join(f'{v} ({k})' for k, v in steps.items())}".replace("(*)", "(every "
                "claim)") if steps else "")
             + "."]
    decays = []
    for label, batch in TABLE1_BATCH.items():
        if label in done:
            ours, paper = float(done[label].instances["bias_decay"].iloc[0]), preset(batch, "paper").base.optim
            same = "Table 1's, per step" if math.isclose(ours, paper.bias_decay) else \
                f"differs from Table 1's {paper.bias_decay:g}"
            decays.append(f"{label} {ours:g} ({same})")
    if decays:
        lines.append("- Bias decay of the primary runs: after each optimizer step of the first half of training "
                     "(steps t < steps/2; none after), b1 *= 1 - decay x base lr, as the paper's code applies it: "
                     + "; ".join(decays) + ".")
    if "LR3-rescaled" in done and "LR3" in done:
        d0 = float(done["LR3"].instances["bias_decay"].iloc[0])
        d1 = float(done["LR3-rescaled"].instances["bias_decay"].iloc[0])
        lines.append(f"- Sensitivity analysis `LR3-rescaled`: decay {d1:g} = {d0:g} x {d1 / d0:g} (2^17/steps), so "
                     "that the cumulative pull over the shorter run equals the paper's; judged by the same rule as "
                     "LR3, reported beside it.")
    ks = sorted({(int(r.instances["k"].iloc[0]), int(r.instances["N"].iloc[0]), float(r.instances["lamb_clamp"]
                  .iloc[0])) for r in done.values() if "lamb_clamp" in r.instances})
    if ks:
        here = "; ".join(f"k={k}, N={n}, clamp {c:g}: ‖W1‖ ≈ {math.sqrt(k / 3):.1f}, ‖W2‖ ≈ {math.sqrt(n / 3):.1f}, "
                         f"relative steps {_relative_step(k / 3, c)} and {_relative_step(n / 3, c)}"
                         for k, n, c in ks)
        lines.append("- LAMB clamp: a step of a tensor p is lr x min(‖p‖, clamp) along its normalised Adam update, "
                     "i.e. a relative step of lr x min(1, clamp/‖p‖). The initial norms under the default init "
                     "(W1 ~ U(±1/√m), W2 ~ U(±1/√k)) are ‖W1‖ ≈ √(k/3) and ‖W2‖ ≈ √(N/3): at the paper's size "
                     f"{math.sqrt(PAPER_K / 3):.1f} and {math.sqrt(PAPER_N / 3):.1f} with clamp {PAPER_LAMB_CLAMP:g}, "
                     f"relative steps {_relative_step(PAPER_K / 3, PAPER_LAMB_CLAMP)} and "
                     f"{_relative_step(PAPER_N / 3, PAPER_LAMB_CLAMP)} at the start; here {here}. Where these "
                     "differ, an lr does not carry over one to one; the `-clamp` runs (clamp x √(k/1024)) are a "
                     "sensitivity analysis, judged by the same rules.")
    every = sorted({(label, r.sweep.base.run.checkpoint_every) for label, r in done.items()})
    kept = [label for label, e in every if e]
    if kept:
        lines.append(f"- Checkpoints: a model every {', '.join(sorted({str(e) for _, e in every if e}))} steps "
                     f"(every peak and trough of the periodic lr) in {', '.join(kept)}; the other sweeps keep it "
                     "after steps 2^j - 1 and the last step, as the paper's code.")
    b = {k: r for k, r in done.items() if k.startswith("B-eps")}
    if b:
        offsets = sorted({float(x) for r in b.values() for x in r.instances["bias_offset"]})
        lines.append(f"- B: {len(offsets)} initial bias offsets ({', '.join(f'{o:g}' for o in offsets)}) instead "
                     f"of the paper's {PAPER_B_OFFSETS} (-2 to 1), at "
                     + ", ".join(f"eps 1/{round(1 / float(r.instances['eps'].iloc[0]))} ({TABLE1_BATCH[k]})"
                                 for k, r in sorted(b.items())) + f"; all at lr "
                     f"{float(next(iter(b.values())).instances['lr'].iloc[0]):g}.")
    if "K1" in done:
        lines.append(f"- K1: k ∈ {{{', '.join(str(int(k)) for k in sorted(done['K1'].instances['k'].unique()))}}} "
                     f"(N={int(done['K1'].instances['N'].iloc[0])}; the paper: 16 to 2048 at N={PAPER_N}).")
    if "RG1" in done:
        lines.append(f"- RG1: l1 ∈ {{{', '.join(f'{x:g}' for x in sorted(done['RG1'].instances['l1'].unique()))}}}"
                     " (the paper: 1e-1 to 1e-7); l1 = 0 is LR3 at RG1's lr when it ran with the same decay and "
                     "steps.")
    return lines


def clamp_lines(results: dict[str, Results]) -> list[str]:
    """What the size-scaled LAMB clamp costs: per lr, LR1-clamp's loss and mono/feature against LR1's (means)."""
    if "LR1" not in results or "LR1-clamp" not in results:
        return []
    a, b = (r.instances[r.instances["status"] == "ok"].groupby("lr")[["final_loss", "mono_per_feature"]].mean()
            for r in (results["LR1"], results["LR1-clamp"]))
    clamp = float(results["LR1-clamp"].instances["lamb_clamp"].iloc[0])
    rows = [f"lr {lr:g}: loss {b.loc[lr, 'final_loss']:.3f} vs {a.loc[lr, 'final_loss']:.3f}, mono/feature "
            f"{b.loc[lr, 'mono_per_feature']:.3f} vs {a.loc[lr, 'mono_per_feature']:.3f}"
            for lr in a.index if lr in b.index]
    return [f"**LAMB clamp {clamp:g} against clamp 10 (LR1-clamp vs LR1, means over seeds).** " + "; ".join(rows)
            + ".", ""]


def oscillation_lines(oscillations: Sequence[Oscillation], verdicts: Sequence[Verdict],
                      figure: str | None) -> list[str]:
    """The finding about the periodic lr: the rule, one computed sentence per sweep, the table, the figure, and
    whether any claim's verdict changes between the final peak and the last trough."""
    lines = ["## The periodic learning rate: models at its peaks and troughs", "",
             "The paper's schedule (CosineAnnealingLR, T_max = 512, stepped past T_max) is periodic: the model after "
             "step t was just trained at the peak lr when t ≡ 1023 (mod 1024) and near lr 0 when t ≡ 511. A run of "
             "a multiple of 1024 steps ends at a peak, as the paper's did; the verdicts above read that final "
             "model. The loss at a checkpoint is the mean of the last 8 logged task losses (every 16th batch) at or "
             "before its step, i.e. over its last 128 steps; at the final step this is the final loss.", "",
             f"Rule (`oscillation.oscillation`): at an lr the oscillation *matters* when "
             f"the number of mono neurons at the last peak and at the last trough differ by at least "
             f"{RULES.floor_neurons:g} in every seed, in the same direction; it is a *trade-off* when in every seed the "
             "checkpoint with more mono neurons also has the higher loss.", ""]
    if not oscillations:
        return lines + ["No sweep here has checkpoints at a peak and a trough within its last 1024 steps, so the "
                        "oscillation cannot be measured in these runs.", ""]
    lines += [f"- {oscillation_sentence(o)}." for o in oscillations] + [""]
    changed = [(v.claim, s.label, s.verdict.verdict, v.verdict) for v in verdicts for s in _sensitivity(v)
               if "trough" in s.label]
    if changed:
        lines += ["Read at the last trough instead of the final peak, by the same rules: "
                  + "; ".join(f"claim {c}: {tv} (at the peak: {pv}{', the same' if tv == pv else ', different'})"
                              for c, _, tv, pv in changed) + ".", ""]
    if figure:
        lines += [f"![oscillation]({figure})", ""]
    lines += [md_table(pd.concat([o.table for o in oscillations], ignore_index=True)), ""]
    return lines


def write_report(verdicts: list[Verdict], results: dict[str, Results], oscillations: Sequence[Oscillation],
                 oscillation_figure: str | None, path: Path, command: str, scale: str, seeds: int,
                 steps: dict[str, int], elapsed_s: float) -> Path:
    """docs/reproduction.md: the verdict table, what was run, the setup, the oscillation finding, then per claim the
    paper's statement, what other sources add, the verdict with its reason, the sensitivity readings, the figure
    and the numbers."""
    lines = [
        f"Run at scale `{scale}`, {seeds} seeds per setting, {elapsed_s / 60:.0f} min of this run (finished sweeps "
        "are reloaded, not retrained). Checks: docs/papers.md §4 rows 1-7. Numbers are mean ± sample standard "
        "deviation over the seeds that did not diverge; mono/feature is the paper's metric (# neurons with max/sum "
        "single-feature activation > 0.999, divided by N). Each verdict reads the model after the last step ("
        f"{_final_step_text(results) or 'no finished run'}).",
        "",
        "The verdicts are computed by `toymodels.reproduce.em_claims.judges`, `grid_judges` and `mechanism` with "
        "the thresholds of `em_claims.rules`, not written by hand; the study records the rules' hash and commit in "
        "each results folder before it trains, and a verdict of data trained under other rules is `post hoc`. "
        "Every effect is a 95% interval over seeds (paired by seed where both sides ran the same seeds, else a "
        "bootstrap over seeds) and counts only when the whole interval clears its floor: "
        f"{RULES.floor_neurons:g} mono neurons (the detection floor; a sweep below it everywhere is inconclusive), "
        f"\"no loss cost\" a loss ratio at most {1 + RULES.loss_tol:g}. An interval straddling its floor makes the "
        "verdict `inconclusive`; trends are Spearman's rho over every seed's point with a seed-bootstrap interval. "
        "Only the paper's criterion decides a verdict; other sources' criteria are reported beside it. Each "
        "verdict comes from the claim's primary run; the sensitivity readings are judged by the same rule and "
        "shown beside it, never replacing it, and the last column says how the verdict moves with every threshold "
        "halved or doubled.",
        "",
        "## Verdicts",
        "",
        "| claim | verdict (primary run) | sensitivity readings (same rule) | our numbers (short) | thresholds "
        "halved / doubled |",
        "|---|---|---|---|---|",
    ]
    for v in verdicts:
        sens = "; ".join(f"{s.label}: {'not run yet' if s.verdict.reason.startswith('not run') else s.verdict.verdict}"
                         for s in _sensitivity(v)) or "none"
        lines.append(f"| {v.title} | **{v.verdict}** | {sens} | {_short(v)} | {v.details.get('thresholds', '')} |")
    lines += ["", *side_by_side(verdicts), *clamp_lines(results), "## What was run", "", "| sweep | grid | fixed | instances done | trained at commit |",
              "|---|---|---|---|---|"]
    seen = set()
    for res in results.values():
        if res.sweep.name not in seen:
            seen.add(res.sweep.name)
            lines.append(sweep_line(res))
    lines += ["", "## Setup and deviations from the paper", "", *setup_lines(results, steps), ""]
    lines += oscillation_lines(oscillations, verdicts, oscillation_figure)
    for v in verdicts:
        lines += [f"## {v.title}", "", f"**Paper:** {STATEMENTS[v.claim][1]}", ""]
        if v.claim in OTHER_SOURCES:
            lines += [f"**Other sources (not the paper):** {OTHER_SOURCES[v.claim]}", ""]
        lines += [f"**Verdict: {v.verdict}** — {v.reason}.", ""]
        if _sensitivity(v):
            lines += ["Sensitivity readings (the same rule; the verdict above is the primary run's):", "",
                      md_table(pd.DataFrame([{"reading": s.label, "verdict": s.verdict.verdict,
                                              "reason": s.verdict.reason} for s in _sensitivity(v)])), ""]
        if v.figure:
            lines += [f"![{v.claim}]({v.figure})", ""]
        if v.numbers and v.claim == "MECH":
            lines += [f"**Numbers:** {v.numbers}.", ""]
        lines += [md_table(v.table), ""]
    return write_document(path, TITLE, provenance(command, results.values()), body=lines)
