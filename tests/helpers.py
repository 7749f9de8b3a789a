"""Builders and checks shared by the tests (one place, so test modules never import each other)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pandas as pd
import torch

from toymodels import store
from toymodels.cli import resolve_sweep
from toymodels.config import ExperimentConfig
from toymodels.sweep import run_sweep

#: a small EM instance that trains in well under a second
SMALL_EM = ExperimentConfig.from_flat({"N": 32, "m": 8, "k": 48, "batch_size": 32, "steps": 256, "eps": 1 / 16})


def assert_same_instance(a, b, i: int, j: int, rtol: float = 1e-4, atol: float = 1e-6) -> None:
    """Instance ``i`` of GroupResult ``a`` and instance ``j`` of ``b`` have the same losses and final tensors."""
    torch.testing.assert_close(a.losses[i], b.losses[j], rtol=rtol, atol=atol, equal_nan=True)
    for name in a.final:
        torch.testing.assert_close(a.final[name][i], b.final[name][j], rtol=rtol, atol=atol)


def toymodels_cmd(*args: str) -> list[str]:
    """The command line that runs the CLI in a fresh interpreter."""
    return [sys.executable, "-m", "toymodels.cli", *args]


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TOYMODELS_STATE_EVERY_S"}
    env["OMP_NUM_THREADS"] = "1"  # the test machine has 2 cores, shared
    return {**env, **extra}


def reference(args: list[str], out: Path) -> Path:
    """The sweep of CLI ``args`` run uninterrupted, in this process; returns its folder."""
    sweep = resolve_sweep(args[0], args[args.index("--scale") + 1],
                          [args[i + 1] for i, a in enumerate(args) if a == "--set"],
                          [args[i + 1] for i, a in enumerate(args) if a == "--sweep"], None, None)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # like the subprocesses (results do not depend on it at these sizes)
    try:
        run_sweep(sweep, out, progress=False)
    finally:
        torch.set_num_threads(threads)
    return out


NOT_DETERMINISTIC = {"train_seconds"}  # wall time


def assert_same_results(a: Path, b: Path) -> None:
    """Every table value (but wall times) and every checkpoint tensor of two results folders are exactly equal."""
    ra, rb = store.load(a), store.load(b)
    assert ra.complete and rb.complete
    assert list(ra.instances.columns) == list(rb.instances.columns)
    cols = [c for c in ra.instances.columns if c not in NOT_DETERMINISTIC]
    pd.testing.assert_frame_equal(ra.instances[cols], rb.instances[cols], check_exact=True)
    key = ["run_id", "name", "step"]
    pd.testing.assert_frame_equal(ra.metrics.sort_values(key, ignore_index=True),
                                  rb.metrics.sort_values(key, ignore_index=True), check_exact=True)
    gids = sorted(ra.instances["group"].unique())
    assert gids == sorted(rb.instances["group"].unique())
    for gid in gids:
        ta, tb = ra.checkpoint_tensors(gid), rb.checkpoint_tensors(gid)
        assert ta.keys() == tb.keys()
        for k in ta:
            assert torch.equal(ta[k], tb[k]), f"{gid} {k} differs"
