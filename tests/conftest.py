"""Shared fixtures: one small trained sweep (with diverged instances) for the plot and report tests.

Trained once per session; the tests only read it (the report fixture writes figures/ and report.html into it once).
"""

from __future__ import annotations

import pytest

from toymodels.config import SweepConfig
from toymodels.config.presets import preset


@pytest.fixture(scope="session")
def diverging_results(tmp_path_factory):
    """LR1 at smoke scale (N=32, m=4, k=64) trained with SGD for 64 steps: lr 0.01 and 0.1 train, lr 1000 diverges
    within a few steps; two seeds per lr, so 6 instances in one group (a few seconds)."""
    from toymodels.running.sweep import run_sweep

    base = preset("LR1", scale="smoke").base.replace(optimizer="sgd", steps=64)
    sweep = SweepConfig(name="diverge", base=base, grid={"lr": [0.01, 0.1, 1000.0]}, seeds=2)
    out = tmp_path_factory.mktemp("runs") / "diverge"
    return run_sweep(sweep, out, progress=False)


@pytest.fixture(scope="session")
def oscillating_results(tmp_path_factory):
    """LR1 at smoke scale for 2048 steps of the paper's periodic lr with a checkpoint at every peak and trough
    (checkpoint_every 512: steps 511, 1023, 1535, 2047), lr 0.003 and 0.03, two seeds (a few seconds)."""
    from toymodels.running.sweep import run_sweep

    base = preset("LR1", scale="smoke").base.replace(steps=2048, checkpoint_every=512)
    sweep = SweepConfig(name="oscillating", base=base, grid={"lr": [0.003, 0.03]}, seeds=2)
    return run_sweep(sweep, tmp_path_factory.mktemp("runs") / "oscillating", progress=False)


@pytest.fixture(scope="session")
def reported(diverging_results):
    """``toymodels report DIR`` run once on that folder: (results, the command's stdout)."""
    from typer.testing import CliRunner

    from toymodels.cli import app

    res = CliRunner().invoke(app, ["report", str(diverging_results.folder)])
    assert res.exit_code == 0, res.output
    return diverging_results, res.output
