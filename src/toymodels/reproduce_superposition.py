"""Reproduce the superposition claims (shared/PAPERS.md §4 rows 8-12) and write docs/superposition.md.

``reproduce_superposition(names, scale, seeds, out_dir, docs_dir)`` trains the TMS and P&C presets (resuming any
finished results folder under ``out_dir``), draws their figures into ``docs_dir/figures/`` and judges each claim
with the criteria below. Each verdict is one of ``agrees`` (every criterion holds), ``partly`` (some hold),
``disagrees`` (every central criterion, the core of the claim, fails) or ``inconclusive`` (too little data,
e.g. not run), with its reason.

Criteria (PAPERS.md §4; thresholds chosen before looking at our runs and written down here):

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
  order); >= 80% of cells agree with the analytic prediction of PAPERS.md §2.3; clean solutions (<= 10% of cells
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

import json
import math
import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch

from . import __version__
from . import plots_superposition as ps
from .data import DATA_STREAM, KurtosisSampler, generator
from .models import quadratic_capacity_theory, quadratic_expected_loss
from .presets import PRESETS, preset, superposition_presets

#: Restarts the papers' recipe needs where the lowest-loss restart is kept (PAPERS.md §4 rows 8 and 11).
MIN_SEEDS = {"TMS-intro": 3, "TMS-phase": 5, "PC-kurtosis": 4}
ROWS = {"TMS-intro": 8, "TMS-basic": 9, "TMS-dim": 10, "TMS-phase": 11, "PC-kurtosis": 12}
FIGURES = {"TMS-intro": "tms_intro.png", "TMS-basic": "tms_basic.png", "TMS-dim": "tms_dim.png",
           "TMS-phase": "tms_phase.png", "PC-kurtosis": "pc_kurtosis.png"}
CLAIMS = {
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


# ------------------------------------------------------------------------------------------------ small helpers
def _check(name: str, passed: bool, detail: str) -> dict[str, Any]:
    return {"criterion": name, "passed": bool(passed), "detail": detail}


def _pm(values: Sequence[float], fmt: str = ".2f") -> str:
    """'mean +- sd (min-max)' over seeds, or the single value."""
    a = np.asarray(list(values), dtype=float)
    if a.size == 1:
        return format(a[0], fmt)
    return f"{format(a.mean(), fmt)} ± {format(a.std(ddof=1), fmt)} ({format(a.min(), fmt)}–{format(a.max(), fmt)})"


def _spearman(x: Sequence[float], y: Sequence[float]) -> float:
    s = pd.Series(list(x)).rank().corr(pd.Series(list(y)).rank())
    return float(s) if s == s else 0.0


def _verdict(checks: list[dict[str, Any]], central: Sequence[str]) -> tuple[str, str]:
    """agrees if every criterion holds; disagrees if every central criterion (the core of the claim) fails;
    otherwise partly. The reason names the failed criteria."""
    failed = [c["criterion"] for c in checks if not c["passed"]]
    if not checks:
        return "inconclusive", "no criteria could be evaluated"
    if not failed:
        return "agrees", "every criterion holds"
    if central and set(central) <= set(failed):
        return "disagrees", "fails: " + "; ".join(failed)
    return "partly", "fails: " + "; ".join(failed)


def _angle_gaps(W: np.ndarray) -> np.ndarray:
    """Angular gaps in degrees between neighbouring columns of a (2, n) W around the circle."""
    ang = np.sort(np.degrees(np.arctan2(W[1], W[0])) % 360)
    return np.diff(np.concatenate([ang, [ang[0] + 360]]))


# ---------------------------------------------------------------------------------------------------- row 8
def check_intro(df: pd.DataFrame) -> dict[str, Any]:
    best = ps.lowest_loss(df, ["eps"])
    dense = best.loc[best["eps"].idxmax()]
    sparse = best.loc[best["eps"].idxmin()]
    Wd, Ws = np.asarray(dense["W"]), np.asarray(sparse["W"])
    nd, ns = np.linalg.norm(Wd, axis=0), np.linalg.norm(Ws, axis=0)
    rep_d = [int(i) for i in np.flatnonzero(nd > ps.REPRESENTED)]
    cos01 = float(Wd[:, 0] @ Wd[:, 1] / max(1e-12, nd[0] * nd[1]))
    angle = math.degrees(math.acos(max(-1.0, min(1.0, cos01))))
    others = float(nd[2:].max()) if nd.size > 2 else 0.0
    rep_s = int((ns > ps.REPRESENTED).sum())
    gaps = _angle_gaps(Ws[:, ns > ps.REPRESENTED]) if rep_s >= 2 else np.array([360.0])
    b_rep = np.asarray(sparse["b"])[ns > ps.REPRESENTED]
    sparse_rows = df[df["eps"] == df["eps"].min()]
    pent = sum(int((np.linalg.norm(np.asarray(W), axis=0) > ps.REPRESENTED).sum()) == Ws.shape[1]
               for W in sparse_rows["W"])
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
    verdict, reason = _verdict(checks, central=["sparsest: all 5 represented"])
    n_seeds = df["seed"].nunique()
    ours = (f"Lowest-loss of {n_seeds} restarts. Dense (1-S=1): represented {rep_d}, angle {angle:.1f}°, max other "
            f"norm {others:.3f}. Sparsest (1-S={sparse['eps']:.3g}): {rep_s}/5 represented, neighbour gaps "
            f"{np.sort(gaps).round(0).tolist()}°, biases {b_rep.min():.3f}…{b_rep.max():.3f}; "
            f"{pent} of {len(sparse_rows)} restarts represent all 5 there. Represented count per density "
            f"(densest→sparsest): "
            + ", ".join(str(int((np.linalg.norm(np.asarray(W), axis=0) > ps.REPRESENTED).sum()))
                        for W in best.sort_values('eps', ascending=False)["W"]) + ".")
    return {"checks": checks, "verdict": verdict, "reason": reason, "ours": ours}


# ---------------------------------------------------------------------------------------------------- row 9
def check_basic(df: pd.DataFrame) -> dict[str, Any]:
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
               _spearman([1 / e for e in eps_levels], [mean_rep[e] for e in eps_levels]) >= 0.8,
               f"Spearman {_spearman([1 / e for e in eps_levels], [mean_rep[e] for e in eps_levels]):.2f}"),
        _check("ReLU: superposition rises with sparsity (Spearman >= 0.8) from < 0.1 dense",
               _spearman([1 / e for e in eps_levels], [sup[e] for e in eps_levels]) >= 0.8 and sup[dense_eps] < 0.1,
               f"Spearman {_spearman([1 / e for e in eps_levels], [sup[e] for e in eps_levels]):.2f}, "
               f"{sup[dense_eps]:.3f} dense → {sup[min(eps_levels)]:.3f} sparsest"),
    ]
    if len(lin):
        lin_rep = lin.groupby("eps")["represented_features"].mean()
        checks.append(_check(f"linear: {m} represented at every density", bool((abs(lin_rep - m) <= 0.5).all()),
                             f"mean per density {lin_rep.sort_index(ascending=False).round(2).tolist()}"))
    verdict, reason = _verdict(checks, central=[c["criterion"] for c in checks[1:3]])
    ours = ("ReLU model, represented features per density (1-S high→low), mean ± sd over "
            f"{relu['seed'].nunique()} seeds: "
            + "; ".join(f"{e:g}: {_pm(relu[relu['eps'] == e]['represented_features'], '.1f')}" for e in eps_levels)
            + ". Mean superposition of represented features: "
            + ", ".join(f"{sup[e]:.2f}" for e in eps_levels) + "."
            + (" Linear model: " + ", ".join(f"{v:.1f}" for v in
                                             lin.groupby('eps')['represented_features'].mean()
                                             .sort_index(ascending=False)) + " represented." if len(lin) else ""))
    return {"checks": checks, "verdict": verdict, "reason": reason, "ours": ours}


# --------------------------------------------------------------------------------------------------- row 10
def fraction_lines(D: np.ndarray, near: float = 0.005, ring: float = 0.0125, min_count: int = 10) -> dict[str, dict]:
    """check.py's rule per named fraction f: a line when >= ``min_count`` values lie within ``near`` of f and at
    least twice as many as in the band from ``near`` to ``ring`` away."""
    out = {}
    for name, f in ps.FRACTIONS.items():
        dist = np.abs(D - f)
        n_near = int((dist <= near).sum())
        n_ring = int(((dist > near) & (dist <= ring)).sum())
        out[name] = {"near": n_near, "ring": n_ring, "line": n_near >= min_count and n_near >= 2 * n_ring}
    return out


def check_dims(df: pd.DataFrame) -> dict[str, Any]:
    d = df[df["status"] == "ok"]
    per_seed = []
    for seed, g in d.groupby("seed"):
        g = g.sort_values("eps", ascending=False)
        dstar = np.array([W.shape[0] / float((np.asarray(W) ** 2).sum()) for W in g["W"]])
        D_all = np.concatenate([ps.capacities(np.asarray(W)) for W in g["W"]])
        norms = np.concatenate([np.linalg.norm(np.asarray(W), axis=0) for W in g["W"]])
        lines = fraction_lines(D_all)
        fr = np.array(list(ps.FRACTIONS.values()))
        near2 = np.abs(D_all[:, None] - fr[None]).min(1) <= 0.02
        per_seed.append({
            "seed": seed, "dstar_dense": float(dstar[0]),
            "levels_half": int((np.abs(dstar - 0.5) <= 0.03).sum()),
            "lines": [k for k, v in lines.items() if v["line"]], "line_counts": lines,
            "share_near": float(near2.mean()), "share_near_rep": float(near2[norms > ps.REPRESENTED].mean())
            if (norms > ps.REPRESENTED).any() else 0.0, "dstar": dstar.round(3).tolist(),
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
    verdict, reason = _verdict(checks, central=[checks[1]["criterion"], checks[2]["criterion"]])
    ours = (f"{len(per_seed)} seeds. D* dense {_pm([s['dstar_dense'] for s in per_seed], '.3f')}; levels with "
            f"|D*−1/2| ≤ 0.03: {', '.join(str(s['levels_half']) for s in per_seed)} (per seed); lines (check.py "
            f"rule) per seed: {'; '.join(','.join(s['lines']) or 'none' for s in per_seed)}; share of features "
            f"within 0.02 of the six fractions: {_pm([100 * s['share_near'] for s in per_seed], '.0f')}% (all), "
            f"{_pm([100 * s['share_near_rep'] for s in per_seed], '.0f')}% (represented) — authors' run: 26%. "
            f"D* per level (seed {per_seed[0]['seed']}, dense→sparse): {per_seed[0]['dstar']}.")
    return {"checks": checks, "verdict": verdict, "reason": reason, "ours": ours, "per_seed": per_seed}


# --------------------------------------------------------------------------------------------------- row 11
def check_phase(df: pd.DataFrame) -> dict[str, Any]:
    tab = ps.phase_table(df)
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
    verdict, reason = _verdict(checks, central=[checks[0]["criterion"], checks[1]["criterion"]])
    counts = tab["phase"].value_counts().to_dict()
    ours = (f"{len(tab)} cells ({len(rs)} r × {len(es)} densities), lowest loss of {int(tab['restarts'].min())} "
            f"restarts each. Winners: {counts}. Antipodal cells per row (sparse→dense): {width}. "
            f"{100 * agree:.0f}% of cells match the analytic map; {100 * unclean:.0f}% unclean; restarts finding "
            f"the winning solution: {100 * tab['found_by'].mean():.0f}% on average "
            f"(min {100 * tab['found_by'].min():.0f}%).")
    return {"checks": checks, "verdict": verdict, "reason": reason, "ours": ours, "table": tab}


# --------------------------------------------------------------------------------------------------- row 12
@torch.no_grad()
def measured_quadratic_loss(W: np.ndarray, b: float, v: np.ndarray, kurtosis: float, input_kind: str = "auto",
                            samples: int = 2**17, seed: int = 12345) -> tuple[float, float]:
    """Loss of one quadratic model on fresh inputs: (mean squared error, its standard error sd/sqrt(samples)).

    Drawn in float64 with the training sampler's distribution from an independent stream."""
    Wt = torch.as_tensor(W, dtype=torch.float64)
    vt = torch.as_tensor(v, dtype=torch.float64)
    sampler = KurtosisSampler(Wt.shape[1], kurtosis, input_kind, samples, generator(seed, DATA_STREAM + 100), "cpu")
    x = torch.zeros(samples, Wt.shape[1], dtype=torch.float64)
    sampler.fill(x)
    err = ((x @ Wt.T).pow(2).sum(-1) + float(b) - x.pow(2) @ vt).pow(2)
    return float(err.mean()), float(err.std() / math.sqrt(samples))


