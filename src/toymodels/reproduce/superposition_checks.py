"""How each superposition claim (docs/papers.md §4 rows 8-12) is judged: one ``check_*`` per claim, criterion by
criterion, each taking the table of trained instances with their final weights (``superposition_data``) and
returning a :class:`~toymodels.reproduce.verdict.Verdict` whose ``checks`` are the criteria below. The verdict is
``agrees`` (every criterion holds), ``partly`` (some hold), ``disagrees`` (every central criterion, the core of the
claim, fails) or ``inconclusive`` (no criteria could be evaluated).

Criteria (docs/papers.md §4; thresholds chosen before looking at our runs and written down here):

* row 8, TMS-intro (lowest-loss restart per density): dense (1-S = 1): exactly features 0 and 1 have
  ||W_i|| > 0.5, at 90 +- 6 degrees, the others' norms < 0.25; sparsest (1-S = 0.05): all 5 represented, the
  angular gaps between neighbouring arrows within 45-100 degrees (pentagon-like), every represented feature's bias
  negative.
* row 9, TMS-basic (mean over seeds): ReLU model: 4-6 features represented at 1-S = 1, >= 16 of 20 at
  1-S <= 0.003, represented count and superposition rise with sparsity (Spearman >= 0.8), superposition < 0.1
  when dense; the linear model represents 5 (4.5-5.5) at every density.
* row 10, TMS-dim (each seed): D* within 0.1 of 1 at 1-S = 1; >= 3 of the 20 levels with D* within 0.03 of 1/2;
  "lines" (check.py's rule: >= 10 features within 0.005 of the fraction and at least twice as many as in the band
  0.005-0.0125 away) at 1/2 and at one or more of 3/4, 2/3, 2/5, 3/8. The share of features within 0.02 of the six
  named fractions is reported but NOT required to be high: the authors' own run has only 26% there.
* row 11, TMS-phase (lowest-loss restart per cell): no antipodal solution at the densest row; antipodal at the
  sparsest row for r = 1; the antipodal region does not shrink as density falls (at most one row breaks the
  order); >= 80% of cells agree with the analytic prediction of docs/papers.md §2.3; clean solutions (<= 10% of cells
  'other' or with an intermediate weight ratio min/max |w| in (0.2, 0.8): an abrupt switch, not a gradual one).
* row 12, PC-kurtosis (lowest-loss restart per K, as the claims are about the optimal allocation; >= 4
  restarts): K < 3: every C_i within 0.05 of 0 or 1 (checked on every restart) and the 4 most important features
  at 1; K > 3: at least one
  fractional C_i and every C_i within 0.1 of the optimal allocation; sum_i C_i within 0.1 of D; and for every
  trained model, the closed-form expected loss within 4 standard errors of its loss measured on 2^17 fresh
  samples. How many restarts reach the optimal loss is reported. (Judging the lowest-loss restart here was
  decided after a calibration run showed most restarts stuck in local minima at K < 3; thresholds unchanged.)
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from .. import metrics
from ..families.quadratic import quadratic_capacity_theory, quadratic_expected_loss
from ..families.tms import represented
from .superposition_data import (
    FRACTIONS,
    fraction_lines,
    lowest_loss,
    measured_quadratic_loss,
    phase_table,
    stacked,
)
from .verdict import Check, Verdict, spearman, verdict_from_checks

#: preset -> (the claim in one line, what the paper says)
STATEMENTS: dict[str, tuple[str, str]] = {
    "TMS-intro": ("Superposition appears with sparsity (n=5, m=2)",
                  "Dense features: the model keeps the 2 most important features in orthogonal directions and "
                  "drops the rest (||W_i|| ~ 0). Sparsest: all 5 features are represented as a pentagon-like "
                  "arrangement, with negative biases (TMS intro figure)."),
    "TMS-basic": ("Only the nonlinear model uses superposition (n=20, m=5)",
                  "The number of features with ||W_i|| > 0.5 is ~5 at density 1 and rises to ~all 20 at "
                  "density <= 0.003; the superposition measure rises with sparsity; the linear model keeps the "
                  "top 5 features at every sparsity (TMS 'Basic Results')."),
    "TMS-dim": ("D* sticks at 1/2 and D_i sits on polytope fractions (n=200, m=20)",
                "D* = m/||W||_F^2 is ~1 dense and 'sticky' at 1/2 (antipodal pairs) over a range of "
                "sparsities; per-feature D_i cluster on 1/2, 3/4, 2/3, 2/5, 3/8 (only ~26% of features lie "
                "within 0.02 of the fractions in the authors' own run) (TMS 'Feature Dimensionality')."),
    "TMS-phase": ("First-order phase change between dropping a feature and an antipodal pair (n=2, m=1)",
                  "The antipodal solution W=[w,-w] wins only for sparse features of comparable importance, its "
                  "region widening as density falls; the switch of the best solution is abrupt (TMS 'Phase "
                  "Change'; blurry near the triple point per McGrath)."),
    "PC-kurtosis": ("Input kurtosis decides mono- vs polysemantic capacity (quadratic model, n=8, D=4)",
                    "K < 3: capacities are all-or-nothing (the D most important features get C=1); K > 3: "
                    "less important features get fractional capacity; sum_i C_i = D; the expected loss is "
                    "L = (K-1) sum_i (v_i - M_ii)^2 + 2 sum_{i!=j} M_ij^2 (+ a bias term) (P&C Sec. 3)."),
}


def _claim(name: str, checks: list[Check], central: Sequence[str], ours: str, table: pd.DataFrame | None = None,
           **details: Any) -> Verdict:
    """The Verdict of claim ``name`` from its criteria (``central``: the core ones, see verdict_from_checks)."""
    verdict, reason = verdict_from_checks(checks, central)
    title, paper = STATEMENTS[name]
    return Verdict(claim=name, title=title, verdict=verdict, reason=reason, numbers=ours, paper=paper, table=table,
                   checks=tuple(checks), details=details)


def _check(criterion: str, passed: Any, detail: str) -> Check:
    return Check(criterion, bool(passed), detail)


def _pm(values: Sequence[float], fmt: str = ".2f") -> str:
    """'mean ± sd (min–max)' over seeds, or the single value."""
    a = np.asarray(list(values), dtype=float)
    if a.size == 1:
        return format(a[0], fmt)
    return f"{format(a.mean(), fmt)} ± {format(a.std(ddof=1), fmt)} ({format(a.min(), fmt)}–{format(a.max(), fmt)})"


def _angle_gaps(W: np.ndarray) -> np.ndarray:
    """Angular gaps in degrees between neighbouring columns of a (2, n) W around the circle."""
    ang = np.sort(np.degrees(np.arctan2(W[1], W[0])) % 360)
    return np.diff(np.concatenate([ang, [ang[0] + 360]]))


def check_intro(df: pd.DataFrame) -> Verdict:
    """Row 8, TMS-intro, on the lowest-loss restart per density (criteria in the module docstring)."""
    best = lowest_loss(df, ["eps"])
    dense = best.loc[best["eps"].idxmax()]
    sparse = best.loc[best["eps"].idxmin()]
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
    sparse_rows = df[df["eps"] == df["eps"].min()]
    pent = int((represented(stacked(sparse_rows["W"])).sum(-1) == Ws.shape[1]).sum())
    checks = [
        _check("dense: exactly features 0 and 1 represented", rep_d == [0, 1], f"represented {rep_d}"),
        _check("dense: the two are orthogonal (90 ± 6°)", abs(angle - 90) <= 6, f"angle {angle:.1f}°"),
        _check("dense: other norms < 0.25", others < 0.25, f"max other ||W_i|| = {others:.3f}"),
        _check("sparsest: all 5 represented", rep_s == Ws.shape[1], f"{rep_s} of {Ws.shape[1]}"),
        _check("sparsest: pentagon-like gaps (45-100°)", rep_s == Ws.shape[1] and gaps.min() >= 45
               and gaps.max() <= 100, f"gaps {', '.join(f'{g:.0f}' for g in np.sort(gaps))}°"),
        _check("sparsest: negative biases", b_rep.size > 0 and bool((b_rep < 0).all()),
               f"biases of represented features {b_rep.min():.3f} to {b_rep.max():.3f}" if b_rep.size else "none"),
    ]
    counts = represented(stacked(best.sort_values("eps", ascending=False)["W"])).sum(-1).tolist()
    n_seeds = df["seed"].nunique()
    ours = (f"Lowest-loss of {n_seeds} restarts. Dense (1-S=1): represented {rep_d}, angle {angle:.1f}°, max other "
            f"norm {others:.3f}. Sparsest (1-S={sparse['eps']:.3g}): {rep_s}/5 represented, neighbour gaps "
            f"{np.sort(gaps).round(0).tolist()}°, biases {b_rep.min():.3f}…{b_rep.max():.3f}; "
            f"{pent} of {len(sparse_rows)} restarts represent all 5 there. Represented count per density "
            f"(densest→sparsest): "
            + ", ".join(map(str, counts)) + ".")
    return _claim("TMS-intro", checks, ["sparsest: all 5 represented"], ours)


def check_basic(df: pd.DataFrame) -> Verdict:
    """Row 9, TMS-basic, on the means over seeds of the ReLU and linear models (module docstring)."""
    d = df[df["status"] == "ok"]
    n = np.asarray(d["W"].iloc[0]).shape[1]
    m = np.asarray(d["W"].iloc[0]).shape[0]
    relu = d[d["tms_variant"] == "relu"]
    lin = d[d["tms_variant"] == "linear"]
    rep = relu.groupby("eps")["represented_features"]
    sup = relu.groupby("eps")["superposition"].mean()
    eps_levels = sorted(relu["eps"].unique(), reverse=True)
    mean_rep = rep.mean()
    dense_eps, sparse_eps = max(eps_levels), [e for e in eps_levels if e <= 0.003]
    checks = [
        _check(f"ReLU dense: ~{m} represented (±1)", abs(mean_rep[dense_eps] - m) <= 1,
               f"{_pm(relu[relu['eps'] == dense_eps]['represented_features'], '.1f')} at 1-S={dense_eps:g}"),
        _check(f"ReLU 1-S <= 0.003: >= {int(0.8 * n)} of {n} represented",
               bool(sparse_eps) and all(mean_rep[e] >= 0.8 * n for e in sparse_eps),
               "; ".join(f"{_pm(relu[relu['eps'] == e]['represented_features'], '.1f')} at 1-S={e:g}"
                         for e in sparse_eps) or "no such level"),
        _check("ReLU: represented count rises with sparsity (Spearman >= 0.8)",
               spearman([1 / e for e in eps_levels], [mean_rep[e] for e in eps_levels]) >= 0.8,
               f"Spearman {spearman([1 / e for e in eps_levels], [mean_rep[e] for e in eps_levels]):.2f}"),
        _check("ReLU: superposition rises with sparsity (Spearman >= 0.8) from < 0.1 dense",
               spearman([1 / e for e in eps_levels], [sup[e] for e in eps_levels]) >= 0.8 and sup[dense_eps] < 0.1,
               f"Spearman {spearman([1 / e for e in eps_levels], [sup[e] for e in eps_levels]):.2f}, "
               f"{sup[dense_eps]:.3f} dense → {sup[min(eps_levels)]:.3f} sparsest"),
    ]
    if len(lin):
        lin_rep = lin.groupby("eps")["represented_features"].mean()
        checks.append(_check(f"linear: {m} represented at every density", bool((abs(lin_rep - m) <= 0.5).all()),
                             f"mean per density {lin_rep.sort_index(ascending=False).round(2).tolist()}"))

    ours = ("ReLU model, represented features per density (1-S high→low), mean ± sd over "
            f"{relu['seed'].nunique()} seeds: "
            + "; ".join(f"{e:g}: {_pm(relu[relu['eps'] == e]['represented_features'], '.1f')}" for e in eps_levels)
            + ". Mean superposition of represented features: "
            + ", ".join(f"{sup[e]:.2f}" for e in eps_levels) + "."
            + (" Linear model: " + ", ".join(f"{v:.1f}" for v in
                                             lin.groupby('eps')['represented_features'].mean()
                                             .sort_index(ascending=False)) + " represented." if len(lin) else ""))
    return _claim("TMS-basic", checks, [c.criterion for c in checks[1:3]], ours)


def check_dims(df: pd.DataFrame) -> Verdict:
    """Row 10, TMS-dim, on each seed: D* and the lines of the per-feature dimensionalities (module docstring)."""
    d = df[df["status"] == "ok"]
    per_seed = []
    for seed, g in d.groupby("seed"):
        g = g.sort_values("eps", ascending=False)
        W = stacked(g["W"])  # (levels, m, n), densest first
        dstar = metrics.dims_per_feature(W).numpy()
        D_all = metrics.capacity(W).numpy().reshape(-1)
        rep = represented(W).numpy().reshape(-1)
        lines = fraction_lines(D_all)
        fr = np.array(list(FRACTIONS.values()))
        near2 = np.abs(D_all[:, None] - fr[None]).min(1) <= 0.02
        per_seed.append({
            "seed": seed, "dstar_dense": float(dstar[0]),
            "levels_half": int((np.abs(dstar - 0.5) <= 0.03).sum()),
            "lines": [k for k, v in lines.items() if v["line"]], "line_counts": lines,
            "share_near": float(near2.mean()), "share_near_rep": float(near2[rep].mean()) if rep.any() else 0.0,
            "dstar": dstar.round(3).tolist(),
        })
    others = {"3/4", "2/3", "2/5", "3/8"}
    checks = [
        _check("D* ≈ 1 dense (±0.1), every seed", all(abs(s["dstar_dense"] - 1) <= 0.1 for s in per_seed),
               "D* at 1-S=1: " + _pm([s["dstar_dense"] for s in per_seed], ".3f")),
        _check(">= 3 levels with D* within 0.03 of 1/2, every seed", all(s["levels_half"] >= 3 for s in per_seed),
               "levels: " + ", ".join(str(s["levels_half"]) for s in per_seed)),
        _check("line at 1/2, every seed", all("1/2" in s["lines"] for s in per_seed),
               "features within 0.005 of 1/2: " + ", ".join(str(s["line_counts"]["1/2"]["near"]) for s in per_seed)),
        _check("line at >= 1 of 3/4, 2/3, 2/5, 3/8, every seed", all(others & set(s["lines"]) for s in per_seed),
               "lines found: " + "; ".join(",".join(s["lines"]) or "none" for s in per_seed)),
    ]
    ours = (f"{len(per_seed)} seeds. D* dense {_pm([s['dstar_dense'] for s in per_seed], '.3f')}; levels with "
            f"|D*−1/2| ≤ 0.03: {', '.join(str(s['levels_half']) for s in per_seed)} (per seed); lines (check.py "
            f"rule) per seed: {'; '.join(','.join(s['lines']) or 'none' for s in per_seed)}; share of features "
            f"within 0.02 of the six fractions: {_pm([100 * s['share_near'] for s in per_seed], '.0f')}% (all), "
            f"{_pm([100 * s['share_near_rep'] for s in per_seed], '.0f')}% (represented) — authors' run: 26%. "
            f"D* per level (seed {per_seed[0]['seed']}, dense→sparse): {per_seed[0]['dstar']}.")
    return _claim("TMS-dim", checks, [checks[1].criterion, checks[2].criterion], ours, per_seed=per_seed)


def check_phase(df: pd.DataFrame) -> Verdict:
    """Row 11, TMS-phase, on the lowest-loss restart per (r, density) cell (module docstring)."""
    tab = phase_table(df)
    es = np.sort(tab["eps"].unique())
    rs = np.sort(tab["importance_ratio"].unique())
    anti = tab["phase"] == "antipodal"
    width = [int((anti & (tab["eps"] == e)).sum()) for e in es]  # sparse → dense
    r1 = rs[np.argmin(np.abs(np.log(rs)))]
    sparse_r1 = tab[(tab["eps"] == es[0]) & (tab["importance_ratio"] == r1)]["phase"].iloc[0]
    breaks = sum(1 for a, b in zip(width, width[1:]) if b > a)
    agree = float((tab["phase"] == tab["analytic"]).mean())
    wmax = np.maximum(tab["w1"].abs(), tab["w2"].abs())
    ratio = np.minimum(tab["w1"].abs(), tab["w2"].abs()) / wmax.clip(lower=1e-12)
    unclean = float(((tab["phase"] == "other") | ((ratio > 0.2) & (ratio < 0.8))).mean())
    checks = [
        _check("no antipodal solution at the densest row", width[-1] == 0,
               f"{width[-1]} antipodal cells at 1-S={es[-1]:g}"),
        _check("antipodal at the sparsest row for r = 1", sparse_r1 == "antipodal",
               f"cell (r={r1:g}, 1-S={es[0]:g}): {sparse_r1}"),
        _check("antipodal region widens as density falls (<= 1 break)", breaks <= 1 and width[0] >= max(width),
               f"antipodal cells per row, sparse→dense: {width}"),
        _check(">= 80% of cells agree with the analytic prediction", agree >= 0.8, f"{100 * agree:.0f}% agree"),
        _check("abrupt: <= 10% of cells unclean (other, or 0.2 < min|w|/max|w| < 0.8)", unclean <= 0.1,
               f"{100 * unclean:.0f}% unclean"),
    ]
    counts = tab["phase"].value_counts().to_dict()
    ours = (f"{len(tab)} cells ({len(rs)} r × {len(es)} densities), lowest loss of {int(tab['restarts'].min())} "
            f"restarts each. Winners: {counts}. Antipodal cells per row (sparse→dense): {width}. "
            f"{100 * agree:.0f}% of cells match the analytic map; {100 * unclean:.0f}% unclean; restarts finding "
            f"the winning solution: {100 * tab['found_by'].mean():.0f}% on average "
            f"(min {100 * tab['found_by'].min():.0f}%).")
    return _claim("TMS-phase", checks, [checks[0].criterion, checks[1].criterion], ours, tab)


def check_capacity(df: pd.DataFrame) -> Verdict:
    """Row 12, PC-kurtosis, on the lowest-loss restart per K and on every restart (module docstring)."""
    d = df[df["status"] == "ok"].sort_values(["kurtosis", "seed"])
    D = np.asarray(d["W"].iloc[0]).shape[0]
    caps = metrics.capacity(stacked(d["W"])).numpy()
    rows = []
    for C, (_, r) in zip(caps, d.iterrows()):
        W, v, K = np.asarray(r["W"]), np.asarray(r["importance"]), float(r["kurtosis"])
        C_opt, L_opt = quadratic_capacity_theory(torch.as_tensor(v), D, K)
        L_cf = float(quadratic_expected_loss(torch.as_tensor(W), torch.as_tensor(float(np.asarray(r["b"]))),
                                             torch.as_tensor(v), K))
        L_meas, se = measured_quadratic_loss(W, float(np.asarray(r["b"])), v, K, r.get("input_kind", "auto"),
                                             seed=int(r["seed"]) + 1000)
        top = np.argsort(-v)[:D]
        rows.append({"K": K, "seed": r["seed"], "C": C, "C_opt": C_opt.numpy(), "sumC": float(C.sum()),
                     "binary": bool((np.minimum(C, 1 - C) <= 0.05).all()), "top": bool((C[top] >= 0.95).all()),
                     "fractional": int(((C > 0.05) & (C < 0.95)).sum()),
                     "dev": float(np.abs(C - C_opt.numpy()).max()), "L_cf": L_cf, "L_meas": L_meas, "se": se,
                     "z": (L_meas - L_cf) / se if se > 0 else 0.0, "L_opt": L_opt, "final_loss": r["final_loss"]})
    t = pd.DataFrame(rows)
    t["reached"] = t["L_cf"] <= 1.01 * t["L_opt"]  # this restart found the optimal loss (within 1%)
    # Capacity claims are about the optimum: judge the lowest-loss restart per K (its closed-form loss ranks the
    # restarts without sampling noise); every restart is reported.
    best = t.loc[t.groupby("K")["L_cf"].idxmin()]
    lo, hi = best[best["K"] < 3], best[best["K"] > 3]
    lo_all = t[t["K"] < 3]
    checks = [
        _check("K < 3: capacities all-or-nothing (every restart)", len(lo_all) > 0 and bool(lo_all["binary"].all()),
               f"{int(lo_all['binary'].sum())}/{len(lo_all)} models"),
        _check(f"K < 3: the {D} most important features at C = 1 (lowest-loss restart)",
               len(lo) > 0 and bool(lo["top"].all()),
               ", ".join(f"K={k:g}: {'yes' if x else 'no'}" for k, x in zip(lo["K"], lo["top"]))),
        _check("K > 3: fractional capacities present (lowest-loss restart)",
               len(hi) > 0 and bool((hi["fractional"] >= 1).all()),
               "fractional features: " + ", ".join(f"K={k:g}: {x}" for k, x in zip(hi["K"], hi["fractional"]))),
        _check("K > 3: every C_i within 0.1 of the optimal allocation (lowest-loss restart)",
               len(hi) > 0 and bool((hi["dev"] <= 0.1).all()),
               "max |C - C_opt|: " + ", ".join(f"K={k:g}: {x:.3f}" for k, x in zip(hi["K"], hi["dev"]))),
        _check(f"sum C ≈ D = {D} (±0.1, lowest-loss restart)", bool((abs(best["sumC"] - D) <= 0.1).all()),
               f"sum C from {best['sumC'].min():.3f} to {best['sumC'].max():.3f}"),
        _check("closed-form loss = measured loss (|z| <= 4, every model)", bool((t["z"].abs() <= 4).all()),
               f"|z| max {t['z'].abs().max():.2f} over {len(t)} models"),
    ]
    parts = []
    for K, g in t.groupby("K"):
        b = best[best["K"] == K].iloc[0]
        parts.append(f"K={K:g}: C = [{', '.join(f'{c:.2f}' for c in b['C'])}] (optimum "
                     f"[{', '.join(f'{c:.2f}' for c in b['C_opt'])}]), loss {b['L_cf']:.3f} vs optimum "
                     f"{b['L_opt']:.3f}; {int(g['reached'].sum())}/{len(g)} restarts reach the optimum "
                     f"(losses {_pm(g['L_cf'], '.3f')})")
    ours = (f"Lowest-loss of {t['seed'].nunique()} restarts per K, capacities of features by decreasing "
            "importance. " + "; ".join(parts) + f". Closed-form vs measured loss (2^17 fresh samples per model): "
            f"|z| ≤ {t['z'].abs().max():.2f}.")
    return _claim("PC-kurtosis", checks, [checks[0].criterion, checks[2].criterion], ours, t)
