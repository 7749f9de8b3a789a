"""The superposition presets at smoke scale through the sweep runner, and the reproduction report built on them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from toymodels import plots_superposition as ps
from toymodels.presets import PRESETS, preset, superposition_presets
from toymodels.reproduce_superposition import (
    MIN_SEEDS,
    check_intro,
    fraction_lines,
    reproduce_superposition,
)
from toymodels.store import load
from toymodels.sweep import run_sweep

NAMES = ["TMS-intro", "TMS-basic", "TMS-dim", "TMS-phase", "PC-kurtosis"]
METRICS = {
    "tms": {"represented_features", "dims_per_feature", "mean_capacity", "sum_capacity", "superposition",
            "mean_bias", "min_bias"},
    "quadratic": {"sum_capacity", "mean_capacity", "monosemantic_features", "fractional_features",
                  "ignored_features", "expected_loss", "optimal_loss"},
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every superposition preset at smoke scale, trained once with the seeds the report uses (1 thread)."""
    root = tmp_path_factory.mktemp("superposition")
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for name in NAMES:
            sweep = preset(name, scale="smoke", seeds=MIN_SEEDS.get(name, 1))
            run_sweep(sweep, root / "runs" / sweep.name, progress=False, report=False)
    finally:
        torch.set_num_threads(old)
    return root


def test_presets_registered_with_paper_values():
    assert superposition_presets() == NAMES
    intro = preset("TMS-intro", "paper")
    assert (intro.base.data.N, intro.base.model.m, intro.base.data.importance_decay) == (5, 2, 0.9)
    assert intro.base.optim.optimizer == "adamw" and intro.base.optim.lr == 1e-3
    assert intro.base.optim.schedule == "constant" and intro.base.optim.batch_size == 1024
    assert intro.base.optim.steps == 10_000 and intro.base.optim.weight_decay == 0.01
    assert intro.grid["eps"][0] == 1.0 and intro.grid["eps"][-1] == pytest.approx(0.05)
    dim = preset("TMS-dim", "paper")
    assert (dim.base.data.N, dim.base.model.m, len(dim.grid["eps"])) == (200, 20, 20)
    np.testing.assert_allclose(dim.grid["eps"], 20.0 ** (-np.arange(20) / 19), rtol=1e-5)
    basic = preset("TMS-basic", "quick")
    assert basic.grid["tms_variant"] == ["relu", "linear"] and basic.base.data.importance_decay == 0.7
    phase = preset("TMS-phase", "quick")
    assert min(phase.grid["importance_ratio"]) == 0.1 and max(phase.grid["importance_ratio"]) == 10
    pc = preset("PC-kurtosis", "quick")
    assert (pc.base.model.model, pc.base.data.N, pc.base.model.m) == ("quadratic", 8, 4)
    assert min(pc.grid["kurtosis"]) < 3 < max(pc.grid["kurtosis"])
    assert all(PRESETS[n].notes for n in NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_each_preset_runs_at_smoke_scale(runs, name):
    sweep = preset(name, scale="smoke", seeds=MIN_SEEDS.get(name, 1))
    res = load(runs / "runs" / sweep.name)
    assert res.complete and (res.instances["status"] == "ok").all()
    family = PRESETS[name].family
    assert METRICS[family] <= set(res.instances.columns)
    assert np.isfinite(res.instances[sorted(METRICS[family])].to_numpy()).all()
    assert (res.instances["sum_capacity"] <= res.instances["m"] + 1e-6).all()
    assert {"loss", "sum_capacity"} <= set(res.metrics["name"])
    df = ps.final_weights(res)
    assert np.asarray(df["W"].iloc[0]).shape == (sweep.base.model.m, sweep.base.data.N)


def test_reproduce_writes_report_and_figures(runs):
    docs = runs / "docs"
    verdicts = reproduce_superposition(NAMES, scale="smoke", seeds=1, out_dir=runs / "runs", docs_dir=docs)
    assert [v["name"] for v in verdicts] == NAMES
    for v in verdicts:
        assert v["verdict"] in {"agrees", "partly", "disagrees", "inconclusive"}
        assert v["checks"] and all(isinstance(c["passed"], bool) for c in v["checks"])
        assert (docs / v["figure"]).read_bytes()[:4] == b"\x89PNG"
        assert v["seeds"] == MIN_SEEDS.get(v["name"], 1)
    text = (docs / "superposition.md").read_text()
    for name in NAMES:
        assert f"## {name}" in text
    assert "| PAPERS.md §4 row |" in text and "scale `smoke`" in text and "toymodels 0." in text


def test_check_intro_agrees_on_the_ideal_geometry():
    a = 2 * np.pi * np.arange(5) / 5
    pentagon = np.stack([np.cos(a), np.sin(a)])
    dense = np.c_[np.eye(2), np.zeros((2, 3))]
    df = pd.DataFrame({"eps": [1.0, 0.05], "seed": [0, 0], "final_loss": [0.1, 0.01], "status": ["ok", "ok"],
                       "run_id": ["r0", "r1"]})
    df["W"] = pd.Series([dense, pentagon], dtype=object)
    df["b"] = pd.Series([np.zeros(5), -0.05 * np.ones(5)], dtype=object)
    result = check_intro(df)
    assert result["verdict"] == "agrees", result["checks"]
    df.at[1, "W"] = dense  # the sparse model fails to use superposition
    assert check_intro(df)["verdict"] != "agrees"


def test_fraction_lines_rule():
    D = np.r_[np.full(12, 0.5), np.full(3, 0.51), np.full(12, 0.4), np.full(10, 0.41)]
    lines = fraction_lines(D)
    assert lines["1/2"] == {"near": 12, "ring": 3, "line": True}
    assert lines["2/5"]["line"] is False  # 12 near but 10 in the ring: a smear, not a line
    assert lines["3/4"]["near"] == 0
