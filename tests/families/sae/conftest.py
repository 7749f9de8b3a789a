"""Shared by the SAE family's tests: one small trained sweep of TopK SAEs (k = 1 and 3), trained once per module
that asks for it (one intra-op thread, as every family test: tests/families/conftest.py)."""

import pytest
from helpers import sae_config

from toymodels.config import SweepConfig
from toymodels.running.sweep import run_sweep


@pytest.fixture(scope="module")
def sae_results(tmp_path_factory):
    sweep = SweepConfig(name="sae", base=sae_config(sae_arch="topk", l1=0.0), grid={"sae_k": [1, 3]})
    return run_sweep(sweep, tmp_path_factory.mktemp("sae") / "run", progress=False)
