"""How many CPU threads a training group uses: what its size needs, no more than the cores this process may use,
and fewer while other processes keep those cores busy, re-checked as it trains.

Why: torch's OpenMP threads spin while they wait, so two 2-thread runs on a 2-core machine slow each other down more
than tenfold (measured: 11.7x the solo time), where one thread each costs under 2x. The thread count never changes
a result (every matmul and reduction gives the same bits at 1 and 2 threads: tests/engine/test_threads.py), so it
may follow the load. Choices, first that applies:

1. the config field ``threads`` (``--threads N``): exactly N, always;
2. ``OMP_NUM_THREADS`` in the environment: torch's count from it, always;
3. one thread for a group too small to split (``SINGLE_THREAD_FLOPS``);
4. otherwise the usable cores (CPU affinity, the cgroup's CPU quota, ``SLURM_CPUS_PER_TASK``) minus those other
   processes keep busy (at the start: the threads running right now, ``/proc/loadavg``; then every ``RECHECK_S``
   seconds: ``/proc/stat`` over the cores of this process's affinity, less this process's own CPU time), at least
   one.

Example:
    >>> policy = ThreadPolicy(flops=1e6, requested=0)
    >>> policy.target()
    1
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Iterator

import torch

#: Below this many FLOPs per group step, one thread beats two: the matmuls are too small to split.
SINGLE_THREAD_FLOPS = 2e7
#: how often a running group re-reads the machine's load
RECHECK_S = 2.0


def cgroup_cpus(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """The CPU quota of this process's cgroup in cores (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), None if none."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


def usable_cpus() -> int:
    """Cores this process may use: its CPU affinity, capped by the cgroup quota and ``SLURM_CPUS_PER_TASK``."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = cgroup_cpus()
    if quota is not None:
        cores = min(cores, max(1, int(quota)))
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if slurm.isdigit() and int(slurm) > 0:
        cores = min(cores, int(slurm))
    return max(1, cores)


def own_running_threads() -> int:
    """This process's threads that are running now (state R in ``/proc/self/task/*/stat``), at least this one."""
    running = 0
    for stat in Path("/proc/self/task").glob("*/stat"):
        try:
            running += stat.read_text().rsplit(")", 1)[1].split()[0] == "R"
        except (OSError, IndexError):
            continue
    return max(1, running)


class BusyMeter:
    """Cores kept busy by other processes between two readings: the busy time of this process's cores
    (``/proc/stat``) less this process's own CPU time, over the wall time between the readings. None where
    ``/proc/stat`` cannot be read (not Linux)."""

    def __init__(self) -> None:
        cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
        self.names = {f"cpu{i}" for i in cpus}
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.last = self._read()

    def _read(self) -> tuple[float, float, float] | None:
        try:
            lines = Path("/proc/stat").read_text().splitlines()
        except OSError:
            return None
        busy = 0
        for line in lines:
            name, *values = line.split()
            if name in self.names:
                ticks = [int(v) for v in values]
                busy += sum(ticks) - ticks[3] - (ticks[4] if len(ticks) > 4 else 0)  # all but idle and iowait
        own = os.times()
        return time.monotonic(), busy / self.tick, own.user + own.system

    def others(self) -> float | None:
        """Cores other processes kept busy since the last call (or since this meter was made)."""
        now = self._read()
        if now is None or self.last is None:
            return None
        (t0, busy0, own0), (t1, busy1, own1) = self.last, now
        self.last = now
        if t1 - t0 <= 0:
            return None
        return max(0.0, ((busy1 - busy0) - (own1 - own0)) / (t1 - t0))


class ThreadPolicy:
    """The thread count of one group (the rules in the module docstring); ``apply()`` sets it, ``adjust()`` (every
    step: a clock read) re-checks the load every ``RECHECK_S`` seconds, ``restore()`` gives back the previous."""

    def __init__(self, flops: float, requested: int = 0, device: torch.device | None = None):
        self.previous = torch.get_num_threads()
        self.on_cpu = device is None or device.type == "cpu"
        if requested > 0:
            self.fixed: int | None = requested
        elif os.environ.get("OMP_NUM_THREADS"):
            self.fixed = self.previous  # the user's choice through the environment
        else:
            self.fixed = None
        self.usable = usable_cpus()  # read once: the affinity and quota do not change during a group
        self.need = 1 if flops < SINGLE_THREAD_FLOPS else self.usable
        self.meter = BusyMeter() if self.fixed is None and self.need > 1 and self.on_cpu else None
        self.next_check = time.monotonic() + RECHECK_S

    def target(self, others: float | None = None) -> int:
        """The thread count for ``others`` cores kept busy by other processes (None: not known)."""
        if self.fixed is not None:
            return self.fixed
        free = self.need if others is None else self.usable - round(others)
        return max(1, min(self.need, free))

    def apply(self) -> None:
        if self.on_cpu:
            torch.set_num_threads(self.target(self._others_now()))

    def _others_now(self) -> float | None:
        """Other processes' busy cores at the start, before the meter has an interval: the threads running right now
        (``/proc/loadavg``'s fourth field) less this process's own (its OpenMP threads still spin for a while after
        a parallel operation: counted as others, they made a group start on one thread on an idle machine)."""
        if self.meter is None:
            return None
        try:
            running = int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])
        except (OSError, ValueError, IndexError):
            return None
        return float(max(0, running - own_running_threads()))

    def adjust(self) -> None:
        if self.meter is None or time.monotonic() < self.next_check:
            return
        self.next_check = time.monotonic() + RECHECK_S
        threads = self.target(self.meter.others())
        if threads != torch.get_num_threads():
            torch.set_num_threads(threads)

    def restore(self) -> None:
        if self.on_cpu and torch.get_num_threads() != self.previous:
            torch.set_num_threads(self.previous)


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run a LAPACK call (SVD, eigh) on one thread. MKL's multithreaded small decompositions gain nothing at these
    sizes and collapse on a busy machine (a 512 x 64 SVD: 6.8 ms on one thread, 887 ms on two with other work
    running), and their last bits depend on the thread count (2048 x 256 differs between 1 and 2 threads): on one
    thread an embedder is the same on every machine.

    >>> with one_thread():
    ...     torch.get_num_threads()
    1
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def following_the_load(flops: float, requested: int = 0, device: torch.device | None = None
                       ) -> Iterator[ThreadPolicy]:
    """Run a block with the thread count of :class:`ThreadPolicy` (call its ``adjust()`` in loops); torch's previous
    count afterwards.

    >>> with following_the_load(1e6) as policy:
    ...     torch.get_num_threads()
    1
    """
    policy = ThreadPolicy(flops, requested, device)
    policy.apply()
    try:
        yield policy
    finally:
        policy.restore()