def check_capacity(df: pd.DataFrame) -> dict[str, Any]:
    d = df[df["status"] == "ok"].sort_values(["kurtosis", "seed"])
    D = np.asarray(d["W"].iloc[0]).shape[0]
    rows = []
    for _, r in d.iterrows():
        W, v, K = np.asarray(r["W"]), np.asarray(r["importance"]), float(r["kurtosis"])
        C = ps.capacities(W)
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
    verdict, reason = _verdict(checks, central=[checks[0]["criterion"], checks[2]["criterion"]])
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
    return {"checks": checks, "verdict": verdict, "reason": reason, "ours": ours, "table": t}


CHECKS: dict[str, Callable[[pd.DataFrame], dict[str, Any]]] = {
    "TMS-intro": check_intro, "TMS-basic": check_basic, "TMS-dim": check_dims, "TMS-phase": check_phase,
    "PC-kurtosis": check_capacity,
}


def draw_figure(name: str, df: pd.DataFrame, path: Path) -> Path:
    if name == "TMS-intro":
        return ps.plot_intro(df, path)
    if name == "TMS-basic":
        return ps.plot_basic(df, path)
    if name == "TMS-dim":
        return ps.plot_dims(df, path)
    if name == "TMS-phase":
        return ps.plot_phase(df, path)
    if name == "PC-kurtosis":
        d = df[df["status"] == "ok"]
        D = np.asarray(d["W"].iloc[0]).shape[0]
        v = torch.as_tensor(np.asarray(d["importance"].iloc[0]))
        theory = {float(K): quadratic_capacity_theory(v, D, float(K))[0].numpy() for K in sorted(set(d["kurtosis"]))}
        return ps.plot_capacity(df, theory, path)
    raise KeyError(name)


