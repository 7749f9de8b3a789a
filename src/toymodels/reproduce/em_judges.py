"""How each EM claim (docs/papers.md §4 rows 1-5 and 7) is judged from its sweeps' results.

Every ``judge_*`` function takes loaded ``Results`` and returns a :class:`~toymodels.reproduce.verdict.Verdict`;
the thresholds below are restated in each verdict's reason, and each function's docstring says which numbers lead to
which verdict word. Row 6 (the mechanism) is in ``em_mechanism``. Numbers are means over the seeds that did not
diverge (``toymodels.tables.seed_stats``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

import numpy as np
import pandas as pd

from ..store import Results
from ..tables import mean_std, seed_stats
from .verdict import Check, Verdict, spearman

METRICS = ["final_loss", "mono_per_feature", "mono_per_neuron", "features_covered", "mean_bias", "dead_neurons",
           "positive_bias_neurons", "false_mono"]
LR_COLUMNS = ["mono_per_feature", "final_loss", "mean_bias", "dead_neurons"]

# Thresholds of the verdicts (see each judge_* function).
MONO_FLOOR = 0.01      # below this mono/feature everywhere: nothing became monosemantic -> inconclusive
RISE_MARGIN = 0.02     # "rises": top-lr mono exceeds lowest-lr mono by at least this
LOSS_TOL = 0.05        # "no loss cost": loss within 5% of the best loss of the sweep
PAPER_LEVEL = 0.5      # mono/feature at or above this counts as reaching the paper's level (~1)

#: claim -> (title in docs/reproduction.md, what the paper says)
STATEMENTS: dict[str, tuple[str, str]] = {
    "LR1": ("1. Learning rate steers monosemanticity (LR1, Fig. 3)",
            "Higher learning rate -> more monosemantic neurons at equal or lower loss; mono/feature ≈0 at lr ≤ 0.003, "
            "≈1 (possibly > 1 mid-training) at 0.01-0.03; biases turn negative (≈ -0.3 .. -0.9) and monosemanticity "
            "appears late (after ~2^10-2^11 steps). (Abstract; jbloom's re-run; docs/papers.md §1.6, §4 row 1.)"),
    "LR2": ("2. Power-law features (LR2, Fig. 6)",
            "Same ordering as LR1 with a lower ceiling (≈0.5-0.7 mono/feature at the top lr); mean bias ≈ -1 at lr "
            "0.03. (jbloom's re-run; §4 row 2.)"),
    "LR3": ("3. Negative initial bias + bias decay engineers monosemanticity (LR3, Fig. 7)",
            "Starting biases at -1 with decay 0.03 yields highly monosemantic models (mono/feature ≈1) over a wider "
            "lr range than LR1, without a loss penalty; a few positive-bias neurons respond to all features. "
            "(Abstract; §4 row 3.)"),
    "B": ("4. Moderate negative bias is optimal across feature densities (B1-B5)",
          "Monosemanticity peaks at a moderate negative initial bias; very negative -> dead neurons; positive -> "
          "polysemantic; the optimal |bias| grows with eps (≈√eps hypothesis). (Abstract; §1.6; §4 row 4.)"),
    "K1": ("5. More neurons -> more monosemantic (K1)",
           "mono/feature increases with k and approaches ≈1 around k ≳ N; mono/neuron falls for k ≫ N; loss roughly "
           "flat for k > N. (Abstract; §4 row 5.)"),
    "MECH": ("6. Mechanism of the residual polysemantic neurons (Sec. 5)",
             "The residual polysemantic neurons have positive bias and fire for (nearly) all features, so they act "
             "as a linear, rank ≤ m block (≈ c·EᵀE + d, a low-rank approximation of the identity); the mono neurons "
             "are negative-bias thresholded units that correct each feature's output above threshold. "
             "(Paper Sec. 5 as reconstructed in §1.6; §4 row 6.)"),
    "RG1": ("7. L1 activation penalty (RG1)",
            "An L1 penalty on activations increases monosemanticity; the loss rises at large penalty. "
            "(Authors' comment; §4 row 7.)"),
}



def claim_verdict(claim: str, verdict: str, reason: str, numbers: str, table: pd.DataFrame | None = None,
                  checks: tuple[Check, ...] = (), **details: Any) -> Verdict:
    """The Verdict of EM claim ``claim``, with its title and the paper's statement from STATEMENTS."""
    title, paper = STATEMENTS[claim]
    return Verdict(claim=claim, title=title, verdict=verdict, reason=reason, numbers=numbers, paper=paper,
                   table=table, checks=checks, details=details)


