"""The GPU path (`--device cuda`): the engine's guarantees hold there too, and every family trains, evaluates and
saves. Skipped where torch sees no CUDA device (the CI machine); on a GPU machine run `python -m pytest -q
tests/test_cuda.py` (about a minute).

On CUDA the batches come from the counter-based group sampler (config field ``sampler``), the same numbers as a CPU
run with ``sampler=counter``; the products round differently, so runs are compared at a float tolerance.
"""

import pytest
import torch
from helpers import SMALL_EM, assert_same_instance
from typer.testing import CliRunner

from toymodels.results import store
from toymodels.cli import app
from toymodels.engine.train import train_group

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

BASE = SMALL_EM.replace(device="cuda")


@pytest.mark.parametrize("extra", [{}, {"task": "reprojector", "nonlinearity": "gelu", "optimizer": "adamw",
                                        "l1": 1e-3}])
def test_batched_equals_separate_on_cuda(extra):
    cfgs = [BASE.replace(lr=0.003, seed=0, **extra),
            BASE.replace(lr=0.03, bias_offset=-1.0, bias_decay=0.03, seed=1, **extra),
            BASE.replace(lr=0.01, seed=2, eps=1 / 4, **extra)]
    together = train_group(cfgs)
    assert together.final["W1"].device.type == "cpu"  # results come back to the CPU
    for i, cfg in enumerate(cfgs):
        assert_same_instance(together, train_group([cfg]), i, 0)


def test_divergence_is_isolated_on_cuda():
    sgd = BASE.replace(optimizer="sgd")
    good = [sgd.replace(lr=0.01), sgd.replace(lr=0.02, seed=1)]
    mixed = train_group([good[0], sgd.replace(lr=1e3, seed=2), good[1]])
    alone = train_group(good)
    assert mixed.status == ["ok", "diverged", "ok"]
    assert all(bool(torch.isfinite(t[1]).all()) for t in mixed.final.values())
    for i, j in ((0, 0), (2, 1)):
        assert_same_instance(mixed, alone, i, j)


def test_resume_on_cuda_continues_the_run():
    cfgs = [BASE, BASE.replace(lr=0.01, seed=1, bias_decay=0.03)]
    full = train_group(cfgs)
    states = []
    train_group(cfgs, on_state=states.append, state_every_s=-1)
    resumed = train_group(cfgs, resume=states[100])
    assert_same_instance(full, resumed, 0, 0)
    assert_same_instance(full, resumed, 1, 1)


@pytest.mark.parametrize("name", ["LR1", "TMS-intro", "PC-kurtosis"])
def test_cli_run_on_cuda_saves_a_loadable_folder(name, tmp_path):
    out = tmp_path / name
    res = CliRunner().invoke(app, ["run", name, "--scale", "smoke", "--device", "cuda", "--out", str(out),
                                   "--no-progress"])
    assert res.exit_code == 0, res.output
    loaded = store.load(out)
    inst = loaded.instances
    assert (inst["device"] == "cuda").all() and (inst["status"] == "ok").all()
    assert inst["final_loss"].notna().all()
    assert (out / "report.html").exists()


def test_a_cuda_run_draws_the_batches_of_a_cpu_counter_run():
    cfgs = [BASE.replace(steps=32, seed=s) for s in range(2)]
    gpu = train_group(cfgs)  # sampler auto: counter on CUDA
    cpu = train_group([c.replace(device="cpu", sampler="counter") for c in cfgs])
    for i in range(2):
        assert_same_instance(gpu, cpu, i, i, rtol=1e-3, atol=1e-5)


def test_no_host_sync_inside_the_training_step():
    cfgs = [BASE.replace(steps=128), BASE.replace(steps=128, seed=1, lr=0.01, bias_decay=0.03)]
    seen = []

    def should_stop() -> bool:  # called after every step: steps 70-109 run with synchronisation forbidden
        seen.append(len(seen))
        torch.cuda.set_sync_debug_mode("error" if 70 <= len(seen) < 110 else "default")
        return False

    try:
        res = train_group(cfgs, should_stop=should_stop)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert res.status == ["ok", "ok"] and len(seen) == 128


@pytest.mark.parametrize("dtype", ["tf32", "bfloat16"])
def test_reduced_precision_matmuls_train_on_cuda(dtype):
    cfgs = [BASE.replace(seed=s) for s in range(2)]
    fast = train_group([c.replace(dtype=dtype) for c in cfgs])
    full = train_group(cfgs)
    assert fast.status == ["ok", "ok"] and all(v.dtype == torch.float32 for v in fast.final.values())
    torch.testing.assert_close(fast.losses[:, -4:], full.losses[:, -4:], rtol=0.05, atol=1e-3)