# -------------------------------------------------------------------------------------------------- the runner
def reproduce_superposition(
    names: Sequence[str] | None = None, scale: str = "quick", seeds: int = 2, out_dir: str | Path = "runs",
    docs_dir: str | Path = "docs", progress: bool = False, threads: int | str | None = "auto",
) -> list[dict[str, Any]]:
    """Train (or resume) the superposition presets, judge PAPERS.md §4 rows 8-12 and write the report.

    ``names``: presets to run (default: all of TMS-intro, TMS-basic, TMS-dim, TMS-phase, PC-kurtosis); ``seeds``
    per setting, raised to ``MIN_SEEDS`` (3 for TMS-intro, 5 for TMS-phase, 4 for PC-kurtosis) where the
    lowest-loss restart is judged; results go to
    ``out_dir/<preset>-<scale>`` (an existing folder of the same sweep is resumed, not retrained); figures to
    ``docs_dir/figures/``; the report to ``docs_dir/superposition.md``. ``threads``: torch intra-op threads while
    training; ``"auto"`` = 1 at smoke and quick scale (these models are tiny: on a busy 2-core machine 2 threads
    made a TMS step ~14x slower than 1), torch's default at paper scale.
    Returns one verdict dict per preset: name, row, claim, paper, ours, checks, verdict, reason, figure, scale,
    seeds, folder, seconds.
    """
    from .sweep import run_sweep

    names = list(names) if names else superposition_presets()
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        raise ValueError(f"not a superposition preset: {unknown[0]}; available: {', '.join(CHECKS)}")
    out_dir, docs_dir = Path(out_dir), Path(docs_dir)
    fig_dir = docs_dir / "figures"
    old_threads = torch.get_num_threads()
    n_threads = (1 if scale in ("smoke", "quick") else None) if threads == "auto" else threads
    verdicts = []
    try:
        if n_threads:
            torch.set_num_threads(int(n_threads))
        for name in names:
            n_seeds = max(seeds, MIN_SEEDS.get(name, 1))
            sweep = preset(name, scale=scale, seeds=n_seeds)
            folder = out_dir / sweep.name
            t0 = time.perf_counter()
            res = run_sweep(sweep, folder, resume=(folder / "sweep.json").exists(), progress=progress, report=False)
            wall = time.perf_counter() - t0
            # training time as recorded by the groups (also right when a finished folder was only resumed)
            seconds = float(res.instances["train_seconds"].sum()) if "train_seconds" in res.instances else wall
            df = ps.final_weights(res)
            result = CHECKS[name](df)
            fig = draw_figure(name, df, fig_dir / FIGURES[name])
            claim, paper = CLAIMS[name]
            verdicts.append({
                "name": name, "row": ROWS[name], "claim": claim, "paper": paper, "ours": result["ours"],
                "checks": result["checks"], "verdict": result["verdict"], "reason": result["reason"],
                "figure": str(fig.relative_to(docs_dir)) if fig.is_relative_to(docs_dir) else str(fig),
                "scale": scale, "seeds": n_seeds, "folder": str(folder), "seconds": round(seconds, 1),
                "instances": len(res.instances), "steps": sweep.base.optim.steps, "threads": torch.get_num_threads(),
                "batch_size": sweep.base.optim.batch_size,
            })
            pending = {n: "not run yet (the run was interrupted or is still going)" for n in names[len(verdicts):]}
            if pending:  # a partial report after each preset, so an interrupted run still leaves its verdicts
                write_report(verdicts, docs_dir / "superposition.md", scale=scale, seeds=seeds, names=names,
                             not_run=pending)
    finally:
        torch.set_num_threads(old_threads)
    write_report(verdicts, docs_dir / "superposition.md", scale=scale, seeds=seeds, names=names)
    (out_dir / f"superposition-{scale}-verdicts.json").parent.mkdir(parents=True, exist_ok=True)
    (out_dir / f"superposition-{scale}-verdicts.json").write_text(json.dumps(verdicts, indent=1, default=str))
    return verdicts


