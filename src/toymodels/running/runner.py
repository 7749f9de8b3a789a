"""Run one group of a sweep and write its files: the unit of work of every launcher (local, SLURM task).

``run_group`` trains the group (continuing from ``groups/<gid>/state.safetensors`` if an earlier attempt left one),
streaming its checkpoints to disk as they are taken (``checkpoint_stream``), evaluates them one at a time with the
family's metrics, and writes the tables and ``DONE`` last.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

import torch
from safetensors import safe_open

if TYPE_CHECKING:
    import pandas as pd

from toymodels.results import store
from toymodels.results.checkpoint_stream import CheckpointStream, partial_intact, partial_path
from toymodels.config import ConfigError, ExperimentConfig
from toymodels.config.wording import spelled
from toymodels.families import get_family
from toymodels.running.plan import Instance, input_change
from toymodels.engine.threads import following_the_load
from toymodels.engine.train import GroupResult, TrainingInterrupted, TrainState, checkpoint_steps, train_group

FINAL_LOSS_LOGS = 8  # final_loss = mean of the last 8 logged losses (less noisy than one batch)


#: Instances are evaluated a few at a time, so that the metrics' float64 (instances, neurons, features) temporaries
#: stay near this many entries (the largest part of a sweep's peak memory when all instances ran at once): one
#: paper-size instance (1024 x 512) at a time. The metrics are the same to the bit for any block size.
EVAL_BLOCK_ELEMENTS = 1 << 19


@torch.no_grad()
def evaluate(cfgs: Sequence[ExperimentConfig], tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The family's metrics of one checkpoint of a group: metric name -> (instances,) tensor on the CPU.

    Every metric is per instance (each draws from its own streams), so evaluating the instances in blocks gives
    the numbers of evaluating them all at once.
    """
    family = get_family(cfgs[0].model.model)
    per_instance = max(v[0].numel() for v in tensors.values() if v.dim() > 0)
    block = max(1, EVAL_BLOCK_ELEMENTS // max(1, per_instance))
    parts = [family.evaluate(cfgs[i:i + block], {k: v[i:i + block] for k, v in tensors.items()})
             for i in range(0, len(cfgs), block)]
    return {name: torch.cat([p[name].detach().cpu() for p in parts]) for name in parts[0]}


def _checkpoints_kept(gdir: Path, state_keys: Iterable[str]) -> bool:
    """Whether the checkpoints taken before a mid-run state still exist: in the partial checkpoints file, or in the
    state itself (written by an earlier version)."""
    return (any(k.startswith("ckpt/") for k in state_keys)
            or partial_intact(partial_path(gdir / "checkpoints.safetensors")))


def state_step(folder: Path, gid: str) -> int | None:
    """The step a group's mid-run state file would continue from, or None if it has none, it is unreadable, or the
    checkpoints taken before it are gone (the partial checkpoints file; a state of an earlier version holds them)."""
    gdir = store.group_dir(folder, gid)
    path = gdir / "state.safetensors"
    if not path.exists():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            return int(f.get_tensor("step")[0]) if _checkpoints_kept(gdir, f.keys()) else None
    except Exception:  # damaged or vanished between exists() and open: run_group reports it clearly
        return None


def device_missing(device: str) -> str | None:
    """Why ``device`` cannot train in this process, or None."""
    if not device.startswith("cuda"):
        return None
    if not torch.cuda.is_available():
        return (f"field 'device': '{device}' is not available here (torch {torch.__version__} sees no CUDA device); "
                f"use device=cpu, or train on a GPU node ({spelled('backend', 'slurm')}, "
                f"{spelled('gpus_per_task', 1)})")
    index = torch.device(device).index
    if index is not None and index >= torch.cuda.device_count():
        return (f"field 'device': '{device}' is not available here (CUDA devices: "
                f"{', '.join(f'cuda:{i}' for i in range(torch.cuda.device_count()))})")
    return None


def _state_tensors(state: TrainState) -> dict[str, torch.Tensor]:
    t = {f"param/{k}": v for k, v in state.params.items()}
    t.update({f"opt/{k}": v for k, v in state.optimizer.items()})
    t.update({f"rng/{i}": r for i, r in enumerate(state.rng)})
    t.update({f"ckpt/{s}/{k}": v for s, d in state.checkpoints.items() for k, v in d.items()})
    t.update({"alive": state.alive, "diverged_at": state.diverged_at, "losses": state.losses,
              "step": torch.tensor([state.step])})
    if state.blowup_reference is not None:
        t["blowup_reference"] = state.blowup_reference
    if state.blowup_window is not None:
        t["blowup_window"] = state.blowup_window
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
        checkpoints=ckpts, blowup_reference=t.get("blowup_reference"), blowup_window=t.get("blowup_window"),
    )


