"""Expand a SweepConfig into instances, pack them into groups of equal tensor shapes, and run the groups.

A group is the unit of work and of resumption: it trains in one batched loop, then writes its checkpoints and
tables into ``groups/<gid>/`` and ``DONE`` last. ``--resume`` skips finished groups and continues an unfinished
one from its latest mid-run state.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
import torch

from . import store
from .config import ConfigError, ExperimentConfig, SweepConfig
from .evaluate import evaluate
from .train import GroupResult, TrainState, flops_per_step, train_group

# Memory per group is bounded: many instances of a big model are split into several groups.
GROUP_MEMORY_BYTES = 2 * 2**30
MAX_GROUP_INSTANCES = 4096
FINAL_LOSS_LOGS = 8  # final_loss = mean of the last 8 logged losses (less noisy than one batch)


@dataclass(frozen=True)
class Instance:
    run_id: str
    group: str
    index_in_group: int
    cfg: ExperimentConfig


def _instance_bytes(cfg: ExperimentConfig) -> int:
    """A rough upper bound of one instance's training memory (activations dominate)."""
    d, mo, o = cfg.data, cfg.model, cfg.optim
    k = mo.k if mo.model == "em" else 0  # only the EM model has a k-neuron layer
    per_sample = 3 * d.N + mo.m + 3 * k
    params = k * (mo.m + 1 + d.N) + d.N * (mo.m + 1)
    return 4 * (4 * o.batch_size * per_sample + 6 * params + d.N * mo.m * 2)


def plan(sweep: SweepConfig) -> dict[str, list[Instance]]:
    """Group id -> instances, deterministic: groups in order of first appearance, split to bound memory."""
    by_key: dict[tuple, list[tuple[int, ExperimentConfig]]] = {}
    for idx, cfg in enumerate(sweep.instances()):
        by_key.setdefault(cfg.group_key(), []).append((idx, cfg))
    groups: dict[str, list[Instance]] = {}
    for members in by_key.values():
        cap = max(1, min(MAX_GROUP_INSTANCES, GROUP_MEMORY_BYTES // _instance_bytes(members[0][1])))
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


# ---- one group ------------------------------------------------------------------------------------------------
def _state_tensors(state: TrainState) -> dict[str, torch.Tensor]:
    t = {f"param/{k}": v for k, v in state.params.items()}
    t.update({f"opt/{k}": v for k, v in state.optimizer.items()})
    t.update({f"rng/{i}": r for i, r in enumerate(state.rng)})
    t.update({f"ckpt/{s}/{k}": v for s, d in state.checkpoints.items() for k, v in d.items()})
    t.update({"alive": state.alive, "diverged_at": state.diverged_at, "losses": state.losses,
              "step": torch.tensor([state.step])})
    return t


def _state_from_tensors(t: dict[str, torch.Tensor]) -> TrainState:
    def sub(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix):]: v for k, v in t.items() if k.startswith(prefix)}

    ckpts: dict[int, dict[str, torch.Tensor]] = {}
    for k, v in sub("ckpt/").items():
        step, name = k.split("/", 1)
        ckpts.setdefault(int(step), {})[name] = v
    rng = sub("rng/")
    return TrainState(
        step=int(t["step"][0]), params=sub("param/"), optimizer=sub("opt/"), alive=t["alive"],
        diverged_at=t["diverged_at"], losses=t["losses"], rng=[rng[str(i)] for i in range(len(rng))],
        checkpoints=ckpts,
    )


def _group_tables(instances: list[Instance], res: GroupResult) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The group's row per instance (config, status, final loss and metrics) and its long metrics table."""
    run_ids = [inst.run_id for inst in instances]
    final_metrics = evaluate(res.cfgs, res.final)
    tail = res.losses[:, -FINAL_LOSS_LOGS:]
    rows = []
    for i, inst in enumerate(instances):
        diverged = int(res.diverged_at[i]) >= 0
        row = {"run_id": inst.run_id, "group": inst.group, "index_in_group": i, **inst.cfg.flat(),
               "status": "diverged" if diverged else "ok", "diverged_at": int(res.diverged_at[i]),
               "final_loss": float("nan") if diverged else float(tail[i].mean()),
               "train_seconds": res.seconds / len(instances)}
        row.update({name: float(v[i]) for name, v in final_metrics.items()})
        rows.append(row)
    long = []
    for i, rid in enumerate(run_ids):
        for step, value in zip(res.loss_steps, res.losses[i].tolist()):
            if math.isfinite(value):
                long.append((rid, step, "loss", value))
    for step, tensors in sorted(res.checkpoints.items()):
        for name, v in evaluate(res.cfgs, tensors).items():
            long.extend((rid, step, name, float(x)) for rid, x in zip(run_ids, v.tolist()))
    metrics = pd.DataFrame(long, columns=["run_id", "step", "name", "value"]).astype({"step": "int64"})
    return pd.DataFrame(rows), metrics


