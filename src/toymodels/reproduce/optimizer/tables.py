"""The tables and prose of the optimizer study's document (docs/optimizer_study.md), from its judged cells
(``judges``), the answer (``answer``) and the checkpoint tables: every number is computed, none typed in."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from toymodels.reproduce.intervals import Interval
from toymodels.reproduce.optimizer.answer import oscillation
from toymodels.reproduce.optimizer.rules import (
    MATCHED_LOSS,
    MIN_SEEDS,
    THRESHOLDS,
    Thresholds,
)
from toymodels.results.tables import mean_std


def ms(s: dict[str, float], digits: int = 3) -> str:
    """'mean ± sd' of a ``spread``."""
    return mean_std(s["mean"], s["sd"], digits)


def effect_text(d: dict[str, float]) -> str:
    """A paired change in neurons from its ``spread``: mean ± sd, the 95% t interval and the seeds' min..max."""
    if not d["n"]:
        return "-"
    if d["n"] < 2:
        return f"{d['mean']:+.1f} (1 seed)"
    return (f"{d['mean']:+.1f} ± {d['sd']:.1f} [95% CI {d['lo95']:+.1f}, {d['hi95']:+.1f}] "
            f"(seeds {d['min']:+.0f}..{d['max']:+.0f})")


def mono_text(answer: tuple[str, Interval] | None) -> str:
    """'yes: 67.7 [95% CI 51.7, 83.6]' -- does the model become monosemantic, with its mono neurons' interval."""
    if not answer:
        return "-"
    word, iv = answer
    return f"{word}: {iv.text(3, signed=False)}"


def ratio_text(iv: Interval) -> str:
    """The loss ratio with its interval, '-' when undefined."""
    return "-" if not math.isfinite(iv.estimate) else iv.text(3, signed=False)


def md_rule(N: int, thresholds: Thresholds = THRESHOLDS) -> str:
    """The cell rule of ``rules`` in one paragraph, with the thresholds in force."""
    F, tol = thresholds.mono_floor, thresholds.loss_tol
    return (f"A cell is one setting x optimizer x schedule; its effect is the change in monosemantic neurons from "
            f"the optimizer's lowest to its highest lr, paired by seed, read as a 95% t interval. Detection floor F = "
            f"{F:g} neurons ({F:g}/N = {F / N:.3g} mono/feature at N={N}). First match: *too few seeds* (fewer than "
            f"{MIN_SEEDS} seeds ran at both lrs); *diverged* (fewer than {MIN_SEEDS} finished at both); *no mono* "
            f"(at neither lr does the interval of mean mono neurons reach F: outside the regime the claim is about); "
            f"**yes** (the interval of the gain wholly at or above F and the interval of the loss ratio high / low "
            f"wholly at or below {1 + tol:g}: more monosemantic at no loss cost); *mono up, loss up* (the same gain, "
            f"the loss ratio's interval wholly above {1 + tol:g}); *mono up, loss unclear* (the gain, the loss ratio's "
            f"interval straddling {1 + tol:g}); *reversed* (the interval wholly at or below -F); *no effect* (the "
            f"interval wholly inside (-F, F)); *unclear* (the interval straddles F or -F: the runs cannot tell). The "
            "answer counts only *yes* cells and names the cells it cannot judge.")


def cell_table(peak_cells: dict, trough_cells: dict) -> pd.DataFrame:
    """The judged cells: per lr 'becomes monosemantic?' with its interval, the paired change with its interval,
    both lrs' loss, the loss ratio with its interval, the effect at the last peak and, where there is one, at the
    last trough."""
    rows = []
    for key, j in peak_cells.items():
        lv = j["level"]
        row = {"setting": key[0], "optimizer": key[1], "schedule": key[2], "lrs": f"{j['lo']:g} → {j['hi']:g}",
               "seeds": j["n"], "mono neurons low lr: mono?": mono_text(j["mono"].get("low")),
               "mono neurons high lr: mono?": mono_text(j["mono"].get("high")),
               "Δ mono neurons": effect_text(j["d_neurons"]),
               "loss low": ms(lv["low"]["loss"]) if lv else "-", "loss high": ms(lv["high"]["loss"]) if lv else "-",
               "loss ratio": ratio_text(j["ratio"]), "effect (peak)": j["effect"]}
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