def aggregate(res: Results, by: Sequence[str]) -> pd.DataFrame:
    """Per setting ``by``: mean, sample std (``<col>_std``) and count (``n``, ``instances``) of METRICS over seeds."""
    return seed_stats(res.instances, by, METRICS)


def _table(df: pd.DataFrame, key: str, cols: Sequence[str], digits: int = 3) -> pd.DataFrame:
    rows = {key: df[key].map(lambda v: f"{v:.4g}" if isinstance(v, float) else str(v))}
    for c in cols:
        rows[c] = [mean_std(m, s, digits) for m, s in zip(df[c], df[c + "_std"])]
    rows["seeds ok"] = [f"{int(n)}/{int(t)}" for n, t in zip(df["n"], df["instances"])]
    return pd.DataFrame(rows)


def _lr_direction(agg: pd.DataFrame) -> dict[str, Any]:
    """Shared numbers of an lr sweep: rise of mono with lr, the bias trend and the loss at the most-mono lr."""
    agg = agg.sort_values("lr")
    mono, loss, bias = agg["mono_per_feature"].to_numpy(), agg["final_loss"].to_numpy(), agg["mean_bias"].to_numpy()
    best = int(np.nanargmax(mono)) if np.isfinite(mono).any() else 0
    return dict(
        lrs=agg["lr"].tolist(), mono=mono, loss=loss, bias=bias, best=best, best_lr=float(agg["lr"].iloc[best]),
        rho=spearman(agg["lr"], mono), bias_rho=spearman(agg["lr"], bias),
        rise=float(mono[-1] - mono[0]), top=float(np.nanmax(mono)),
        loss_ratio=float(loss[best] / np.nanmin(loss)) if np.isfinite(loss).any() else float("nan"),
    )


def judge_lr(res: Results, claim: str = "LR1", level: float = PAPER_LEVEL, paper_level: str = "≈1") -> Verdict:
    """Row 1 (or 2): mono/feature rises with lr, biases go negative, final loss no worse at the most-mono lr.

    "Rises" (the direction): top-lr mono - lowest-lr mono >= RISE_MARGIN, the most monosemantic lr is in the upper
    half of the lrs and Spearman(lr, mono) >= 0 (a threshold-like rise, flat at 0 and then up, counts).
    agrees: the direction, the loss at the most-mono lr within LOSS_TOL of the sweep's best, and the peak level
    >= PAPER_LEVEL; partly: the direction holds but the loss or the level does not; disagrees: mono does not
    rise; inconclusive: mono < MONO_FLOOR everywhere.
    """
    agg = aggregate(res, ["lr"])
    d = _lr_direction(agg)
    per_lr = ", ".join(f"{lr:g}: {mean_std(m, s)}"
                       for lr, m, s in zip(agg["lr"], agg["mono_per_feature"], agg["mono_per_feature_std"]))
    numbers = (f"mono/feature {per_lr}; "
               f"mean bias at lr {d['lrs'][-1]:g}: {d['bias'][-1]:.2f}; loss at the most-mono lr {d['best_lr']:g}: "
               f"{d['loss'][d['best']]:.3f} vs best {np.nanmin(d['loss']):.3f}")
    if d["top"] < MONO_FLOOR:
        verdict, reason = "inconclusive", f"no setting reached {MONO_FLOOR} mono/feature, so the runs cannot tell"
    elif d["rise"] < RISE_MARGIN or d["best"] < len(d["lrs"]) // 2 or d["rho"] < 0:
        verdict = "disagrees"
        reason = (f"mono/feature does not rise with lr (Spearman {d['rho']:.2f}, top minus lowest lr "
                  f"{d['rise']:+.3f})")
    else:
        problems = []
        if d["loss_ratio"] > 1 + LOSS_TOL:
            problems.append(f"the most monosemantic lr has a {100 * (d['loss_ratio'] - 1):.0f}% higher final loss "
                            "than the best lr (the paper: no loss cost)")
        if d["top"] < level:
            problems.append(f"the level stays low: peak {d['top']:.2f} mono/feature vs {paper_level} in the paper's "
                            "re-run")
        direction = (f"mono/feature rises with lr (Spearman {d['rho']:.2f}, {d['mono'][0]:.3f} at lr "
                     f"{d['lrs'][0]:g} -> {d['mono'][-1]:.3f} at {d['lrs'][-1]:g}) and the mean bias "
                     f"{'falls' if d['bias_rho'] < 0 else 'does not fall'} with lr")
        verdict = "partly" if problems else "agrees"
        reason = direction + ("; but " + "; ".join(problems) if problems else "; no loss cost")
    return claim_verdict(claim, verdict, reason, numbers, _table(agg, "lr", LR_COLUMNS))


