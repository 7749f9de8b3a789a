"""The verdict rules of the superposition claims on hand-made tables (no training): when a criterion holds, fails
or cannot tell, and how that decides the verdict; the presets' notebook budget and init scale."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import weights_table

from toymodels.config import FIELDS
from toymodels.families.quadratic import quadratic_optimum
from toymodels.families.tms.presets import TMS_BASIC_EPS, notebook_init_std
from toymodels.config.presets import preset
from toymodels.reproduce.superposition.checks import _claim, check_basic, check_capacity, check_dims
from toymodels.reproduce.superposition.data import NOTEBOOK_BUDGET, REPLICATION_BASIC_COUNTS, at_notebook_budget
from toymodels.reproduce.verdict import Check

NOTEBOOK = dict(NOTEBOOK_BUDGET)


def basic_table(counts: dict[float, float], seeds: int = 3, linear: int = 5, **budget) -> pd.DataFrame:
    """ReLU instances with ``counts`` represented features per density (the same every seed), superposition rising
    with sparsity, and linear instances with ``linear`` represented features; trained at ``budget``."""
    recs = []
    for seed in range(seeds):
        for i, (eps, c) in enumerate(counts.items()):
            recs.append(dict(tms_variant="relu", eps=eps, seed=seed, represented_features=float(c),
                             superposition=0.3 * i))
            recs.append(dict(tms_variant="linear", eps=eps, seed=seed, represented_features=float(linear),
                             superposition=0.0))
    cols = {k: [r[k] for r in recs] for k in recs[0]}
    cols.update({k: [v] * len(recs) for k, v in {**NOTEBOOK, **budget}.items()})
    cols["W"] = [np.zeros((5, 20))] * len(recs)
    return weights_table(**cols)


def test_claim_rule_undecided_and_failed_criteria():
    checks = [Check("a", True, ""), Check("b", False, ""), Check("c", False, "")]
    # nothing fails that can be decided: inconclusive, and the reason names what cannot tell
    v = _claim("TMS-basic", checks, ["a"], "", undecided={"b": "too short", "c": "too few seeds"})
    assert v.verdict == "inconclusive" and "cannot tell: b (too short)" in v.reason
    assert v.details["undecided"] == ("b", "c")
    # a decided failure outweighs the undecided one
    v = _claim("TMS-basic", checks, ["a"], "", undecided={"b": "too short"})
    assert v.verdict == "partly" and v.reason.startswith("fails: c")
    # every decided central criterion fails but one central cannot tell: partly, not disagrees
    v = _claim("TMS-basic", checks, ["b", "c"], "", undecided={"b": "too short"})
    assert v.verdict == "partly"
    assert _claim("TMS-basic", checks, ["b", "c"], "").verdict == "disagrees"
    assert _claim("TMS-basic", checks[:1], ["a"], "").verdict == "agrees"


def test_check_basic_agrees_with_the_replication_at_the_notebook_budget():
    near = {e: c + (1 if e < 0.01 else 0) for e, c in REPLICATION_BASIC_COUNTS.items()}  # +1 at the sparse end
    v = check_basic(basic_table(near))
    assert v.verdict == "agrees", v.checks
    assert not v.details["undecided"]


def test_check_basic_fails_when_far_from_the_replication():
    far = {e: c + (3 if e < 0.01 else 0) for e, c in REPLICATION_BASIC_COUNTS.items()}
    v = check_basic(basic_table(far))
    assert v.verdict == "partly" and "replication" in v.reason
    flat = {e: 5 for e in REPLICATION_BASIC_COUNTS}
    v = check_basic(basic_table(flat, linear=9))  # no rise and a linear model in superposition: the core fails
    assert v.verdict == "disagrees"


@pytest.mark.parametrize("change", [dict(budget=dict(steps=5_000)), dict(budget=dict(batch_size=256)),
                                    dict(seeds=2), dict(levels=3)])
def test_check_basic_cannot_tell_off_the_replications_budget(change):
    counts = dict(REPLICATION_BASIC_COUNTS)
    if "levels" in change:
        counts = {e: counts[e] for e in (1.0, 0.03, 0.001)}  # the smoke scale's three densities
    far = {e: c + 4 * (e < 0.01) for e, c in counts.items()}
    v = check_basic(basic_table(far, seeds=change.get("seeds", 3), **change.get("budget", {})))
    assert v.verdict == "inconclusive", v.reason
    assert "cannot tell: ReLU: mean count within 2" in v.reason


def pairs_W(m: int, n: int, kind: str) -> np.ndarray:
    """W (m, n) with every hidden direction holding: one feature (``dense``, D_i = 1), an antipodal pair
    (``pairs``, D_i = 1/2) or, two directions at a time, a pentagon (``pentagons``, D_i = 2/5); others zero."""
    W = np.zeros((m, n))
    if kind == "dense":
        W[:, :m] = np.eye(m)
    elif kind == "pairs":
        for d in range(m):
            W[d, 2 * d], W[d, 2 * d + 1] = 1.0, -1.0
    else:
        a = 2 * np.pi * np.arange(5) / 5
        for p in range(m // 2):
            W[2 * p, 5 * p:5 * p + 5], W[2 * p + 1, 5 * p:5 * p + 5] = np.cos(a), np.sin(a)
    return W


def dims_table(kinds: list[str], seeds: int = 2, **budget) -> pd.DataFrame:
    eps = list(np.geomspace(1, 0.05, len(kinds)))
    recs = [dict(eps=e, seed=s, W=pairs_W(20, 200, k)) for s in range(seeds) for e, k in zip(eps, kinds)]
    cols = {k: [r[k] for r in recs] for k in recs[0]}
    cols.update({k: [v] * len(recs) for k, v in {**NOTEBOOK, **budget}.items()})
    return weights_table(**cols)


def test_check_dims_plateau_and_lines():
    v = check_dims(dims_table(["dense", "pairs", "pairs", "pairs", "pentagons", "pentagons"]))
    assert v.verdict == "agrees", v.checks
    assert v.details["per_seed"][0]["levels_half"] == 3
    assert {"1/2", "2/5"} <= set(v.details["per_seed"][0]["lines"])


def test_check_dims_without_plateau_fails_at_full_budget_and_cannot_tell_when_short():
    kinds = ["dense", "pairs", "pentagons", "pentagons", "pentagons", "pentagons"]  # one level at 1/2 only
    v = check_dims(dims_table(kinds))
    assert v.verdict == "partly" and ">= 3 levels with D* within 0.03 of 1/2" in v.reason
    v = check_dims(dims_table(kinds, steps=3_000, batch_size=256))
    assert v.verdict == "inconclusive" and "8% of the samples" in v.reason
    # a short run that shows the plateau still agrees: the budget only excuses a failure
    assert check_dims(dims_table(["dense", "pairs", "pairs", "pairs", "pentagons"], steps=3_000)).verdict == "agrees"


def capacity_table(top: bool) -> pd.DataFrame:
    """Optimal quadratic models at K = 10 and, at K = 1.5, the top D features (``top``) or features 0, 1, 2, 4 at
    C = 1 (a local minimum: all-or-nothing, but the wrong features), each with its optimal bias."""
    v_imp = 0.8 ** np.arange(8)
    recs = []
    for K in (1.5, 10.0):
        if K < 3:
            keep = [0, 1, 2, 3] if top else [0, 1, 2, 4]
            W = np.zeros((4, 8))
            W[np.arange(4), keep] = 1.0
        else:
            W = quadratic_optimum(torch.as_tensor(v_imp), 4, K, restarts=2, steps=200)[0].numpy()
        b = float((v_imp - np.diag(W.T @ W)).sum())
        recs.append(dict(kurtosis=K, seed=0, final_loss=0.0, W=W, b=np.array(b), importance=v_imp))
    return weights_table(**{k: [r[k] for r in recs] for k in recs[0]})


def test_check_capacity_cannot_tell_when_every_restart_is_in_a_local_minimum():
    assert check_capacity(capacity_table(top=True)).verdict == "agrees"
    v = check_capacity(capacity_table(top=False))
    assert v.verdict == "inconclusive", v.reason
    assert "no restart left the local minimum at K=1.5" in v.reason and "0/1 restarts reach it" in v.reason


def test_notebook_budget_and_init_of_the_tms_presets():
    assert notebook_init_std(200, 20, 20) == pytest.approx(math.sqrt(2 / 4400), rel=1e-5)
    assert notebook_init_std(200, 20, 20) == pytest.approx(0.0213, abs=1e-4)
    for name, (n, m, levels) in {"TMS-intro": (5, 2, 10), "TMS-basic": (20, 5, 7), "TMS-dim": (200, 20, 20)}.items():
        sweep = preset(name, "quick", seeds=3)
        o = sweep.base.optim
        assert (o.optimizer, o.lr, o.batch_size, o.steps, o.schedule) == ("adamw", 1e-3, 1024, 10_000, "constant")
        if "init_std" in FIELDS:
            assert sweep.base.tms.init_std == pytest.approx(notebook_init_std(n, m, levels))
    table = pd.DataFrame([dict(NOTEBOOK)])
    assert at_notebook_budget(table) and not at_notebook_budget(table.assign(steps=5_000))
    assert len(TMS_BASIC_EPS) == 7 and set(TMS_BASIC_EPS) == set(REPLICATION_BASIC_COUNTS)


def test_dictionary_source_keeps_its_own_budget_and_init():
    """SAE-TMS reads TMS-basic but stays on the source it was calibrated on: batch 1024, 3,000 steps, per-matrix
    init at quick scale."""
    from toymodels.reproduce.dictionary_learning.judges import source_sweep

    (sw,) = source_sweep("SAE-TMS", "quick")
    assert (sw.base.optim.batch_size, sw.base.optim.steps, sw.base.tms.tms_variant) == (1024, 3000, "relu")
    assert getattr(sw.base.model, "init_std", None) is None
