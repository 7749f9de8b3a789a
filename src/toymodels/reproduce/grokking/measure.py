"""What the grokking judges read, one row per instance: the phase steps, the key frequencies, the Gini coefficient,
when restricted and test loss fall, the weight norm across cleanup (``rules`` says why each is what it is), and the
phase sweep's grokked shares. pandas out; the models are read through ``families.grokking.analysis``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from toymodels.families.grokking.analysis import first_step, key_frequencies, progress_measures
from toymodels.reproduce.grokking.rules import CLEANUP_STARTS, GROKKED, MEMORISED, RULES, GrokRules
from toymodels.results.store import Results


def _fallen(curve: pd.Series, after: int, fraction: float) -> float:
    """The first step after ``after`` with the curve below ``fraction`` of its value at ``after`` (NaN if never)."""
    start = curve[curve.index >= after]
    if start.empty or not math.isfinite(float(start.iloc[0])):
        return math.nan
    hit = start[start < fraction * float(start.iloc[0])]
    return float(hit.index[0]) if len(hit) else math.nan


def _at(curve: pd.Series, step: float) -> float:
    return float(curve.loc[int(step)]) if math.isfinite(step) and int(step) in curve.index else math.nan


def instance_table(results: Results, rules: GrokRules = RULES) -> pd.DataFrame:
    """One row per instance that did not diverge: ``seed``, ``memorised`` (first step with train accuracy above
    MEMORISED), ``grokked`` (test accuracy above GROKKED; the budget's last step + 1 when never, ``grokked_within``
    says which), ``cleanup_start`` (test accuracy above CLEANUP_STARTS), ``n_key``, ``gini`` (final model),
    ``restricted_falls`` / ``test_falls`` (GROK-3's steps), ``norm_start`` / ``norm_end`` (weight norm at the start
    and end of cleanup) and ``checkpoint_every``."""
    inst = results.instances
    ok = inst[inst["status"] == "ok"] if "status" in inst else inst
    rows = []
    for _, r in ok.iterrows():
        rid = str(r["run_id"])
        steps = int(r["steps"])
        memorised = first_step(results, rid, "train_acc", MEMORISED)
        grokked = first_step(results, rid, "test_acc", GROKKED)
        cleanup = first_step(results, rid, "test_acc", CLEANUP_STARTS)
        prog = progress_measures(results, rid).set_index("step")
        after = memorised if memorised is not None else math.nan
        rows.append({
            "run_id": rid, "seed": int(r["seed"]), "steps": steps,
            "checkpoint_every": int(r["checkpoint_every"]) if "checkpoint_every" in r else math.nan,
            "memorised": float(memorised) if memorised is not None else math.nan,
            "grokked": float(grokked) if grokked is not None else float(steps),
            "grokked_within": grokked is not None,
            "cleanup_start": float(cleanup) if cleanup is not None else math.nan,
            "n_key": len(key_frequencies(results, rid)),
            "gini": float(prog["embed_gini"].iloc[-1]),
            "restricted_falls": _fallen(prog["restricted_loss"], after, rules.drop_fraction)
            if math.isfinite(after) else math.nan,
            "test_falls": _fallen(prog["test_loss"], after, rules.drop_fraction) if math.isfinite(after) else math.nan,
            "norm_start": _at(prog["weight_norm"], float(cleanup) if cleanup is not None else math.nan),
            "norm_end": _at(prog["weight_norm"], float(grokked) if grokked is not None else math.nan),
            "final_train_acc": float(r.get("train_acc", math.nan)), "final_test_acc": float(r.get("test_acc", math.nan)),
        })
    return pd.DataFrame(rows)


def share_table(results: Results) -> pd.DataFrame:
    """The phase sweep per (weight decay, training fraction): instances, how many grokked (final test accuracy
    above GROKKED), and the mean final test accuracy."""
    inst = results.instances
    ok = inst[inst["status"] == "ok"] if "status" in inst else inst
    grouped = ok.assign(grok=ok["test_acc"] > GROKKED).groupby(["weight_decay", "train_frac"])
    return grouped.agg(n=("grok", "size"), grokked=("grok", "sum"), test_acc=("test_acc", "mean")).reset_index()


def lead_checkpoints(table: pd.DataFrame) -> np.ndarray:
    """GROK-3's per-seed lead of restricted over test loss, in checkpoints (NaN where either never fell)."""
    every = table["checkpoint_every"].astype(float).replace(0, np.nan)
    return ((table["test_falls"] - table["restricted_falls"]) / every).to_numpy(dtype=float)