def judge_power_law(res: Results, lr1: Results | None = None) -> Verdict:
    """Row 2: as row 1 (level threshold 0.3 since the paper's re-run tops out at ≈0.5-0.7), with a lower ceiling
    than uniform features (compared with LR1 when given)."""
    out = judge_lr(res, "LR2", level=0.3, paper_level="≈0.5-0.7")
    if lr1 is None or out.verdict not in ("agrees", "partly"):
        return out
    top2 = aggregate(res, ["lr"])["mono_per_feature"].max()
    top1 = aggregate(lr1, ["lr"])["mono_per_feature"].max()
    reason = out.reason + (f"; ceiling {top2:.3f} vs {top1:.3f} with uniform features "
                           + ("(lower, as in the paper)" if top2 < top1
                              else "(not lower than uniform, unlike the paper)"))
    return replace(out, reason=reason, verdict="partly" if top2 >= top1 else out.verdict)


def judge_negative_bias(lr3: Results, lr1: Results | None, rescaled: Results | None = None,
                        sqrt: Results | None = None) -> Verdict:
    """Row 3: bias -1 + decay gives mono/feature >= LR1's over a wider lr range at equal or lower loss.

    Per variant: ``wins`` = lrs where LR3 mono exceeds LR1's by RISE_MARGIN; ``loss_ok`` = lrs where LR3's loss
    is within LOSS_TOL of LR1's. agrees: the better variant wins at >= half the lrs, never loses on mono by more
    than RISE_MARGIN, keeps the loss at those lrs, and reaches PAPER_LEVEL; partly: wins somewhere (or keeps
    the loss with more mono) but not all of that; disagrees: wins nowhere; inconclusive: all below MONO_FLOOR.
    """
    variants = {"per-step decay": lr3, **({"rescaled decay": rescaled} if rescaled is not None else {}),
                **({"sqrt-rescaled decay": sqrt} if sqrt is not None else {})}
    base = aggregate(lr1, ["lr"]).set_index("lr") if lr1 is not None else None
    rows, scores, texts = [], {}, []
    for label, res in variants.items():
        a = aggregate(res, ["lr"]).set_index("lr")
        decay = float(res.instances["bias_decay"].iloc[0])
        for lr, r in a.iterrows():
            row = {"variant": f"{label} ({decay:g})", "lr": f"{lr:g}",
                   "mono/feature": mean_std(r["mono_per_feature"], r["mono_per_feature_std"]),
                   "final loss": mean_std(r["final_loss"], r["final_loss_std"]),
                   "mean bias": mean_std(r["mean_bias"], r["mean_bias_std"]),
                   "dead": mean_std(r["dead_neurons"], r["dead_neurons_std"]),
                   "positive-bias neurons": mean_std(r["positive_bias_neurons"], r["positive_bias_neurons_std"])}
            if base is not None and lr in base.index:
                row["LR1 mono/feature"] = mean_std(base.loc[lr, "mono_per_feature"],
                                                   base.loc[lr, "mono_per_feature_std"])
                row["LR1 loss"] = mean_std(base.loc[lr, "final_loss"], base.loc[lr, "final_loss_std"])
            row["seeds ok"] = f"{int(r['n'])}/{int(r['instances'])}"
            rows.append(row)
        if base is None:
            scores[label] = (0, 0, float(a["mono_per_feature"].max()), False, len(a))
            continue
        common = [lr for lr in a.index if lr in base.index]
        dm = np.array([a.loc[lr, "mono_per_feature"] - base.loc[lr, "mono_per_feature"] for lr in common])
        dl = np.array([a.loc[lr, "final_loss"] / base.loc[lr, "final_loss"] for lr in common])
        wins = int((dm >= RISE_MARGIN).sum())
        losses = int((dm <= -RISE_MARGIN).sum())
        loss_ok = bool(np.all(dl[dm >= RISE_MARGIN] <= 1 + LOSS_TOL)) if wins else False
        scores[label] = (wins, losses, float(a["mono_per_feature"].max()), loss_ok, len(common))
        texts.append(f"{label}: more mono than LR1 at {wins}/{len(common)} lrs (less at {losses}), peak "
                     f"{a['mono_per_feature'].max():.3f} (LR1 {base['mono_per_feature'].max():.3f}), loss "
                     f"{'no higher' if loss_ok else 'higher'} where it wins (LR3/LR1 loss ratio "
                     f"{', '.join(f'{x:.2f}' for x in dl)})")
    best_label = max(scores, key=lambda k: (scores[k][0], scores[k][2]))
    wins, losses, top, loss_ok, n = scores[best_label]
    base_top = base["mono_per_feature"].max() if base is not None else 0.0
    if max(s[2] for s in scores.values()) < MONO_FLOOR and base_top < MONO_FLOOR:
        verdict, reason = "inconclusive", f"nothing reached {MONO_FLOOR} mono/feature in LR3 or LR1"
    elif base is None:
        verdict, reason = "inconclusive", "LR1 was not run, so there is nothing to compare with"
    elif wins == 0:
        verdict, reason = "disagrees", "negative bias + decay gives no more monosemanticity than LR1 at any lr"
    elif wins >= n / 2 and losses == 0 and loss_ok and top >= PAPER_LEVEL:
        verdict, reason = "agrees", f"{best_label} beats LR1 on mono/feature over most lrs at no loss cost"
    else:
        verdict = "partly"
        why = []
        if wins < n / 2:
            why.append("only over part of the lr range")
        if losses:
            why.append(f"with less mono than LR1 at {losses} lrs")
        if not loss_ok:
            why.append("at a higher loss")
        if top < PAPER_LEVEL:
            why.append(f"peak {top:.2f} mono/feature, below the paper's ≈1")
        reason = f"{best_label} raises monosemanticity " + ", ".join(why)
    reason += ". " + "; ".join(texts)
    return claim_verdict("LR3", verdict, reason, "; ".join(texts), pd.DataFrame(rows))


