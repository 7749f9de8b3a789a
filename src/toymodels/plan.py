"""Plan a sweep: expand it into instances, pack them into groups of equal tensor shapes (bounded in memory), and
estimate its cost. Deterministic, so a SLURM task re-plans the sweep from ``sweep.json`` and finds its group.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .config import ExperimentConfig, SweepConfig
from .families import get_family

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
