"""How each superposition claim (docs/papers.md §4 rows 8-12) is judged: one ``check_*`` per claim, criterion by
criterion, each taking the table of trained instances with their final weights (``data``) and
returning a :class:`~toymodels.reproduce.verdict.Verdict` whose ``checks`` are the criteria below.

The verdict rule (fixed before the runs): a criterion either holds, fails, or *cannot tell* (the runs cannot decide
it; each criterion below says when). ``partly`` / ``disagrees`` when a decided criterion fails (``disagrees``: every
central criterion, the core of the claim, fails); otherwise ``inconclusive`` when some criterion cannot tell;
otherwise ``agrees`` (every criterion holds).

Criteria (docs/papers.md §4; the source of each mark in brackets; thresholds written here before the runs they judge):

* row 8, TMS-intro (lowest-loss restart per density): dense (1-S = 1): exactly features 0 and 1 have
  ||W_i|| > 0.5, at 90 +- 6 degrees, the others' norms < 0.25; sparsest (1-S = 0.05): all 5 represented, the
  angular gaps between neighbouring arrows within 45-100 degrees (pentagon-like), every represented feature's bias
  negative [paper: the intro figure].
* row 9, TMS-basic (mean over >= 3 seeds): ReLU model: m = 5 (+-1) represented at 1-S = 1 and the represented count
  and the superposition rise with sparsity (Spearman >= 0.8; superposition < 0.1 dense) [paper's text: the dense
  ReLU model behaves like the linear one and packs in more features as they get sparser]; the linear model
  represents m (+-0.5) at every density [paper's text]; and, per density, the mean count within 2 features of
  adonath's replication (5, 7, 9, 10, 11, 11, 12 from 1-S = 1 to 0.001; one run, so 2 covers its seed noise and
  ours) [replication]. The replication comparison *cannot tell* unless the run used the replication's (the
  notebook's) budget -- AdamW, lr 1e-3, batch 1024, 10,000 steps -- and >= 3 seeds. The paper gives no count for the
  sparse end, so the earlier mark ">= 16 of 20 at 1-S <= 0.003" is dropped. Central: the rise with sparsity and the
  linear model at m.
* row 10, TMS-dim (each seed): D* within 0.1 of 1 at 1-S = 1 [paper's figure]; >= 3 of the 20 levels with D*
  within 0.03 of 1/2 [check.py's mark; adonath's replication has 4]; "lines" (check.py's rule: >= 10 features
  within 0.005 of the fraction and at least twice as many as in the band 0.005-0.0125 away) at 1/2 and at one or
  more of 3/4, 2/3, 2/5, 3/8 [paper's fractions; the replication clusters at 2/3 and 2/5]. A failing plateau or
  line criterion *cannot tell* when the run had fewer samples (steps x batch) than the notebook's budget, where
  the marks were measured. The share of features within 0.02 of the six named fractions is reported but NOT
  required to be high: the authors' own run has only 26% there. Central: the plateau and the line at 1/2.
* row 11, TMS-phase (lowest-loss restart per cell): no antipodal solution at the densest row; antipodal at the
  sparsest row for r = 1; the antipodal region does not shrink as density falls (at most one row breaks the
  order); >= 80% of cells agree with the analytic prediction of docs/papers.md §2.3; clean solutions (<= 10% of cells
  'other' or with an intermediate weight ratio min/max |w| in (0.2, 0.8): an abrupt switch, not a gradual one).
* row 12, PC-kurtosis (lowest-loss restart per K, as the claims are about the optimal allocation; restarts from
  ``superposition.CLAIMS``): K < 3: every C_i within 0.05 of 0 or 1 (checked on every restart) and the 4 most
  important features at 1 -- which *cannot tell* when the lowest-loss restart misses it with a loss more than 1%
  above the closed-form loss of that allocation (no restart left the local minimum, so training has not found the
  optimum it is judged on); K > 3: at least one fractional C_i and every C_i within 0.1 of the optimal allocation;
  sum_i C_i within 0.1 of D; and for every trained model, the closed-form expected loss within 4 standard errors of
  its loss measured on 2^17 fresh samples. How many restarts reach the optimal loss is reported. (Judging the
  lowest-loss restart here was decided after a calibration run showed most restarts stuck in local minima at K < 3;
  thresholds unchanged.)
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from toymodels import metrics
from toymodels.families.quadratic import quadratic_capacity_theory, quadratic_expected_loss
from toymodels.families.tms import represented
from toymodels.reproduce.superposition.data import (
    FRACTIONS,
    NOTEBOOK_BUDGET,
    REPLICATION_BASIC_COUNTS,
    REPLICATION_DIM,
    at_notebook_budget,
    budget_of,
    fraction_lines,
    lowest_loss,
    measured_quadratic_loss,
    phase_table,
    stacked,
)
from toymodels.reproduce.verdict import Check, Verdict, spearman, verdict_from_checks

#: TMS-basic: the largest |our mean count - the replication's count| that still agrees, per density
BASIC_TOLERANCE = 2

#: preset -> (the claim in one line, what the paper says)
STATEMENTS: dict[str, tuple[str, str]] = {
    "TMS-intro": ("Superposition appears with sparsity (n=5, m=2)",
                  "Dense features: the model keeps the 2 most important features in orthogonal directions and "
                  "drops the rest (||W_i|| ~ 0). Sparsest: all 5 features are represented as a pentagon-like "
                  "arrangement, with negative biases (TMS intro figure)."),
    "TMS-basic": ("Only the nonlinear model uses superposition (n=20, m=5)",
                  "The linear model keeps the m = 5 most important features at every sparsity; so does the ReLU "
                  "model when the features are dense, and as they get sparser it represents more features "
                  "(||W_i|| > 0.5) in superposition (TMS 'Basic Results'). A replication at the notebook's budget "
                  "(adonath) counts 5, 7, 9, 10, 11, 11, 12 represented features from 1-S = 1 to 0.001."),
    "TMS-dim": ("D* sticks at 1/2 and D_i sits on polytope fractions (n=200, m=20)",
                "D* = m/||W||_F^2 is ~1 dense and 'sticky' at 1/2 (antipodal pairs) over a range of "
                "sparsities; per-feature D_i cluster on 1/2, 3/4, 2/3, 2/5, 3/8 (only ~26% of features lie "
                "within 0.02 of the fractions in the authors' own run) (TMS 'Feature Dimensionality'). A replication "
                "at the notebook's budget (adonath) has 4 levels within 0.03 of 1/2 and clusters at 2/3 and 2/5."),
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
           undecided: dict[str, str] | None = None, **details: Any) -> Verdict:
    """The Verdict of claim ``name`` from its criteria by the rule of the module docstring. ``central``: the core
    criteria (see verdict_from_checks); ``undecided``: criterion -> why the runs cannot tell (its Check is kept,
    with passed False, and named in ``details['undecided']``)."""
    undecided = {c: why for c, why in (undecided or {}).items() if any(k.criterion == c for k in checks)}
    decided = [c for c in checks if c.criterion not in undecided]
    verdict, reason = verdict_from_checks(decided, [c for c in central if c not in undecided])
    if undecided and verdict == "agrees":
        verdict, reason = "inconclusive", "every decided criterion holds"
    if verdict == "disagrees" and any(c in undecided for c in central):  # not every central criterion fails
        verdict = "partly"
    if undecided:
        reason += "; cannot tell: " + "; ".join(f"{c} ({why})" for c, why in undecided.items())
    title, paper = STATEMENTS[name]
    return Verdict(claim=name, title=title, verdict=verdict, reason=reason, numbers=ours, paper=paper, table=table,
                   checks=tuple(checks), details={**details, "undecided": tuple(undecided)})


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
    m = np.asarray(d["W"].iloc[0]).shape[0]
    relu = d[d["tms_variant"] == "relu"]
    lin = d[d["tms_variant"] == "linear"]
    sup = relu.groupby("eps")["superposition"].mean()
    eps_levels = sorted(relu["eps"].unique(), reverse=True)
    mean_rep = relu.groupby("eps")["represented_features"].mean()
    dense_eps = max(eps_levels)
    inv = [1 / e for e in eps_levels]
    rho_rep, rho_sup = spearman(inv, [mean_rep[e] for e in eps_levels]), spearman(inv, [sup[e] for e in eps_levels])
    rep_levels = [e for e in eps_levels if _replication_level(e) is not None]
    gaps = {e: float(mean_rep[e]) - REPLICATION_BASIC_COUNTS[_replication_level(e)] for e in rep_levels}
    replication = (f"within {BASIC_TOLERANCE} of the replication's count at every density "
                   f"({', '.join(str(v) for v in REPLICATION_BASIC_COUNTS.values())})")
    checks = [
        _check(f"ReLU dense: ~{m} represented (±1)", abs(mean_rep[dense_eps] - m) <= 1,
               f"{_pm(relu[relu['eps'] == dense_eps]['represented_features'], '.1f')} at 1-S={dense_eps:g}"),
        _check("ReLU: represented count rises with sparsity (Spearman >= 0.8)", rho_rep >= 0.8,
               f"Spearman {rho_rep:.2f}"),
        _check("ReLU: superposition rises with sparsity (Spearman >= 0.8) from < 0.1 dense",
               rho_sup >= 0.8 and sup[dense_eps] < 0.1,
               f"Spearman {rho_sup:.2f}, {sup[dense_eps]:.3f} dense → {sup[min(eps_levels)]:.3f} sparsest"),
        _check(f"ReLU: mean count {replication}",
               bool(gaps) and all(abs(g) <= BASIC_TOLERANCE for g in gaps.values()),
               "ours − replication: "
               + (", ".join(f"{e:g}: {g:+.1f}" for e, g in gaps.items()) or "no common density")),
    ]
    if len(lin):
        lin_rep = lin.groupby("eps")["represented_features"].mean()
        checks.append(_check(f"linear: {m} represented at every density", bool((abs(lin_rep - m) <= 0.5).all()),
                             f"mean per density {lin_rep.sort_index(ascending=False).round(2).tolist()}"))
    n_seeds = relu["seed"].nunique()
    undecided = {}
    if not at_notebook_budget(relu) or n_seeds < 3 or len(rep_levels) < len(REPLICATION_BASIC_COUNTS):
        undecided[checks[3].criterion] = (
            f"the replication ran at the notebook's budget ({_budget_text(NOTEBOOK_BUDGET)}) at all 7 densities; "
            f"these runs: {_budget_text(budget_of(relu))}, {len(rep_levels)} of its densities, {n_seeds} seed(s), "
            "and the comparison needs that budget, all densities and >= 3 seeds")
    ours = ("ReLU model, represented features per density (1-S high→low), mean ± sd over "
            f"{n_seeds} seeds: "
            + "; ".join(f"{e:g}: {_pm(relu[relu['eps'] == e]['represented_features'], '.1f')}" for e in eps_levels)
            + " (replication: " + ", ".join(f"{e:g}: {c}" for e, c in REPLICATION_BASIC_COUNTS.items()) + ")"
            + ". Mean superposition of represented features: "
            + ", ".join(f"{sup[e]:.2f}" for e in eps_levels) + "."
            + (" Linear model: " + ", ".join(f"{v:.1f}" for v in
                                             lin.groupby('eps')['represented_features'].mean()
                                             .sort_index(ascending=False)) + " represented." if len(lin) else ""))
    central = [checks[1].criterion] + ([checks[4].criterion] if len(lin) else [])
    return _claim("TMS-basic", checks, central, ours, undecided=undecided)


def _replication_level(eps: float) -> float | None:
    """The replication's density equal to ``eps`` (to 1e-9 relative), or None."""
    return next((e for e in REPLICATION_BASIC_COUNTS if abs(e - eps) <= 1e-9 * e), None)


