"""The group's thread count: its rules, the cgroup quota, and the fact that makes following the load safe: the
thread count never changes a result."""

from __future__ import annotations

import pytest
import torch
from helpers import SMALL_EM, sae_config

from toymodels.config import ConfigError, ExperimentConfig
from toymodels.engine import threads as th
from toymodels.engine.data import make_embedder
from toymodels.engine.train import train_group
from toymodels.families import get_family


@pytest.mark.parametrize("cfg", [
    SMALL_EM.replace(N=128, m=16, k=256, batch_size=256, steps=48),  # above SINGLE_THREAD_FLOPS: really threaded
    ExperimentConfig.from_flat({"model": "tms", "N": 200, "m": 20, "k": 1, "batch_size": 1024, "steps": 48,
                                "optimizer": "adamw", "schedule": "constant"}),
    sae_config(N=128, m=32, sae_width=256, batch_size=512, steps=48),
], ids=["em", "tms", "sae"])
def test_the_thread_count_never_changes_a_result(cfg):
    """Training and evaluation give the same bits at 1 and 2 threads, so the count may follow the machine's load."""
    cfgs = [cfg.replace(seed=s, lr=lr) for s, lr in [(0, 0.003), (1, 0.01)]]
    family = get_family(cfg.model.model)
    assert sum(family.flops_per_step(c) for c in cfgs) > th.SINGLE_THREAD_FLOPS
    one = train_group([c.replace(threads=1) for c in cfgs])
    two = train_group([c.replace(threads=2) for c in cfgs])
    assert torch.equal(one.losses, two.losses)
    for name in one.final:
        assert torch.equal(one.final[name], two.final[name]), name
    metrics = {}
    for n in (1, 2):  # evaluation too (the runner's threads follow the load there as well)
        with th.following_the_load(float("inf"), requested=n):
            metrics[n] = family.evaluate(cfgs, one.final)
    for name in metrics[1]:
        assert torch.equal(metrics[1][name], metrics[2][name]), name


def test_training_gives_back_the_thread_count_it_found():
    before = torch.get_num_threads()
    train_group([SMALL_EM.replace(steps=8, threads=1)])
    assert torch.get_num_threads() == before


def test_the_rules_in_their_order(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(th, "usable_cpus", lambda: 4)
    big = 10 * th.SINGLE_THREAD_FLOPS
    assert th.ThreadPolicy(big, requested=3).target(others=3.9) == 3  # the field wins
    assert th.ThreadPolicy(th.SINGLE_THREAD_FLOPS / 2).target(others=0.0) == 1  # too small to split
    policy = th.ThreadPolicy(big)
    assert policy.target(others=None) == 4  # load not known: what the group needs
    assert [policy.target(others=o) for o in (0.2, 1.1, 2.6, 3.9, 7.0)] == [4, 3, 1, 1, 1]
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert th.ThreadPolicy(big).target(others=0.0) == torch.get_num_threads()  # the user's environment


def test_the_cgroup_quota_caps_the_usable_cores(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert th.cgroup_cpus(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert th.cgroup_cpus(tmp_path) is None
    (tmp_path / "cpu.max").unlink()
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("200000")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000")
    assert th.cgroup_cpus(tmp_path) == 2.0
    assert th.cgroup_cpus(tmp_path / "nowhere") is None


def test_slurm_s_cpus_cap_the_usable_cores(monkeypatch):
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    assert th.usable_cpus() == 1


def test_the_busy_meter_reads_other_processes_load():
    meter = th.BusyMeter()
    x = torch.randn(256, 256)
    for _ in range(50):
        x = torch.tanh(x @ x) / 16  # this process's own work does not count as other processes' load
    others = meter.others()
    assert others is None or 0 <= others <= len(meter.names)


def test_threads_is_a_config_field_that_never_splits_a_group():
    assert SMALL_EM.replace(threads=2).group_key() == SMALL_EM.group_key()
    with pytest.raises(ConfigError, match="field 'threads'"):
        SMALL_EM.replace(threads=-1)


def test_an_embedder_is_the_same_whatever_the_thread_count():
    # MKL's two-thread SVD gives other last bits at this size: make_embedder runs it on one thread (one_thread)
    before = torch.get_num_threads()
    made = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            made.append(make_embedder(2048, 256, torch.Generator().manual_seed(3)))
            assert torch.get_num_threads() == n  # restored
    finally:
        torch.set_num_threads(before)
    assert torch.equal(made[0], made[1])