def run_group(
    folder: Path, gid: str, instances: list[Instance],
    on_progress: Callable[[int, torch.Tensor], None] | None = None, state_every_s: float | None = None,
) -> None:
    """Train one group (continuing from its mid-run state if there is one) and write its files, DONE last."""
    gdir = store.group_dir(folder, gid)
    state_path = gdir / "state.safetensors"
    resume = _state_from_tensors(store.read_tensors(state_path)) if state_path.exists() else None
    every = state_every_s if state_every_s is not None else float(os.environ.get("TOYMODELS_STATE_EVERY_S", 300))
    res = train_group(
        [inst.cfg for inst in instances], on_progress=on_progress, resume=resume,
        on_state=lambda st: store.write_tensors(state_path, _state_tensors(st)), state_every_s=every,
    )
    tensors = {f"{step}/{k}": v for step, d in res.checkpoints.items() for k, v in d.items()}
    store.write_tensors(gdir / "checkpoints.safetensors", tensors,
                        metadata={"run_ids": ",".join(i.run_id for i in instances)})
    inst_df, met_df = _group_tables(instances, res)
    store.write_parquet(gdir / "instances.parquet", inst_df)
    store.write_parquet(gdir / "metrics.parquet", met_df)
    store.write_text(gdir / "DONE", "")
    state_path.unlink(missing_ok=True)


# ---- the whole sweep ------------------------------------------------------------------------------------------
def prepare_folder(sweep: SweepConfig, out: Path, resume: bool) -> None:
    """Check the folder before any work (an existing folder is never overwritten), then write sweep.json."""
    out = Path(out)
    existing = out / "sweep.json"
    if existing.exists():
        if not resume:
            raise ConfigError(f"results folder '{out}' already holds a sweep; pass --resume to continue it "
                              "or choose another --out")
        old, _ = store.read_sweep(out)
        if old != sweep:
            raise ConfigError(f"results folder '{out}' holds a different sweep ('{old.name}'); "
                              "--resume needs the same config, or choose another --out")
        return
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"'{out}' exists and is not a toymodels results folder; choose another --out")
    store.write_json(out / "sweep.json", store.sweep_meta(sweep))


def run_sweep(
    sweep: SweepConfig, out: str | Path, resume: bool = False, progress: bool = True,
    report: bool = True, state_every_s: float | None = None, backend: str = "local", **backend_options,
) -> store.Results | None:
    """Train every unfinished group of ``sweep`` into ``out`` and return the loaded results.

    ``backend`` chooses where groups run (see ``toymodels.launch``): "local" trains them here, one after another.
    "slurm" submits them as a SLURM job array (``backend_options``: partition, gpus_per_task, cpus_per_task,
    max_parallel, timeout_min, detach); with ``detach=True`` it returns None right after submission.
    """
    from .launch import get_launcher

    out = Path(out)
    launcher = get_launcher(backend, **backend_options)  # fails fast, before any work, if unavailable
    groups = plan(sweep)
    launcher.check_devices({insts[0].cfg.run.device for insts in groups.values()})
    prepare_folder(sweep, out, resume)
    todo = {gid: insts for gid, insts in groups.items() if not store.group_done(out, gid)}
    try:
        launcher.run(out, todo, progress=progress, state_every_s=state_every_s, name=sweep.name)
    finally:  # what finished is merged even when a group or a SLURM task failed
        store.merge_tables(out)
    if getattr(launcher, "detach", False):
        return None  # submitted only: `toymodels status` / `--resume` pick it up
    results = store.load(out)
    if report:
        from .report import write_report

        write_report(results)
    return results