def _cell(text: Any) -> str:
    """Text for a markdown table cell: pipes escaped, no newlines."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def write_report(verdicts: list[dict[str, Any]], path: str | Path, scale: str, seeds: int,
                 names: Sequence[str], not_run: dict[str, str] | None = None) -> Path:
    """docs/superposition.md: the verdict table, then per claim the paper's statement, our numbers, the figure,
    the verdict with its criteria, and how it was produced. ``not_run`` maps skipped presets to the reason."""
    path = Path(path)
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    call = (f"reproduce_superposition(names={list(names)!r}, scale={scale!r}, seeds={seeds}, "
            f"out_dir='runs', docs_dir='docs')")
    lines = [
        "# Superposition and capacity: reproduction report",
        "",
        "Claims of *Toy Models of Superposition* (Elhage et al. 2022) and *Polysemanticity and Capacity in Neural "
        "Networks* (Scherlis et al. 2022), checked with the toymodels TMS and quadratic model families against the "
        "criteria of `shared/PAPERS.md` §4 rows 8-12, written down in `toymodels/reproduce_superposition.py` "
        "before the runs (one exception, stated there: for row 12 the lowest-loss restart is judged, decided after "
        "a calibration run). Verdicts: **agrees** (every criterion holds), **partly** (some hold), **disagrees** "
        "(the core criteria fail), **inconclusive** (not run or too little data).",
        "",
        f"Generated {now} by toymodels {__version__} (torch {torch.__version__}, Python "
        f"{platform.python_version()}, CPU), scale `{scale}`, seeds={seeds} per setting (restarts raised to "
        + ", ".join(f"{v} for {k}" for k, v in MIN_SEEDS.items()) + ").",
        "",
        "```",
        "python -c \"from toymodels.reproduce_superposition import reproduce_superposition; "
        f"{call}\"",
        "```",
        "",
        "## Verdicts",
        "",
        "| PAPERS.md §4 row | preset | claim | verdict | reason |",
        "|---|---|---|---|---|",
    ]
    for v in verdicts:
        lines.append(f"| {v['row']} | {v['name']} | {_cell(v['claim'])} | **{v['verdict']}** | {_cell(v['reason'])} |")
    for name, why in (not_run or {}).items():
        lines.append(f"| {ROWS.get(name, '')} | {name} | {_cell(CLAIMS.get(name, ('', ''))[0])} | **inconclusive** | "
                     f"{_cell(why)} |")
    lines.append("")
    if verdicts:
        total = sum(v["seconds"] for v in verdicts)
        each = ", ".join(f"{v['name']} {v['seconds']:.0f} s" for v in verdicts)
        lines.append(f"Training time here: {total / 60:.0f} min in all ({each}).")
        lines.append("")
    if scale != "paper" and verdicts:
        lines += ["How this scale differs from scale `paper` (the papers' settings where PAPERS.md §2.2 gives them, "
                  "i.e. for TMS; for PC-kurtosis our own large-batch choice). The model sizes n, m are the papers' "
                  "at every scale but smoke:", ""]
        for v in verdicts:
            paper = preset(v["name"], scale="paper")
            ours = v["steps"] * v["batch_size"]
            theirs = paper.base.optim.steps * paper.base.optim.batch_size
            n_ours, n_paper = v["instances"] // max(1, v["seeds"]), len(paper.instances())
            lines.append(f"- {v['name']}: {v['steps']:,} steps × batch {v['batch_size']} "
                         f"({100 * ours / theirs:.0f}% of the {paper.base.optim.steps:,} × "
                         f"{paper.base.optim.batch_size} samples at scale `paper`)"
                         + (f", {n_ours} settings per seed instead of {n_paper}" if n_ours != n_paper else "")
                         + f", {v['seeds']} seeds/restarts.")
        lines.append("")
    for v in verdicts:
        p = PRESETS[v["name"]]
        lines += [
            f"## {v['name']}: {v['claim']}",
            "",
            f"**Paper.** {v['paper']}",
            "",
            f"**Ours.** {v['ours']}",
            "",
            f"![{v['name']}]({v['figure']})",
            "",
            f"**Verdict: {v['verdict']}** — {v['reason']}.",
            "",
            "| criterion | holds | measured |",
            "|---|---|---|",
        ]
        lines += [f"| {_cell(c['criterion'])} | {'yes' if c['passed'] else 'no'} | {_cell(c['detail'])} |"
                  for c in v["checks"]]
        lines += [
            "",
            f"Run: preset `{v['name']}` at scale `{v['scale']}`, {v['seeds']} seeds, {v['instances']} instances, "
            f"{v['steps']:,} steps at batch {v['batch_size']}, {v['seconds']:.0f} s of training "
            f"({v.get('threads', '?')} torch thread(s), CPU) "
            f"(`toymodels run {v['name']} --scale {v['scale']} --seeds {v['seeds']}`). {p.notes}",
            "",
        ]
    for name, why in (not_run or {}).items():
        lines += [f"## {name}: not run", "", f"{why}", ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return path
