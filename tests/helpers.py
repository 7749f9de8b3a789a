"""Builders and checks shared by the tests (one place, so test modules never import each other)."""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from toymodels.engine.data import DATA_STREAM, FeatureSampler, feature_probs, generator
from toymodels.results import store
from toymodels.cli import resolve_sweep
from toymodels.config import ExperimentConfig, SweepConfig
from toymodels.running.sweep import run_sweep
from toymodels.engine.train import train_group

def need_extra(module: str, extra: str):
    """Import an optional dependency, or skip the test with a reason naming the extra that installs it."""
    return pytest.importorskip(module, reason=f"needs the '{extra}' extra: pip install -e '.[{extra}]'")


#: a small EM instance that trains in well under a second
SMALL_EM = ExperimentConfig.from_flat({"N": 32, "m": 8, "k": 48, "batch_size": 32, "steps": 256, "eps": 1 / 16})


def assert_same_instance(a, b, i: int, j: int, rtol: float = 1e-4, atol: float = 1e-6) -> None:
    """Instance ``i`` of GroupResult ``a`` and instance ``j`` of ``b`` have the same losses and final tensors."""
    torch.testing.assert_close(a.losses[i], b.losses[j], rtol=rtol, atol=atol, equal_nan=True)
    for name in a.final:
        torch.testing.assert_close(a.final[name][i], b.final[name][j], rtol=rtol, atol=atol)


def assert_group_equals_alone(cfgs, rtol: float = 1e-4, loss_atol: float = 1e-7, atol: float = 1e-6) -> None:
    """Each instance trained inside the group ends as it does trained alone (losses and every final tensor)."""
    together = train_group(cfgs)
    for i, cfg in enumerate(cfgs):
        alone = train_group([cfg])
        torch.testing.assert_close(together.losses[i], alone.losses[0], rtol=rtol, atol=loss_atol, equal_nan=True)
        for name in together.final:
            torch.testing.assert_close(together.final[name][i], alone.final[name][0], rtol=rtol, atol=atol)


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


def zero_a_tensor(path: Path, suffix: str = "W1") -> None:
    """Zero the bytes of one tensor (the first whose name ends in ``suffix``) of a safetensors file in place: the same
    keys, shapes and size, other numbers; only DONE's checksum can tell."""
    import json

    data = bytearray(path.read_bytes())
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + n])
    key = next(k for k in sorted(header) if k.endswith(suffix))
    start, end = (8 + n + offset for offset in header[key]["data_offsets"])
    data[start:end] = bytes(end - start)
    path.write_bytes(bytes(data))


# ---- figures, report and dashboard ------------------------------------------------------------------------------
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def legend_texts(fig) -> list[str]:
    """Every legend entry of a matplotlib figure (all axes)."""
    return [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]


def as_model(results, model: str):
    """The same results presented as another model family's (only the sweep's ``model`` field changes)."""
    sweep = results.sweep
    return dataclasses.replace(results, sweep=sweep.model_copy(update={"base": sweep.base.replace(model=model)}))


def two_swept_fields(results):
    """The 'diverge' sweep relabelled as lr x bias_offset: seed 1 of each lr becomes bias_offset 0.5 (one seed per
    setting, six settings; lr=1000 still diverged)."""
    inst = results.instances.copy()
    inst["bias_offset"] = np.where(inst["seed"] == 1, 0.5, 0.0)
    inst["seed"] = 0
    sweep = results.sweep.model_copy(update={"grid": {"lr": [0.01, 0.1, 1000.0], "bias_offset": [0.0, 0.5]},
                                             "seeds": 1})
    return dataclasses.replace(results, instances=inst, sweep=sweep)