def judge_bias(results: dict[str, Results]) -> Verdict:
    """Row 4: per eps, mono/feature peaks at a moderate negative offset (-1.4 .. -0.2, with a peak of at least
    RISE_MARGIN); the most negative one has many dead neurons; the optimal |offset| grows with eps.

    agrees: interior negative peak at every eps (and dead neurons at -2 exceed those at the peak) and |optimum|
    non-decreasing in eps; partly: the peak is moderate-negative at some eps; disagrees: at none;
    inconclusive: below RISE_MARGIN everywhere (a few neurons: too few to locate an optimum).
    """
    rows, peaks = [], {}
    for label, res in results.items():
        a = aggregate(res, ["bias_offset"]).sort_values("bias_offset")
        eps = float(res.instances["eps"].iloc[0])
        best = int(np.nanargmax(a["mono_per_feature"].to_numpy()))
        peaks[eps] = (float(a["bias_offset"].iloc[best]), float(a["mono_per_feature"].iloc[best]),
                      float(a["dead_neurons"].iloc[0]), float(a["dead_neurons"].iloc[best]),
                      float(a["mono_per_feature"].iloc[-1]),
                      float(a["bias_offset"].iloc[int(np.nanargmin(a["final_loss"].to_numpy()))]))
        for _, r in a.iterrows():
            rows.append({"eps": f"1/{round(1 / eps)}", "bias offset": f"{r['bias_offset']:g}",
                         "mono/feature": mean_std(r["mono_per_feature"], r["mono_per_feature_std"]),
                         "final loss": mean_std(r["final_loss"], r["final_loss_std"]),
                         "dead": mean_std(r["dead_neurons"], r["dead_neurons_std"]),
                         "mean bias": mean_std(r["mean_bias"], r["mean_bias_std"]),
                         "seeds ok": f"{int(r['n'])}/{int(r['instances'])}"})
    eps_sorted = sorted(peaks)
    moderate = {e: (-1.4 - 1e-9 <= peaks[e][0] <= -0.2 + 1e-9) and peaks[e][1] >= RISE_MARGIN for e in eps_sorted}
    dead_more = {e: peaks[e][2] > peaks[e][3] for e in eps_sorted}
    opt = [abs(peaks[e][0]) for e in eps_sorted]
    grows = all(b >= a for a, b in zip(opt, opt[1:])) and opt[-1] > opt[0]
    numbers = "; ".join(f"eps 1/{round(1 / e)}: mono peak {peaks[e][1]:.3f} at offset {peaks[e][0]:g} "
                        f"(dead at -2: {peaks[e][2]:.0f}, at the peak: {peaks[e][3]:.0f}; "
                        f"mono at +1: {peaks[e][4]:.3f});"
                        f" lowest loss at offset {peaks[e][5]:g}"
                        for e in eps_sorted)
    loss_opt = sorted({peaks[e][5] for e in eps_sorted})
    loss_note = (f"; the final loss is lowest at offset {loss_opt[0]:g} at every eps" if len(loss_opt) == 1 else
                 f"; the final loss is lowest at offsets {', '.join(f'{peaks[e][5]:g}' for e in eps_sorted)}")
    if max(p[1] for p in peaks.values()) < RISE_MARGIN:
        verdict = "inconclusive"
        reason = (f"mono/feature stays below {RISE_MARGIN} (a few neurons) at every offset and eps, too few to locate "
                  "a monosemanticity optimum" + loss_note)
    elif all(moderate.values()) and all(dead_more.values()) and grows:
        verdict = "agrees"
        reason = "moderate negative optimum at every eps, dead neurons at -2, |optimum| grows with eps"
    elif any(moderate.values()):
        verdict = "partly"
        why = [f"moderate negative optimum at {sum(moderate.values())}/{len(moderate)} eps"]
        if not all(dead_more.values()):
            why.append("the most negative offset does not always kill more neurons")
        why.append("|optimum| grows with eps" if grows
                   else "|optimum| does not grow with eps (√eps hypothesis not seen)")
        reason = "; ".join(why)
    else:
        verdict, reason = "disagrees", "the best offset is never moderate negative"
    if verdict != "inconclusive":
        reason += loss_note
    return claim_verdict("B", verdict, reason + ". " + numbers, numbers, pd.DataFrame(rows))


