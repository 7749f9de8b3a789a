"""How the superposition claims judged on the lowest-loss restart (the papers' recipe) are judged: TMS-intro (row 8),
TMS-phase (row 11) and PC-kurtosis (row 12); the claims judged across seeds with intervals (TMS-basic, TMS-dim) are
in ``seed_checks``. Every threshold, kind of criterion and the verdict rule are in ``rules``; each ``check_*`` takes
the table of trained instances with their final weights (``data``) and returns a
:class:`~toymodels.reproduce.verdict.Verdict` (``criteria.claim_verdict``).

Criteria (docs/papers.md §4; kind in brackets; marks from ``rules.Thresholds``):

* row 8, TMS-intro (lowest-loss restart per density): dense (1-S = 1): exactly features 0 and 1 have ||W_i|| > 0.5
  [paper], at 90 +- 6 degrees [paper], the others' norms < 0.25 [paper]; sparsest: all 5 represented [central], the
  angular gaps between neighbouring arrows within 45-100 degrees (pentagon-like) [paper], every represented
  feature's bias negative [paper]. How many restarts show the dense pair and the sparse pentagon is reported.
* row 11, TMS-phase (lowest-loss restart per cell): no antipodal solution at the densest row [paper]; antipodal at
  the sparsest row for r = 1 [central]; the antipodal region does not shrink as density falls (at most one row
  breaks the order) [paper]; >= 80% of cells agree with the analytic prediction of docs/papers.md §2.3 [derived: a
  qualitative approximation]; clean solutions (<= 10% of cells 'other' or with min/max |w| in (0.2, 0.8)): an
  abrupt switch [paper].
* row 12, PC-kurtosis (lowest-loss restart per K; restarts from ``study.CLAIMS``), judged per K: K < 3: every C_i
  within 0.05 of 0 or 1 on every restart [central], the D most important features at C = 1 [paper] -- which
  *cannot tell* when the lowest-loss restart misses it with a loss more than 1% above the closed-form loss of that
  allocation (training has not found the optimum it is judged on); K > 3: a fractional C_i [central], every C_i
  within 0.1 of our KKT allocation [derived]; sum_i C_i within 0.1 of D [derived]; every model's closed-form
  expected loss within 4 standard errors of its loss on 2^17 fresh samples [derived]. How many restarts reach the
  optimal loss is reported.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import torch

from toymodels import metrics
from toymodels.families.quadratic import (
    quadratic_capacity_theory,
    quadratic_expected_loss,
)
from toymodels.families.tms import represented
from toymodels.reproduce.superposition.criteria import (
    Criterion,
    claim_verdict,
    criterion,
)
from toymodels.reproduce.superposition.data import (
    lowest_loss,
    measured_quadratic_loss,
    phase_table,
    stacked,
)
from toymodels.reproduce.superposition.rules import (
    CENTRAL,
    DERIVED,
    FAILS,
    HOLDS,
    PAPER,
    PC_LOSS_SAMPLES,
    PC_LOSS_SEED_OFFSET,
    PC_REACHED,
    PHASE_MIXED_RATIO,
    THRESHOLDS,
    UNCLEAR,
    Thresholds,
    combine,
)
from toymodels.reproduce.superposition.statements import STATEMENTS, spread_text
from toymodels.reproduce.verdict import Verdict


def _angle_gaps(W: np.ndarray) -> np.ndarray:
    """Angular gaps in degrees between neighbouring columns of a (2, n) W around the circle."""
    ang = np.sort(np.degrees(np.arctan2(W[1], W[0])) % 360)
    return np.diff(np.concatenate([ang, [ang[0] + 360]]))


def check_intro(df: pd.DataFrame, thresholds: Thresholds = THRESHOLDS) -> Verdict:
    """Row 8, TMS-intro, on the lowest-loss restart per density (criteria in the module docstring)."""
    best = lowest_loss(df, ["eps"])
    dense, sparse = best.loc[best["eps"].idxmax()], best.loc[best["eps"].idxmin()]
    Wd, Ws = np.asarray(dense["W"]), np.asarray(sparse["W"])
    nd = np.linalg.norm(Wd, axis=0)
    rep_d = [int(i) for i in np.flatnonzero(represented(stacked([Wd]))[0].numpy())]
    cos01 = float(Wd[:, 0] @ Wd[:, 1] / max(1e-12, nd[0] * nd[1]))
    angle = math.degrees(math.acos(max(-1.0, min(1.0, cos01))))
    others = float(nd[2:].max()) if nd.size > 2 else 0.0
    rep = represented(stacked([Ws]))[0].numpy()
    rep_s = int(rep.sum())
    gaps = _angle_gaps(Ws[:, rep]) if rep_s >= 2 else np.array([360.0])
    b_rep = np.asarray(sparse["b"])[rep]
    ideal = 360.0 / Ws.shape[1]
    ok = df[df["status"] == "ok"] if "status" in df else df
    sparse_rows, dense_rows = ok[ok["eps"] == ok["eps"].min()], ok[ok["eps"] == ok["eps"].max()]
    pent = int((represented(stacked(sparse_rows["W"])).sum(-1) == Ws.shape[1]).sum())
    pair = int(sum(np.flatnonzero(r).tolist() == [0, 1] for r in represented(stacked(dense_rows["W"])).numpy()))

    def judge(th: Thresholds) -> list[Criterion]:
        low, high = ideal - th.intro_gap_below, ideal + th.intro_gap_above
        return [
            criterion("dense: exactly features 0 and 1 represented", PAPER, rep_d == [0, 1], f"represented {rep_d}"),
            criterion(f"dense: the two are orthogonal (90 ± {th.intro_angle_tol:g}°)", PAPER,
                      abs(angle - 90) <= th.intro_angle_tol, f"angle {angle:.1f}°"),
            criterion(f"dense: other norms < {th.intro_other_norm:g}", PAPER, others < th.intro_other_norm,
                      f"max other ||W_i|| = {others:.3f}"),
            criterion("sparsest: all 5 represented", CENTRAL, rep_s == Ws.shape[1], f"{rep_s} of {Ws.shape[1]}"),
            criterion(f"sparsest: pentagon-like gaps ({low:g}-{high:g}°)", PAPER,
                      rep_s == Ws.shape[1] and gaps.min() >= low and gaps.max() <= high,
                      f"gaps {', '.join(f'{g:.0f}' for g in np.sort(gaps))}°"),
            criterion("sparsest: negative biases", PAPER, b_rep.size > 0 and bool((b_rep < 0).all()),
                      f"biases of represented features {b_rep.min():.3f} to {b_rep.max():.3f}" if b_rep.size
                      else "none"),
        ]

    counts = represented(stacked(best.sort_values("eps", ascending=False)["W"])).sum(-1).tolist()
    n_seeds = df["seed"].nunique()
    ours = (f"Lowest-loss of {n_seeds} restarts (the paper's recipe: no interval over seeds). Dense (1-S=1): "
            f"represented {rep_d}, angle {angle:.1f}°, max other norm {others:.3f}; {pair} of {len(dense_rows)} "
            f"restarts keep exactly features 0 and 1 there. Sparsest (1-S={sparse['eps']:.3g}): {rep_s}/5 "
            f"represented, neighbour gaps {np.sort(gaps).round(0).tolist()}°, biases "
            + (f"{b_rep.min():.3f}…{b_rep.max():.3f}" if b_rep.size else "none")
            + f"; {pent} of {len(sparse_rows)} restarts represent all 5 there. Represented count per density "
            "(densest→sparsest): " + ", ".join(map(str, counts)) + ".")
    return claim_verdict("TMS-intro", STATEMENTS["TMS-intro"], judge, thresholds, ours)


def check_phase(df: pd.DataFrame, thresholds: Thresholds = THRESHOLDS) -> Verdict:
    """Row 11, TMS-phase, on the lowest-loss restart per (r, density) cell (module docstring)."""
    tab = phase_table(df)
    es = np.sort(tab["eps"].unique())
    rs = np.sort(tab["importance_ratio"].unique())
    anti = tab["phase"] == "antipodal"
    width = [int((anti & (tab["eps"] == e)).sum()) for e in es]  # sparse → dense
    r1 = rs[np.argmin(np.abs(np.log(rs)))]
    sparse_r1 = tab[(tab["eps"] == es[0]) & (tab["importance_ratio"] == r1)]["phase"].iloc[0]
    breaks = sum(1 for a, b in itertools.pairwise(width) if b > a)
    agree = float((tab["phase"] == tab["analytic"]).mean())
    wmax = np.maximum(tab["w1"].abs(), tab["w2"].abs())
    ratio = np.minimum(tab["w1"].abs(), tab["w2"].abs()) / wmax.clip(lower=1e-12)
    lo, hi = PHASE_MIXED_RATIO
    unclean = float(((tab["phase"] == "other") | ((ratio > lo) & (ratio < hi))).mean())

    def judge(th: Thresholds) -> list[Criterion]:
        return [
            criterion("no antipodal solution at the densest row", PAPER, width[-1] == 0,
                      f"{width[-1]} antipodal cells at 1-S={es[-1]:g}"),
            criterion("antipodal at the sparsest row for r = 1", CENTRAL, sparse_r1 == "antipodal",
                      f"cell (r={r1:g}, 1-S={es[0]:g}): {sparse_r1}"),
            criterion(f"antipodal region widens as density falls (<= {th.phase_max_breaks:g} break)", PAPER,
                      breaks <= th.phase_max_breaks and width[0] >= max(width),
                      f"antipodal cells per row, sparse→dense: {width}"),
            criterion(f">= {100 * th.phase_analytic_agree:.0f}% of cells agree with the analytic prediction",
                      DERIVED, agree >= th.phase_analytic_agree, f"{100 * agree:.0f}% agree"),
            criterion(f"abrupt: <= {100 * th.phase_unclean_max:.0f}% of cells unclean (other, or {lo:g} < "
                      f"min|w|/max|w| < {hi:g})", PAPER, unclean <= th.phase_unclean_max,
                      f"{100 * unclean:.0f}% unclean"),
        ]

    counts = tab["phase"].value_counts().to_dict()
    ours = (f"{len(tab)} cells ({len(rs)} r × {len(es)} densities), lowest loss of {int(tab['restarts'].min())} "
            f"restarts each. Winners: {counts}. Antipodal cells per row (sparse→dense): {width}. "
            f"{100 * agree:.0f}% of cells match the analytic map; {100 * unclean:.0f}% unclean; restarts finding "
            f"the winning solution: {100 * tab['found_by'].mean():.0f}% on average "
            f"(min {100 * tab['found_by'].min():.0f}%).")
    return claim_verdict("TMS-phase", STATEMENTS["TMS-phase"], judge, thresholds, ours, tab)


def capacity_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per trained quadratic model: K, seed, its capacities C and the optimal allocation C_opt, the closed-form
    loss L_cf, the optimal loss L_opt, the loss measured on fresh samples with its standard error and z, and
    whether it reached the optimal loss (within PC_REACHED)."""
    d = df[df["status"] == "ok"].sort_values(["kurtosis", "seed"])
    D = np.asarray(d["W"].iloc[0]).shape[0]
    caps = metrics.capacity(stacked(d["W"])).numpy()
    rows = []
    for C, (_, r) in zip(caps, d.iterrows()):
        W, v, K = np.asarray(r["W"]), np.asarray(r["importance"]), float(r["kurtosis"])
        C_opt, L_opt = quadratic_capacity_theory(torch.as_tensor(v), D, K)
        b = float(np.asarray(r["b"]))
        L_cf = float(quadratic_expected_loss(torch.as_tensor(W), torch.as_tensor(b), torch.as_tensor(v), K))
        L_meas, se = measured_quadratic_loss(W, b, v, K, r.get("input_kind", "auto"), samples=PC_LOSS_SAMPLES,
                                             seed=int(r["seed"]) + PC_LOSS_SEED_OFFSET)
        rows.append({"K": K, "seed": r["seed"], "D": D, "C": C, "C_opt": C_opt.numpy(), "top": np.argsort(-v)[:D],
                     "sumC": float(C.sum()), "dev": float(np.abs(C - C_opt.numpy()).max()), "L_cf": L_cf,
                     "L_meas": L_meas, "se": se, "z": (L_meas - L_cf) / se if se > 0 else 0.0, "L_opt": L_opt,
                     "final_loss": r["final_loss"]})
    t = pd.DataFrame(rows)
    t["reached"] = t["L_cf"] <= (1 + PC_REACHED) * t["L_opt"]
    return t