def hand_built_neurons() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(W1, b1, E) of one instance with N = 3 features, E = I, five neurons of known kinds (float64):
    n0 poly (0.2 on every feature, bias 0.1: activation 0.3 everywhere); n1 mono on feature 2 (activation 0.5);
    n2 mono on feature 0 (activation 1.5); n3 dead; n4 mono on feature 0 again (activation 0.5, a duplicate)."""
    W1 = torch.tensor([[0.2, 0.2, 0.2], [0, 0, 1], [2, 0, 0], [-1, -1, -1], [1, 0, 0]], dtype=torch.float64)
    b1 = torch.tensor([0.1, -0.5, -0.5, -0.1, -0.5], dtype=torch.float64)
    return W1, b1, torch.eye(3, dtype=torch.float64)


# ---- reproduction: stand-ins for results and hand-built weight tables ------------------------------------------
def fake_results(field: str, rows: list[tuple[float, float, float, float]], seeds: tuple[int, ...] = (0, 1),
                 **fixed):
    """A stand-in for an EM ``Results`` (only ``instances``): one instance per (seed, row), a row being
    (value of ``field``, mono/feature, final loss, mean bias); ``fixed`` adds constant columns."""
    from types import SimpleNamespace

    df = pd.DataFrame([dict(**{field: v}, seed=s, status="ok", mono_per_feature=m, final_loss=lo, mean_bias=b,
                            mono_per_neuron=m / 2, features_covered=m, dead_neurons=0.0, positive_bias_neurons=0.0,
                            false_mono=0.0, **fixed)
                       for s in seeds for v, m, lo, b in rows])
    return SimpleNamespace(instances=df)


def polygon(n: int, m: int = 2, scale: float = 1.0):
    """W (m, n) whose first two rows place the n columns on a regular n-gon of radius ``scale`` (numpy)."""
    import numpy as np

    a = 2 * np.pi * np.arange(n) / n
    W = np.zeros((m, n))
    W[0], W[1] = np.cos(a) * scale, np.sin(a) * scale
    return W


def weights_table(**cols) -> pd.DataFrame:
    """A table of trained superposition instances built by hand: the given columns, with ``W``, ``b`` and
    ``importance`` as object columns of arrays, plus ``run_id`` and status ``ok``."""
    n = len(next(iter(cols.values())))
    df = pd.DataFrame({k: v for k, v in cols.items() if k not in ("W", "b", "importance")})
    for k in ("W", "b", "importance"):
        if k in cols:
            df[k] = pd.Series(list(cols[k]), dtype=object)
    df["run_id"] = [f"r{i:04d}" for i in range(n)]
    df["status"] = "ok"
    return df


def png_size(path) -> tuple[int, int]:
    """(width, height) in pixels of a PNG file, from its header."""
    data = Path(path).read_bytes()
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


# ---- dictionary learning (the SAE family) ------------------------------------------------------------------------
#: a small SAE on a synthetic dictionary of 32 features in 8 dims that trains in a fraction of a second
SMALL_SAE = ExperimentConfig.from_flat({
    "model": "sae", "N": 32, "m": 8, "eps": 1 / 16, "sae_arch": "relu_l1", "sae_width": 32, "l1": 0.01,
    "optimizer": "adam", "schedule": "constant", "lr": 3e-3, "batch_size": 64, "steps": 64,
})


def sae_config(**values) -> ExperimentConfig:
    """SMALL_SAE with some flat fields changed."""
    return SMALL_SAE.replace(**values)


def trained_source(folder: Path, model: str = "em", seeds: int = 2) -> Path:
    """A tiny trained toy model to read activations from (em: N=32, m=8, k=48; tms: N=12, m=4), in ``folder``."""
    base = SMALL_EM.replace(steps=64) if model == "em" else ExperimentConfig.from_flat(
        {"model": "tms", "N": 12, "m": 4, "k": 1, "optimizer": "adamw", "lr": 1e-2, "schedule": "constant",
         "batch_size": 64, "steps": 64, "eps": 0.1})
    run_sweep(SweepConfig(name=f"src-{model}", base=base, seeds=seeds), folder, progress=False)
    return folder


class FeatureMatrixFamily:
    """What the model families defined inside tests share: independent uniform features of probability eps, one
    (m, N) matrix ``W`` per instance, and its squared norm as the family's metric. A test's family adds ``name``,
    ``presentation``, ``check``, ``build``, ``from_tensors`` and ``figures``."""

    tasks = ("decoder",)

    def sampler(self, cfg, device):
        probs = feature_probs(cfg.data.N, cfg.data.eps, "uniform")
        return FeatureSampler(probs, cfg.optim.batch_size, generator(cfg.run.seed, DATA_STREAM, device), device)

    def input_size(self, cfg) -> int:
        return cfg.data.N

    def flops_per_step(self, cfg) -> float:
        return 12.0 * cfg.optim.batch_size * cfg.data.N * cfg.model.m

    def instance_bytes(self, cfg) -> int:
        return 16 * cfg.optim.batch_size * (cfg.data.N + cfg.model.m)

    def evaluate(self, cfgs, tensors):
        return {"weight_norm": tensors["W"].double().pow(2).sum(dim=(1, 2))}
