"""Plan a sweep: expand it into instances, pack them into groups of equal tensor shapes (bounded in memory), and
estimate its cost. Deterministic, so a SLURM task re-plans the sweep from ``sweep.json`` and finds its group.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import torch

from toymodels.config import ConfigError, ExperimentConfig, SweepConfig
from toymodels.config.wording import spelled
from toymodels.families import get_family
from toymodels.families.base import family_hook

# Memory per group is bounded: many instances of a big model are split into several groups.
GROUP_MEMORY_BYTES = 2 * 2**30
MAX_GROUP_INSTANCES = 4096
FINAL_LOSS_LOGS = 8  # final_loss = mean of the last 8 logged losses (less noisy than one batch)


def flops_per_step(cfg: ExperimentConfig) -> float:
    """Matmul FLOPs of one training step of one instance (its family's estimate)."""
    return get_family(cfg.model.model).flops_per_step(cfg)


def instance_bytes(cfg: ExperimentConfig) -> int:
    """An upper bound of one instance's training memory (its family's estimate)."""
    return get_family(cfg.model.model).instance_bytes(cfg)


@dataclass(frozen=True)
class Instance:
    run_id: str
    group: str
    index_in_group: int
    cfg: ExperimentConfig


def plan(sweep: SweepConfig) -> dict[str, list[Instance]]:
    """Group id -> instances, deterministic: groups in order of first appearance, split to bound memory."""
    by_key: dict[tuple, list[tuple[int, ExperimentConfig]]] = {}
    for idx, cfg in enumerate(sweep.instances()):
        by_key.setdefault(cfg.group_key(), []).append((idx, cfg))
    groups: dict[str, list[Instance]] = {}
    for members in by_key.values():
        cap = max(1, min(MAX_GROUP_INSTANCES, GROUP_MEMORY_BYTES // instance_bytes(members[0][1])))
        n_chunks = math.ceil(len(members) / cap)
        size = math.ceil(len(members) / n_chunks)
        for c in range(n_chunks):
            gid = f"g{len(groups):03d}"
            chunk = members[c * size:(c + 1) * size]
            groups[gid] = [Instance(f"r{idx:04d}", gid, j, cfg) for j, (idx, cfg) in enumerate(chunk)]
    return groups


def input_fingerprints(cfgs: Iterable[ExperimentConfig]) -> dict[str, str]:
    """What these instances read from outside their sweep (an SAE's source model), each with its fingerprint: their
    families' ``input_fingerprints`` hook, asked once per distinct config."""
    found: dict[str, str] = {}
    for cfg in dict.fromkeys(cfgs):
        found.update(family_hook(get_family(cfg.model.model), "input_fingerprints")(cfg))
    return found


def input_change(recorded: dict[str, str] | None, cfgs: Iterable[ExperimentConfig]) -> str | None:
    """What changed, in one line, among the inputs ``recorded`` in ``sweep.json`` that these instances read (None
    when nothing did, or when the folder recorded none: a folder of an earlier version)."""
    if recorded is None:
        return None
    for name, now in input_fingerprints(cfgs).items():
        then = recorded.get(name)
        if then is not None and then != now:
            return (f"input {name} has changed since this sweep started (recorded {then}, now {now}: retrained or "
                    f"replaced); resuming would mix instances trained on two different inputs: choose another "
                    f"{spelled('out')}")
    return None


def instance_records(sweep: SweepConfig) -> list[dict]:
    """One dict per instance with run_id, group and every flat field: what ``--dry-run`` prints."""
    return [
        {"run_id": inst.run_id, "group": gid, **inst.cfg.flat()}
        for gid, insts in plan(sweep).items() for inst in insts
    ]


def instance_steps(sweep: SweepConfig) -> int:
    return sum(c.optim.steps for c in sweep.instances())


# Cost model for estimates, calibrated on this project's 2-core CI machine (LR1 at quick scale: 305 s measured):
# matmul throughput reached at the model's shapes, plus fixed per-step costs of the Python loop and each sampler.
CPU_GFLOPS = 40.0
STEP_OVERHEAD_S = 3e-3
SAMPLER_OVERHEAD_S = 1.5e-4


def estimate_seconds(sweep: SweepConfig) -> float:
    """Rough wall time of a sweep on a 2-core CPU (a GPU is much faster at paper scale)."""
    total = 0.0
    for insts in plan(sweep).values():
        steps = insts[0].cfg.optim.steps
        flops = sum(flops_per_step(i.cfg) for i in insts) * steps
        total += flops / (CPU_GFLOPS * 1e9) + steps * (STEP_OVERHEAD_S + SAMPLER_OVERHEAD_S * len(insts))
    return total


# ---- memory ------------------------------------------------------------------------------------------------------
#: set to a number of GB to replace the machine's available memory in :func:`check_memory` (e.g. on a node whose
#: memory the OS under-reports, or to knowingly run close to the limit); "off" skips the check.
MEMORY_LIMIT_ENV = "TOYMODELS_MEMORY_LIMIT_GB"


def group_bytes(instances: list[Instance]) -> int:
    """An upper bound of the memory one group needs while training: its instances, their loss logs, the schedule."""
    cfg = instances[0].cfg
    steps = cfg.optim.steps
    per_instance = instance_bytes(cfg) + 8 * (steps // 16 + 1)  # loss logs, on the device and copied back
    return len(instances) * per_instance + 40 * steps  # the schedule's per-step factors (a Python list)


def available_bytes(device: str) -> tuple[int, str]:
    """(bytes the device can still give, what was measured) for ``device``; RAM from /proc/meminfo on Linux."""
    if device.startswith("cuda") and torch.cuda.is_available():
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free), f"{device} has {free / 1e9:.1f} GB free"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free = int(line.split()[1]) * 1024
                return free, f"this machine has {free / 1e9:.1f} GB of memory available"
    except OSError:
        pass
    free = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return free, f"this machine has {free / 1e9:.1f} GB of memory"


def check_memory(groups: dict[str, list[Instance]]) -> None:
    """Refuse, before any work, a sweep whose largest group cannot fit in the memory of its device.

    Groups train one at a time in a local run, so the largest one decides. Override with the environment variable
    ``TOYMODELS_MEMORY_LIMIT_GB`` (a number of GB, or ``off``).
    """
    override = os.environ.get(MEMORY_LIMIT_ENV, "").strip()
    if override.lower() == "off":
        return
    gid, insts = max(groups.items(), key=lambda item: group_bytes(item[1]))
    need = group_bytes(insts)
    device = insts[0].cfg.run.device
    if override:
        try:
            limit, what = int(float(override) * 1e9), f"{MEMORY_LIMIT_ENV}={override}"
            if limit <= 0:
                raise ValueError(override)
        except (ValueError, OverflowError):  # inf, nan, 1e400, -1, "lots"
            raise ConfigError(f"{MEMORY_LIMIT_ENV}: must be a positive, finite number of GB or 'off' "
                              f"(got {override[:40]!r})") from None
    else:
        limit, what = available_bytes(device)
    if need > limit:
        raise ConfigError(
            f"the sweep needs about {_human_bytes(need)} for its largest group ({gid}: {len(insts)} instances of "
            f"{_sizes(insts[0].cfg)}), and {what}; use smaller sizes, fewer instances per setting, or set "
            f"{MEMORY_LIMIT_ENV} (GB, or 'off') to override this check")


def _human_bytes(n: int) -> str:
    for unit, size in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n / 1e3:.3g} kB"


def _sizes(cfg: ExperimentConfig) -> str:
    flat = cfg.flat()
    fields = [f for f in get_family(cfg.model.model).fields if f in ("N", "m", "k")] + ["batch_size", "steps"]
    return ", ".join(f"{f}={flat[f]}" for f in fields)