def oscillation_text(pvt: dict, thresholds: Thresholds = THRESHOLDS) -> str:
    """The oscillation as a finding, in numbers: paper_cosine at the high lr, peak vs trough (paired intervals),
    against the schedules whose lr does not oscillate."""
    F = thresholds.mono_floor
    osc = oscillation(pvt, "paper_cosine", thresholds)
    if not osc["n"]:
        return ("There is no lr trough checkpoint at this scale (or fewer than 3 seeds), so the peak and trough of "
                "paper_cosine cannot be compared.")
    moved = len(osc["up"]) + len(osc["down"])
    text = ("The oscillation of paper_cosine's lr changes the model: " if moved else
            f"At this scale the oscillation does not move the mono neurons by {F:g} or more (paired 95% interval): ")
    text += (f"at the high lr, {len(osc['regime'])} of the {osc['n']} (setting, optimizer) pairs are monosemantic "
             f"(the interval of mean mono neurons at or above {F:g}) at the last peak or trough; the paired interval "
             f"of the peak's excess over the trough lies wholly at or above {F:g} in {len(osc['up'])} pairs and at or "
             f"below -{F:g} in {len(osc['down'])}; the loss (on the training batches) is higher at the peak (paired "
             f"interval above 0) in {len(osc['loss_up'])} of {osc['n']}.")
    for key, v in pvt.items():
        if key[2] == "paper_cosine" and key[3] == "high" and key[1] == "lamb":
            text += (f" At the high lr, paper_cosine LAMB ({key[0]}) has {ms(v['mono_peak'])} mono/feature at the "
                     f"last peak and {ms(v['mono_trough'])} at the last trough (paired change "
                     f"{effect_text(v['d_neurons'])} neurons); its loss is {ms(v['loss_peak'])} at the peak and "
                     f"{ms(v['loss_trough'])} at the trough.")
    for sched in ("constant", "cosine"):
        c = oscillation(pvt, sched, thresholds)
        if c["n"]:
            text += (f" With {sched} (whose lr does not oscillate; its 'trough' is just the checkpoint 512 steps "
                     f"before the end) the same change passes the floor in {len(c['up']) + len(c['down'])} of "
                     f"{c['n']} pairs.")
    return text


def matched_loss(peak: pd.DataFrame, thresholds: Thresholds = THRESHOLDS) -> tuple[pd.DataFrame, list[str]]:
    """Per setting, the (optimizer, schedule, lr) whose mean final loss is within MATCHED_LOSS of the setting's best,
    most monosemantic first, and one sentence per setting (which names a most monosemantic one only when it has
    at least the floor's mono neurons on average)."""
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
                        f"({top['mono']:.3g} mono/feature)" if top["neurons"] >= thresholds.mono_floor else
                        f"none of them has {thresholds.mono_floor:g} mono neurons on average"))
    return pd.DataFrame(rows), text


def pvt_table(pvt: dict) -> pd.DataFrame:
    """The peak and trough numbers per (setting, optimizer, schedule, lr level)."""
    return pd.DataFrame([{"setting": k[0], "optimizer": k[1], "schedule": k[2], "lr": k[3], "seeds": v["n"],
                          "mono/feature peak": ms(v["mono_peak"]), "mono/feature trough": ms(v["mono_trough"]),
                          "Δ mono neurons peak - trough": effect_text(v["d_neurons"]),
                          "loss peak": ms(v["loss_peak"]), "loss trough": ms(v["loss_trough"])}
                         for k, v in pvt.items()])


def draw_figures(docs_dir: Any, drawers: dict, notes: list[str]) -> dict[str, Any]:
    """Draw each figure; a figure that fails is noted, never loses the document."""
    figs: dict[str, Any] = {}
    for name, draw in drawers.items():
        try:
            figs[name] = draw(docs_dir / "figures" / f"{name}.png")
        except Exception as err:  # noqa: BLE001  # pragma: no cover - a figure must not lose the report
            figs[name] = None
            notes.append(f"(figure {name} failed: {type(err).__name__}: {err})")
    return figs