def judge_neurons(res: Results) -> Verdict:
    """Row 5: mono/feature rises with k (largest k minus smallest >= RISE_MARGIN, the peak in the upper half of the
    k values, Spearman >= 0), mono/neuron falls beyond k = N, loss roughly flat (within 20%) for k > N.
    agrees: all three; partly: the rise only; disagrees: no rise;
    inconclusive: below MONO_FLOOR everywhere."""
    a = aggregate(res, ["k"]).sort_values("k")
    N = int(res.instances["N"].iloc[0])
    rho = spearman(a["k"], a["mono_per_feature"])
    mono = a["mono_per_feature"].to_numpy()
    rises = (mono[-1] - mono[0] >= RISE_MARGIN and int(np.nanargmax(mono)) >= len(mono) // 2 and rho >= 0)
    above = a[a["k"] > N]
    falls = len(above) == 0 or float(above["mono_per_neuron"].iloc[-1]) < float(a["mono_per_neuron"].max())
    flat = len(above) < 2 or float(above["final_loss"].max() / above["final_loss"].min()) <= 1.2
    numbers = "; ".join(f"k {int(r['k'])}: {mean_std(r['mono_per_feature'], r['mono_per_feature_std'])} per feature, "
                        f"loss {r['final_loss']:.3f}" for _, r in a.iterrows())
    if a["mono_per_feature"].max() < MONO_FLOOR:
        verdict, reason = "inconclusive", f"no k reached {MONO_FLOOR} mono/feature"
    elif not rises:
        verdict, reason = "disagrees", f"mono/feature does not rise with k (Spearman {rho:.2f})"
    else:
        parts = [f"mono/feature rises with k (Spearman {rho:.2f}, {a['mono_per_feature'].iloc[0]:.3f} at k="
                 f"{int(a['k'].iloc[0])} -> {a['mono_per_feature'].iloc[-1]:.3f} at k={int(a['k'].iloc[-1])}; N={N})"]
        parts.append("mono/neuron falls for k > N" if falls else "mono/neuron does not fall for k > N")
        parts.append("loss flat (within 20%) for k > N" if flat else "loss keeps changing for k > N")
        top = float(a["mono_per_feature"].max())
        if top < PAPER_LEVEL:
            parts.append(f"peak {top:.2f} mono/feature, below the paper's ≈1")
        verdict = "agrees" if (falls and flat and top >= PAPER_LEVEL) else "partly"
        reason = "; ".join(parts)
    return claim_verdict("K1", verdict, reason, numbers, _table(
        a, "k", ["mono_per_feature", "mono_per_neuron", "final_loss", "dead_neurons"]))




def judge_l1(rg1: Results, lr3: Results | None = None) -> Verdict:
    """Row 7: mono/feature rises with the L1 penalty and the loss rises at large penalty.

    The l1 = 0 reference is LR3 at the same lr (RG1's lr, 0.005) when given. agrees: Spearman(l1, mono) > 0.5
    with the largest-penalty mono above the reference by RISE_MARGIN and the loss up at the largest penalty;
    partly: one of the two; disagrees: mono does not rise; inconclusive: below MONO_FLOOR everywhere."""
    a = aggregate(rg1, ["l1"]).sort_values("l1")
    lr = float(rg1.instances["lr"].iloc[0])
    if lr3 is not None and lr3.sweep.base.optim.steps != rg1.sweep.base.optim.steps:
        lr3 = None  # the l1 = 0 reference must be trained as long
    if lr3 is not None:
        ref = aggregate(lr3, ["lr"])
        ref = ref[np.isclose(ref["lr"], lr)]
        if len(ref):
            ref = ref.drop(columns=["lr"]).assign(l1=0.0)
            a = pd.concat([ref, a], ignore_index=True).sort_values("l1").reset_index(drop=True)
    rho = spearman(a["l1"], a["mono_per_feature"])
    mono, loss = a["mono_per_feature"].to_numpy(), a["final_loss"].to_numpy()
    rise = float(mono[-1] - mono[0])
    loss_up = bool(loss[-1] > loss[0] * (1 + LOSS_TOL))
    numbers = "; ".join(f"l1 {r['l1']:g}: mono {mean_std(r['mono_per_feature'], r['mono_per_feature_std'])}, loss "
                        f"{mean_std(r['final_loss'], r['final_loss_std'])}" for _, r in a.iterrows())
    if np.nanmax(mono) < MONO_FLOOR:
        verdict, reason = "inconclusive", f"no setting reached {MONO_FLOOR} mono/feature"
    elif rho > 0.5 and rise >= RISE_MARGIN:
        verdict = "agrees" if loss_up else "partly"
        reason = (f"mono/feature rises with the penalty (Spearman {rho:.2f}, {mono[0]:.3f} -> {mono[-1]:.3f}); "
                  f"loss at the largest penalty {'rises' if loss_up else 'does not rise'} ({loss[0]:.3f} -> "
                  f"{loss[-1]:.3f})")
    else:
        verdict = "partly" if loss_up and rho > 0 else "disagrees"
        reason = (f"mono/feature does not rise clearly with the penalty (Spearman {rho:.2f}, {mono[0]:.3f} -> "
                  f"{mono[-1]:.3f}); loss {loss[0]:.3f} -> {loss[-1]:.3f}")
    return claim_verdict("RG1", verdict, reason, numbers, _table(a, "l1", LR_COLUMNS))