def _group_tables(
    instances: list[Instance], res: GroupResult, checkpoints: Iterable[tuple[int, dict[str, torch.Tensor]]],
    between: Callable[[], None] = lambda: None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The group's row per instance (config, status, final loss and metrics) and its long metrics table, from the
    training result and its checkpoints (step, tensors) in step order; ``between()`` runs before each checkpoint."""
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
        # a diverged instance has no trained model to describe: its metrics are left empty, never kept
        row.update({name: float("nan") if diverged else float(v[i]) for name, v in final_metrics.items()})
        rows.append(row)
    long = []
    for i, rid in enumerate(run_ids):
        for step, value in zip(res.loss_steps, res.losses[i].tolist()):
            if math.isfinite(value):
                long.append((rid, step, "loss", value))
    diverged_at = res.diverged_at.tolist()
    for step, tensors in checkpoints:
        between()
        kept = [i for i, d in enumerate(diverged_at) if d < 0 or step < d]  # checkpoints before the blow-up only
        for name, v in evaluate(res.cfgs, tensors).items():
            values = v.tolist()
            long.extend((run_ids[i], step, name, float(values[i])) for i in kept)
    # deferred until the evaluation's temporaries are freed: ~70 MB that a training process does not need
    import pandas as pd

    metrics = pd.DataFrame(long, columns=["run_id", "step", "name", "value"]).astype({"step": "int64"})
    return pd.DataFrame(rows), metrics


def run_group(
    folder: Path, gid: str, instances: list[Instance],
    on_progress: Callable[[int, torch.Tensor], None] | None = None, state_every_s: float | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> None:
    """Train one group (continuing from its mid-run state if there is one) and write its files, DONE last.

    When ``should_stop()`` turns true the group's state is saved and ``TrainingInterrupted`` (naming the group) is
    raised; ``--resume`` continues from that state.
    """
    gdir = store.group_dir(folder, gid)
    # a SLURM task may start long after the sweep did: an input retrained since (an SAE's source) is refused here too
    meta = store.read_json(Path(folder) / "sweep.json") if (Path(folder) / "sweep.json").is_file() else None
    changed = input_change(meta.get("inputs") if isinstance(meta, dict) else None, [i.cfg for i in instances])
    if changed:
        raise ConfigError(f"results folder '{folder}', group {gid}: {changed}")
    state_path = gdir / "state.safetensors"
    state = store.read_tensors(state_path) if state_path.exists() else None  # a damaged one is said, not skipped
    # a state whose earlier checkpoints are gone cannot finish the group: it trains again from step 0
    resume = _state_from_tensors(state) if state is not None and _checkpoints_kept(gdir, state) else None
    every = state_every_s if state_every_s is not None else float(os.environ.get("TOYMODELS_STATE_EVERY_S", 300))
    cfg = instances[0].cfg
    steps = checkpoint_steps(cfg.optim.steps, cfg.run.checkpoint_every)
    stream = CheckpointStream(gdir / "checkpoints.safetensors", steps,
                              metadata={"run_ids": ",".join(i.run_id for i in instances)},
                              resume_step=resume.step if resume is not None and not resume.checkpoints else 0)

    def save_state(state: TrainState) -> None:
        stream.sync()  # the checkpoints the state relies on are on disk before it
        store.write_tensors(state_path, _state_tensors(state))

    try:
        res = train_group(
            [inst.cfg for inst in instances], on_progress=on_progress, resume=resume, on_state=save_state,
            state_every_s=every, should_stop=should_stop, on_checkpoint=stream.write,
        )
    except BaseException as err:
        stream.close()  # an interrupted group keeps its partial file for the resume
        if isinstance(err, TrainingInterrupted):
            err.group = gid
        raise
    stream.finish()
    # the evaluation's threads follow the load as training's do (metrics are the same bits at any thread count)
    with following_the_load(math.inf, instances[0].cfg.run.threads) as threads:
        inst_df, met_df = _group_tables(instances, res, store.iter_checkpoints(gdir / "checkpoints.safetensors"),
                                        threads.adjust)
    store.write_parquet(gdir / "instances.parquet", inst_df)
    store.write_parquet(gdir / "metrics.parquet", met_df)
    store.write_done(folder, gid, [inst.run_id for inst in instances])
    state_path.unlink(missing_ok=True)
