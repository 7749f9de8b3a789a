"""Fixtures of the hostile suite: the finished results folders its cases copy, and each case's sandbox."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import sae_config
from hostile.sandbox import Sandbox, one_thread

from toymodels.config import SweepConfig
from toymodels.config.presets import preset
from toymodels.running.sweep import run_sweep


@pytest.fixture(scope="session")
def finished(tmp_path_factory) -> Path:
    """LR1 at smoke scale, 8 steps: what `toymodels run LR1 --scale smoke --set steps=8` leaves."""
    out = tmp_path_factory.mktemp("hostile-src") / "em"
    smoke = preset("LR1", scale="smoke")
    with one_thread():
        run_sweep(SweepConfig(name=smoke.name, base=smoke.base.replace(steps=8), grid=smoke.grid), out,
                  progress=False)
    return out


@pytest.fixture(scope="session")
def finished_sae(tmp_path_factory) -> Path:
    """One trained ReLU SAE (16 steps), for export-sae."""
    out = tmp_path_factory.mktemp("hostile-src") / "sae"
    with one_thread():
        run_sweep(SweepConfig(name="sae", base=sae_config(sae_arch="relu_l1", steps=16)), out, progress=False)
    return out


@pytest.fixture
def sandbox(tmp_path, monkeypatch, finished, finished_sae) -> Sandbox:
    root = tmp_path / "sb"
    root.mkdir()
    monkeypatch.chdir(root)  # a default folder (runs/<name>, docs/) lands here too
    monkeypatch.delenv("TOYMODELS_STATE_EVERY_S", raising=False)
    monkeypatch.delenv("TOYMODELS_DEBUG", raising=False)
    return Sandbox(root, {"em": finished, "sae": finished_sae}, monkeypatch)




@pytest.fixture(autouse=True)
def refused_before_training(request, monkeypatch):
    """A hostile case is refused before any group trains (a module that trains on purpose sets TRAINS = True)."""
    if getattr(request.module, "TRAINS", False):
        return

    def trained(*args, **kwargs):
        raise AssertionError("a hostile case trained a group")
    monkeypatch.setattr("toymodels.running.launch.run_group", trained)
