"""The tables the superposition claims are judged and drawn from, and the geometry they are judged by.

:func:`final_weights` turns a TMS / quadratic results folder into its instances table plus each instance's final
``W`` (hidden x features), ``b`` and ``importance`` as numpy arrays (for plotting and tabulation; every metric is
computed by ``toymodels.metrics`` on the stacked weights, see :func:`stacked`). The tables can also be built by
hand, which is how the tests judge and draw ideal geometries without training.

Restarts (seeds) of one setting are ranked by :func:`tms_eval_losses`, the TMS model's own loss on common fresh
inputs, or by the closed-form expected loss for the quadratic model; the papers keep the lowest-loss restart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from jaxtyping import Float
from torch import Tensor

from toymodels.engine.data import DATA_STREAM, KurtosisSampler, generator
from toymodels.families.quadratic import QuadraticModel
from toymodels.families.tms import TMS_REPRESENTED_NORM, TMSModel
from toymodels.reproduce.superposition.rules import (
    FRACTIONS,
    LINE_NEAR,
    LINE_RING,
    NOTEBOOK_BUDGET,
    THRESHOLDS,
)
from toymodels.results.store import Results

#: The solutions of the n=2, m=1 phase diagram.
PHASES = ("feature 1", "feature 2", "antipodal", "other")
#: Fresh inputs per model for the TMS ranking loss.
EVAL_SAMPLES = 2**15
#: Inputs in memory at once while computing it (instances x samples x features).
EVAL_BLOCK_ELEMENTS = 2**23


def final_weights(results: Results, eval_samples: int = 0) -> pd.DataFrame:
    """The instances table of a TMS / quadratic results folder plus object columns ``W`` (hidden, features), ``b`` and
    ``importance`` (numpy float64 arrays of each instance's final model); with ``eval_samples`` (TMS only) also
    ``eval_loss``, :func:`tms_eval_losses` on that many fresh inputs."""
    df = results.instances.copy()
    params = [results.params(rid) for rid in df["run_id"]]
    for key in ("W", "b", "importance"):
        df[key] = pd.Series([p[key].double().numpy() for p in params], index=df.index, dtype=object)
    if len(df) and eval_samples:
        df["eval_loss"] = tms_eval_losses(df, eval_samples)
    return df


def stacked(arrays: Sequence[np.ndarray]) -> Float[Tensor, "instances ..."]:
    """Equal-shaped numpy arrays as one float64 tensor with the instance axis first (the metrics' layout)."""
    return torch.as_tensor(np.stack([np.asarray(a, dtype=np.float64) for a in arrays]))


def eval_inputs(n: int, eps: float, samples: int, seed: int = 0) -> np.ndarray:
    """TMS inputs x_i ~ U[0, 1) with probability ``eps``, else 0, that depend only on (seed, n, eps): the same for
    every restart of a setting (common random numbers). Drawn with numpy's generator, as for the published
    reports, so restarts are ranked on the same inputs as before."""
    rng = np.random.default_rng([seed, n, round(float(eps) * 1e9)])
    return rng.random((samples, n)) * (rng.random((samples, n)) < eps)


@torch.no_grad()
def tms_eval_losses(df: pd.DataFrame, samples: int = EVAL_SAMPLES, seed: int = 0) -> np.ndarray:
    """Each row's TMS loss (``TMSModel.losses``: mean over samples and features of I_i (x_i - x'_i)^2) on
    ``samples`` fresh inputs of its density (:func:`eval_inputs`), batched over the rows of one (eps, variant).

    Ranking restarts this way is far less noisy than by ``final_loss`` (a few training batches), which matters
    where restarts differ by less than the batch noise (e.g. the n=2 phase diagram near r = 1).
    """
    out = np.full(len(df), np.nan)
    for (eps, variant), rows in df.groupby(["eps", "tms_variant"], sort=False).indices.items():
        n = np.asarray(df["W"].iloc[rows[0]]).shape[1]
        x = torch.as_tensor(eval_inputs(n, eps, samples, seed))
        chunk = max(1, EVAL_BLOCK_ELEMENTS // (samples * n))
        for start in range(0, len(rows), chunk):
            part = rows[start:start + chunk]
            model = TMSModel.from_tensors({key: stacked(df[key].iloc[part]) for key in ("W", "b", "importance")},
                                          variant)
            out[part] = model.losses(x.expand(len(part), -1, -1), "decoder", with_l1=False)[0].numpy()
    return out


@torch.no_grad()
def measured_quadratic_loss(W: np.ndarray, b: float, v: np.ndarray, kurtosis: float, input_kind: str = "auto",
                            samples: int = 2**17, seed: int = 12345) -> tuple[float, float]:
    """Loss of one quadratic model (``QuadraticModel``: its prediction and target) on fresh inputs: (mean squared
    error, its standard error sd/sqrt(samples)). Drawn in float64 with the training sampler's distribution from an
    independent stream."""
    model = QuadraticModel.from_tensors({"W": stacked([W]), "b": torch.tensor([float(b)], dtype=torch.float64),
                                         "importance": stacked([v])})
    n = model.W.shape[-1]
    sampler = KurtosisSampler(n, kurtosis, input_kind, samples, generator(seed, DATA_STREAM + 100), "cpu")
    x = torch.zeros(samples, n, dtype=torch.float64)
    sampler.fill(x)
    y_hat, _ = model(x[None])
    err = (y_hat - model.target(x[None]))[0].pow(2)
    return float(err.mean()), float(err.std() / math.sqrt(samples))


def budget_of(df: pd.DataFrame) -> dict[str, object]:
    """The training budget of a table of instances (the first row's optimizer, lr, batch_size, steps)."""
    row = df.iloc[0]
    return {key: row[key] for key in NOTEBOOK_BUDGET if key in df}


def at_notebook_budget(df: pd.DataFrame) -> bool:
    """Whether the instances were trained at the notebook's budget (``NOTEBOOK_BUDGET``)."""
    budget = budget_of(df)
    return len(budget) == len(NOTEBOOK_BUDGET) and all(
        budget[k] == v if isinstance(v, str) else abs(float(budget[k]) - float(v)) <= 1e-12
        for k, v in NOTEBOOK_BUDGET.items())


def lowest_loss(df: pd.DataFrame, by: Sequence[str], col: str | None = None) -> pd.DataFrame:
    """One row per setting ``by``: the restart (seed) with the lowest loss (the papers' recipe for the intro
    figure and the phase diagram), ranked by ``col`` (default: ``eval_loss`` when present, else ``final_loss``).
    Diverged instances never win."""
    ok = df[df["status"] == "ok"] if "status" in df else df
    col = col or ("eval_loss" if "eval_loss" in ok else "final_loss")
    idx = ok.groupby(list(by), sort=True)[col].idxmin()
    return ok.loc[idx.values].reset_index(drop=True)


def fraction_lines(D: np.ndarray, near: float = LINE_NEAR, ring: float = LINE_RING,
                   min_count: float = THRESHOLDS.line_min_count,
                   ratio: float = THRESHOLDS.line_ring_ratio) -> dict[str, dict]:
    """check.py's rule per named fraction f (``rules.FRACTIONS``): the values within ``near`` of f, those in the
    band from ``near`` to ``ring`` away, and whether that is a line in one model: >= ``min_count`` near and at least
    ``ratio`` times as many as in the band (TMS-dim reads the counts over seeds, ``seed_checks``)."""
    out = {}
    for name, f in FRACTIONS.items():
        dist = np.abs(D - f)
        n_near = int((dist <= near).sum())
        n_ring = int(((dist > near) & (dist <= ring)).sum())
        out[name] = {"near": n_near, "ring": n_ring, "line": n_near >= min_count and n_near >= ratio * n_ring}
    return out


def phase_label(W: np.ndarray, threshold: float = TMS_REPRESENTED_NORM) -> str:
    """The n=2, m=1 solution a trained W (1, 2) is: ``feature 1`` or ``feature 2`` (only that one has |w| above
    ``threshold``), ``antipodal`` (both, opposite signs) or ``other`` (none, or both with the same sign)."""
    w1, w2 = (float(x) for x in np.asarray(W).reshape(-1)[:2])
    on1, on2 = abs(w1) > threshold, abs(w2) > threshold
    if on1 and not on2:
        return "feature 1"
    if on2 and not on1:
        return "feature 2"
    if on1 and on2 and w1 * w2 < 0:
        return "antipodal"
    return "other"


def antipodal_boundary(r: np.ndarray | float) -> np.ndarray:
    """Density below which the antipodal pair [1, -1] beats keeping only the more important feature (n=2, m=1).

    docs/papers.md §2.3 [DERIVED, qualitative]: with unit weights, zero biases except an optimal constant output
    for the dropped feature, L([1,0]) = r(rho/3 - rho^2/4) and L([1,-1]) = (1+r) rho^2/6 (r = I_2/I_1 <= 1), so the
    pair wins for rho < 4r/(2+5r); by symmetry (swap the features, divide the loss by r) rho < 4/(5+2r) for r > 1.
    """
    r = np.asarray(r, dtype=float)
    return np.where(r <= 1, 4 * r / (2 + 5 * r), 4 / (5 + 2 * r))


def analytic_phase(r: float, rho: float) -> str:
    """The solution the simple analytic model predicts at relative importance r and density rho."""
    if rho < float(antipodal_boundary(r)):
        return "antipodal"
    return "feature 1" if r <= 1 else "feature 2"


def phase_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per (importance_ratio, eps) cell: the lowest-loss restart's solution (``phase``), its weights ``w1``, ``w2``,
    the analytic prediction (``analytic``) and the fraction of restarts that found the winning solution."""
    best = lowest_loss(df, ["importance_ratio", "eps"])
    labels = {rid: phase_label(W) for rid, W in zip(df["run_id"], df["W"])}
    rows = []
    for _, row in best.iterrows():
        cell = df[(df["importance_ratio"] == row["importance_ratio"]) & (df["eps"] == row["eps"])]
        phase = labels[row["run_id"]]
        W = np.asarray(row["W"]).reshape(-1)
        rows.append({"importance_ratio": row["importance_ratio"], "eps": row["eps"], "phase": phase,
                     "w1": float(W[0]), "w2": float(W[1]), "final_loss": row["final_loss"],
                     "analytic": analytic_phase(row["importance_ratio"], row["eps"]),
                     "restarts": len(cell), "found_by": float(np.mean([labels[r] == phase for r in cell["run_id"]]))})
    return pd.DataFrame(rows)