def _per_k(best: pd.DataFrame, state) -> tuple[str, str, str]:
    """(combined state, detail, why) of a criterion judged per K on the rows of ``best``: ``state(row)`` -> (state,
    text); ``why`` joins the texts of the points that cannot tell."""
    out = [(float(r["K"]),) + state(r) for _, r in best.iterrows()]
    why = "; ".join(f"K={k:g}: {text}" for k, s, text in out if s == UNCLEAR)
    return combine([s for _, s, _ in out]), ", ".join(f"K={k:g}: {text}" for k, _, text in out) or "no K", why


def check_capacity(df: pd.DataFrame, thresholds: Thresholds = THRESHOLDS) -> Verdict:
    """Row 12, PC-kurtosis, per K on the lowest-loss restart (and on every restart where it says so)."""
    t = capacity_table(df)
    D = int(t["D"].iloc[0])
    # capacity claims are about the optimum: judge the lowest-loss restart per K (its closed-form loss ranks the
    # restarts without sampling noise); every restart is reported
    best = t.loc[t.groupby("K")["L_cf"].idxmin()]
    lo, hi = best[best["K"] < 3], best[best["K"] > 3]

    def judge(th: Thresholds) -> list[Criterion]:
        tol = th.pc_binary_tol

        def binary(C: np.ndarray) -> bool:
            return bool((np.minimum(C, 1 - C) <= tol).all())

        def every_restart_binary(r: pd.Series) -> tuple[str, str]:
            g = t[t["K"] == r["K"]]
            n = sum(binary(C) for C in g["C"])
            return (HOLDS if n == len(g) else FAILS), f"{n}/{len(g)} restarts"

        def top_at_one(r: pd.Series) -> tuple[str, str]:
            if bool((r["C"][r["top"]] >= 1 - tol).all()):
                return HOLDS, "yes"
            if r["L_cf"] > (1 + PC_REACHED) * r["L_opt"]:  # training never found the optimum judged here
                g = t[t["K"] == r["K"]]
                return UNCLEAR, (f"no restart left the local minimum at K={r['K']:g} (best loss {r['L_cf']:.3f} "
                                 f"vs {r['L_opt']:.3f} for the all-or-nothing allocation; "
                                 f"{int(g['reached'].sum())}/{len(g)} restarts reach it)")
            return FAILS, "no"

        def fractional(r: pd.Series) -> tuple[str, str]:
            n = int(((r["C"] > tol) & (r["C"] < 1 - tol)).sum())
            return (HOLDS if n >= 1 else FAILS), f"{n} fractional"

        rows = [
            (f"K < 3: capacities all-or-nothing (±{tol:g}, every restart)", CENTRAL, _per_k(lo, every_restart_binary)),
            (f"K < 3: the {D} most important features at C = 1 (lowest-loss restart)", PAPER, _per_k(lo, top_at_one)),
            ("K > 3: fractional capacities present (lowest-loss restart)", CENTRAL, _per_k(hi, fractional)),
            (f"K > 3: every C_i within {th.pc_allocation_tol:g} of the optimal allocation (lowest-loss restart)",
             DERIVED, _per_k(hi, lambda r: ((HOLDS if r["dev"] <= th.pc_allocation_tol else FAILS),
                                            f"max |C - C_opt| {r['dev']:.3f}"))),
            (f"sum C ≈ D = {D} (±{th.pc_sum_tol:g}, lowest-loss restart)", DERIVED,
             _per_k(best, lambda r: ((HOLDS if abs(r["sumC"] - D) <= th.pc_sum_tol else FAILS), f"{r['sumC']:.3f}"))),
        ]
        out = [Criterion(name, kind, state, detail, why) for name, kind, (state, detail, why) in rows]
        zmax = float(t["z"].abs().max())
        out.append(criterion(f"closed-form loss = measured loss (|z| <= {th.pc_loss_z:g}, every model)", DERIVED,
                             zmax <= th.pc_loss_z, f"|z| max {zmax:.2f} over {len(t)} models"))
        return out

    parts = []
    for K, g in t.groupby("K"):
        b = best[best["K"] == K].iloc[0]
        parts.append(f"K={K:g}: C = [{', '.join(f'{c:.2f}' for c in b['C'])}] (optimum "
                     f"[{', '.join(f'{c:.2f}' for c in b['C_opt'])}]), loss {b['L_cf']:.3f} vs optimum "
                     f"{b['L_opt']:.3f}; {int(g['reached'].sum())}/{len(g)} restarts reach the optimum "
                     f"(losses {spread_text(g['L_cf'], '.3f')})")
    ours = (f"Lowest-loss of {t['seed'].nunique()} restarts per K (the paper's recipe: no interval over seeds), "
            "capacities of features by decreasing importance. " + "; ".join(parts)
            + f". Closed-form vs measured loss ({PC_LOSS_SAMPLES} fresh samples per model): "
            f"|z| ≤ {t['z'].abs().max():.2f}.")
    return claim_verdict("PC-kurtosis", STATEMENTS["PC-kurtosis"], judge, thresholds, ours, t)
