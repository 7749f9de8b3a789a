"""Used as a library (``tm.run`` in a notebook), the package leaves the process as it found it: torch's thread count
and the SIGINT / SIGTERM handlers are restored after training, and glibc's allocator is not retuned (only the
``toymodels`` command, which owns its process, may do that)."""

from __future__ import annotations

import ctypes
import signal

import pytest
import torch

import toymodels as tm
from toymodels.config import ExperimentConfig, SweepConfig

SWEEP = SweepConfig(name="quiet", base=ExperimentConfig.from_flat(
    {"N": 12, "m": 4, "k": 6, "batch_size": 8, "steps": 32, "threads": 1}), grid={"lr": [0.01, 0.02]})


class RecordingLibc:
    """Stands in for ``ctypes.CDLL`` and records every allocator call made through it."""

    calls: list[str] = []

    def __init__(self, name: str, *args, **kwargs):
        self.name = name

    def __getattr__(self, attr: str):
        def call(*args):
            RecordingLibc.calls.append(f"{attr}{args}")
            return 1
        return call


def test_tm_run_restores_threads_and_signal_handlers(tmp_path):
    def custom(signum, frame):  # a handler the user installed, e.g. a notebook's own
        pass

    before_int, before_term = signal.signal(signal.SIGINT, custom), signal.getsignal(signal.SIGTERM)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2 if threads != 2 else 3)  # not what the sweep's threads=1 sets while training
        mine = torch.get_num_threads()
        res = tm.run(SWEEP, out=tmp_path / "out", progress=False, report=False)
        assert res.complete
        assert torch.get_num_threads() == mine
        assert signal.getsignal(signal.SIGINT) is custom and signal.getsignal(signal.SIGTERM) == before_term
    finally:
        signal.signal(signal.SIGINT, before_int)
        torch.set_num_threads(threads)


def test_tm_run_leaves_the_allocator_alone(tmp_path, monkeypatch):
    RecordingLibc.calls = []
    monkeypatch.setattr(ctypes, "CDLL", RecordingLibc)
    tm.run(SWEEP, out=tmp_path / "out", progress=False, report=False)
    assert RecordingLibc.calls == []



@pytest.mark.parametrize("flushing", [False, True])
def test_tm_run_leaves_denormal_flushing_as_it_found_it(tmp_path, flushing):
    from toymodels.engine.process import denormals_flushed

    torch.set_flush_denormal(flushing)
    try:
        tm.run(SWEEP, out=tmp_path / "out", progress=False, report=False)
        assert denormals_flushed() == flushing
    finally:
        torch.set_flush_denormal(False)