def _budget_text(budget: dict[str, Any]) -> str:
    return (f"{budget.get('optimizer', '?')} lr {budget.get('lr', '?')}, batch {budget.get('batch_size', '?')}, "
            f"{budget.get('steps', '?')} steps")


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
    budget = budget_of(d)
    samples = float(budget.get("steps", 0)) * float(budget.get("batch_size", 0))
    full = samples >= float(NOTEBOOK_BUDGET["steps"]) * float(NOTEBOOK_BUDGET["batch_size"])
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
    short = (f"{100 * samples / (NOTEBOOK_BUDGET['steps'] * NOTEBOOK_BUDGET['batch_size']):.0f}% of the samples "
             "of the notebook's budget, where the marks were measured (the replication: "
             f"{REPLICATION_DIM['levels_half']} levels, lines at 1/2, {', '.join(REPLICATION_DIM['fractions'])})")
    undecided = {} if full else {c.criterion: short for c in checks[1:] if not c.passed}
    return _claim("TMS-dim", checks, [checks[1].criterion, checks[2].criterion], ours, undecided=undecided,
                  per_seed=per_seed)


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
    stuck = lo[~lo["top"] & (lo["L_cf"] > 1.01 * lo["L_opt"])]  # missed the allocation, and above its loss
    undecided = {checks[1].criterion: "no restart left the local minimum at " + ", ".join(
        f"K={r['K']:g} (best loss {r['L_cf']:.3f} vs {r['L_opt']:.3f} for the all-or-nothing allocation; "
        f"{int(t[t['K'] == r['K']]['reached'].sum())}/{int((t['K'] == r['K']).sum())} restarts reach it)"
        for _, r in stuck.iterrows())} if len(stuck) else {}
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
    return _claim("PC-kurtosis", checks, [checks[0].criterion, checks[2].criterion], ours, t, undecided=undecided)
