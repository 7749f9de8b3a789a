"""Sweeps: grouping, the results folder, resume after SIGKILL between groups."""

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

import toymodels as tm
from toymodels.config import ConfigError, ExperimentConfig, SweepConfig
from toymodels.running.plan import instance_records, plan
from toymodels.running.sweep import run_sweep

SMALL = ExperimentConfig.from_flat({"N": 16, "m": 4, "k": 8, "batch_size": 16, "steps": 64})


def test_plan_groups_by_shape_and_keeps_order():
    sweep = SweepConfig(base=SMALL, grid={"k": [8, 16], "lr": [0.01, 0.02]}, seeds=2)
    groups = plan(sweep)
    assert list(groups) == ["g000", "g001"]
    assert [i.cfg.model.k for i in groups["g000"]] == [8] * 4
    ids = [i.run_id for g in groups.values() for i in g]
    assert ids == sorted(ids) and len(set(ids)) == 8
    recs = instance_records(sweep)
    assert {"run_id", "group", "lr", "k", "seed", "eps", "N"} <= set(recs[0])


def test_results_folder_layout_and_columns(tmp_path):
    sweep = SweepConfig(name="t", base=SMALL, grid={"lr": [0.01, 0.03], "k": [8, 12]})
    res = run_sweep(sweep, tmp_path / "r", progress=False)
    folder = tmp_path / "r"
    for name in ["sweep.json", "instances.parquet", "metrics.parquet"]:
        assert (folder / name).stat().st_size > 0
    for gid in ["g000", "g001"]:
        for name in ["DONE", "checkpoints.safetensors", "instances.parquet", "metrics.parquet"]:
            assert (folder / "groups" / gid / name).exists()
        assert not (folder / "groups" / gid / "state.safetensors").exists()
    df = res.instances
    assert len(df) == 4 and list(df["run_id"]) == ["r0000", "r0001", "r0002", "r0003"]
    for col in ["run_id", "group", "lr", "k", "seed", "status", "final_loss", "mono_neurons", "mono_per_feature",
                "features_covered", "mean_bias", "dead_neurons"]:
        assert col in df.columns
    assert (df["status"] == "ok").all()
    m = res.metrics
    assert set(m.columns) == {"run_id", "step", "name", "value"}
    assert sorted(m[(m.run_id == "r0000") & (m.name == "loss")]["step"]) == list(range(0, 64, 16))
    assert sorted(m[(m.run_id == "r0000") & (m.name == "mono_neurons")]["step"]) == [0, 1, 3, 7, 15, 31, 63]
    p = res.params("r0003")
    assert p["W1"].shape == (12, 4) and p["E"].shape == (4, 16)
    # the top-level table equals what load() reads from the groups
    pd.testing.assert_frame_equal(pd.read_parquet(folder / "instances.parquet"), df)


def test_existing_folder_is_never_overwritten(tmp_path):
    sweep = SweepConfig(name="t", base=SMALL)
    run_sweep(sweep, tmp_path / "r", progress=False)
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "r").rglob("*")}
    with pytest.raises(ConfigError, match="pass resume=True to continue it or choose another out$"):
        run_sweep(sweep, tmp_path / "r", progress=False)  # a Python call: its arguments, not the CLI's flags
    other = SweepConfig(name="u", base=SMALL.replace(lr=0.5))
    with pytest.raises(ConfigError, match="different sweep"):
        run_sweep(other, tmp_path / "r", resume=True, progress=False)
    assert before == {p: p.stat().st_mtime_ns for p in (tmp_path / "r").rglob("*")}
    # resuming a finished sweep trains nothing and changes no group file
    run_sweep(sweep, tmp_path / "r", resume=True, progress=False)
    gfiles = [p for p in before if "groups" in p.parts]
    assert all(p.stat().st_mtime_ns == before[p] for p in gfiles)


def test_sigkill_between_groups_then_resume(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "toymodels.cli", "run", "LR1", "--scale", "smoke", "--sweep", "k=8,16,24",
           "--set", "steps=1500", "--out", str(out), "--no-progress", "--no-report"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    first_done = out / "groups" / "g000" / "DONE"
    deadline = time.monotonic() + 300
    while not first_done.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert first_done.exists(), proc.stderr.read().decode() if proc.poll() is not None else "no group finished"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "groups" / "g002" / "DONE").exists(), "the sweep finished before it could be killed"
    g0 = {p: p.stat().st_mtime_ns for p in (out / "groups" / "g000").iterdir()}
    partial = tm.load(out)
    assert not partial.complete and len(partial.instances) >= 3
    done = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert {p: p.stat().st_mtime_ns for p in (out / "groups" / "g000").iterdir()} == g0  # not re-run
    res = tm.load(out)
    assert res.complete and len(res.instances) == 9 and (res.instances["status"] == "ok").all()


def test_a_diverged_instance_is_recorded_and_carries_no_metric_values(tmp_path):
    # --sweep lr=0.001,0.007,0.03,1e6 of the issue: LAMB keeps lr=1e6 finite while its loss explodes
    sweep = SweepConfig(name="blowup", base=SMALL.replace(steps=128), grid={"lr": [0.01, 1e6]})
    res = run_sweep(sweep, tmp_path / "r", progress=False)
    inst = res.instances.set_index("lr")
    assert inst.loc[1e6, "status"] == "diverged" and inst.loc[0.01, "status"] == "ok"
    metric_cols = ["mono_per_feature", "features_covered", "mean_bias", "dead_neurons", "false_mono"]
    assert inst.loc[1e6, ["final_loss", *metric_cols]].isna().all()
    assert inst.loc[0.01, ["final_loss", *metric_cols]].notna().all()
    m = res.metrics
    bad = inst.loc[1e6, "run_id"]
    after = m[(m["run_id"] == bad) & (m["name"] != "loss") & (m["step"] >= inst.loc[1e6, "diverged_at"])]
    assert after.empty and not m[(m["run_id"] == bad) & (m["name"] == "loss")].empty
