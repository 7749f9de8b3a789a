"""The polytope lens over a results folder (docs/papers.md §6), for any family with ReLU layers: its
``relu_layers`` hook (``families/base.py``) hands over the layers and the true features of a checkpoint's models,
``metrics/polytope_features.py`` measures them.

* :func:`lens_table`: one row per instance and checkpoint step (or only the final one) with every measure of
  ``lens_measures`` and the instance's swept fields, seed and status: the table a study judges;
* :func:`slice_view`: one instance's 2D slice through the plane of two feature directions (codes on a grid, the
  first layer's boundary lines, every feature's direction projected on the plane), for the figures and dashboard;
* :func:`has_lens`: whether a folder's models have ReLU layers (the report and dashboard show the lens only then);
* :func:`stacked_draws`: what a family's ``draw`` uses to draw each distinct training law once.

Speed: a group's checkpoints file is read once, every step of it stacked on the instance axis (steps x instances
models measured as one batch, ``CHUNK`` at a time to bound memory), the samples drawn once per instance.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from toymodels.config import ExperimentConfig
from toymodels.config.registry import get_family
from toymodels.engine.threads import one_thread
from toymodels.families.base import ReluLayers, family_hook
from toymodels.metrics.polytope import plane_basis, slice_codes, slice_lines
from toymodels.metrics.polytope_features import feature_magnitudes, lens_measures
from toymodels.results.model import instance_config
from toymodels.results.store import Results
from toymodels.results.tables import py_value, setting_fields

if TYPE_CHECKING:
    import pandas as pd

#: training-law samples per instance (distinct polytopes visited, the features' magnitudes)
LENS_SAMPLES = 4096
#: models (steps x instances) measured per batch: bounds the memory of the exact paths (~ this x 300 MB at most
#: for EM quick's 128 features x 256 neurons)
CHUNK = 4
#: measures that are profiles (one value per bin of a path), spread into columns ``<name>_<bin>`` of the table
PROFILES = ("between_profile", "within_profile")


def has_lens(results: Results) -> bool:
    """Whether the folder's models have ReLU layers to read: its family brings a ``relu_layers`` hook and the hook
    gives layers for its first instance (not for e.g. EM with GeLU, an SAE with TopK)."""
    family = get_family(results.sweep.base.model.model)
    if not hasattr(family, "relu_layers") or results.instances.empty:
        return False
    run_id = str(results.instances["run_id"].iloc[0])
    tensors = {k: v.unsqueeze(0) for k, v in results.params(run_id).items()}
    return family_hook(family, "relu_layers")(tensors, [instance_config(results, run_id)]) is not None


def stacked_draws(cfgs: Sequence[ExperimentConfig], key: Callable[[ExperimentConfig], Hashable],
                  one: Callable[[ExperimentConfig], tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    """``one(cfg)`` for each config, stacked on a new instance axis, computed once per distinct ``key(cfg)`` (the
    lens stacks every checkpoint step of an instance: its training law is the same at each)."""
    cache: dict[Hashable, tuple[Tensor, Tensor]] = {}
    rows = []
    for cfg in cfgs:
        k = key(cfg)
        if k not in cache:
            cache[k] = one(cfg)
        rows.append(cache[k])
    return torch.stack([r[0] for r in rows]), torch.stack([r[1] for r in rows])


def law_key(cfg: ExperimentConfig) -> Hashable:
    """What decides an instance's training-law samples: its seed, data and firing sections and task."""
    return (cfg.run.seed, cfg.data.model_dump_json(), cfg.firing.model_dump_json(), cfg.task.task)


def _group_checkpoints(results: Results, gid: str, final_only: bool) -> tuple[list[int], dict[str, Tensor]]:
    """(steps, name -> (steps, instances, ...)) of one group's checkpoints file."""
    raw = results.checkpoint_tensors(gid)
    steps = sorted({int(k.split("/")[0]) for k in raw})
    steps = steps[-1:] if final_only else steps
    names = sorted({k.split("/", 1)[1] for k in raw if k.startswith(f"{steps[-1]}/")})
    return steps, {n: torch.stack([raw[f"{s}/{n}"] for s in steps]) for n in names}


def _measure(view: ReluLayers, inputs: Tensor, magnitudes: dict[str, Tensor], chunk: int) -> dict[str, Tensor]:
    out: dict[str, list[Tensor]] = {}
    n = view.directions.shape[0]
    for start in range(0, n, chunk):
        part = slice(start, min(n, start + chunk))
        mags = {k: v[part] for k, v in magnitudes.items()}
        got = lens_measures(view.net.select(part), view.directions[part], inputs[part], mags)
        for name, value in got.items():
            out.setdefault(name, []).append(value)
    return {name: torch.cat(values) for name, values in out.items()}


def lens_table(results: Results, final_only: bool = False, samples: int = LENS_SAMPLES, chunk: int = CHUNK
               ) -> pd.DataFrame:
    """The lens's measures (``metrics.polytope_features.lens_measures``) of every finished instance at every
    checkpoint step (``final_only``: the last), one row each: ``run_id``, ``step``, the sweep's swept fields,
    ``seed``, ``status``, then the measures (profiles spread into ``<name>_<bin>`` columns). Instances of a model
    without ReLU layers (the hook gives None) have no rows; the ``note`` column carries the family's caveat."""
    import pandas as pd  # deferred: pandas is ~70 MB that training never loads

    inst = results.instances
    family = get_family(results.sweep.base.model.model)
    hook = family_hook(family, "relu_layers")
    fields = [f for f in setting_fields(results) if f != "seed"]
    rows: list[dict[str, Any]] = []
    for gid, members in inst.groupby("group", sort=True):
        members = members.sort_values("index_in_group")
        steps, stacked = _group_checkpoints(results, str(gid), final_only)
        index = torch.tensor(members["index_in_group"].to_numpy(dtype=int))
        tensors = {n: t[:, index].flatten(0, 1) for n, t in stacked.items()}
        cfgs = [instance_config(results, str(r)) for r in members["run_id"]]
        view = hook(tensors, [c for _ in steps for c in cfgs])
        if view is None:
            continue
        # one thread: the lens's tensors are small, and torch's thread pool costs ~10 ms an op on a busy machine
        with torch.no_grad(), one_thread():
            inputs, coefficients = view.draw(samples)
            # every step of an instance has the same training law: its magnitudes once, then repeated
            mags = feature_magnitudes(coefficients[:len(cfgs)])
            mags = {k: v.repeat(len(steps), *([1] * (v.dim() - 1))) for k, v in mags.items()}
            measures = _measure(view, inputs, mags, chunk)
        for k in range(len(steps) * len(cfgs)):
            s, i = divmod(k, len(cfgs))
            member = members.iloc[i]
            row: dict[str, Any] = {"run_id": member["run_id"], "step": steps[s],
                                   **{f: py_value(member[f]) for f in fields},
                                   "seed": py_value(member["seed"]), "status": member["status"]}
            for name, value in measures.items():
                if name in PROFILES:
                    row.update({f"{name}_{b}": float(v) for b, v in enumerate(value[k])})
                else:
                    row[name] = float(value[k])
            row["note"] = view.note
            rows.append(row)
    return pd.DataFrame(rows).sort_values(["run_id", "step"]).reset_index(drop=True) if rows else pd.DataFrame()


def slice_view(results: Results, run_id: str, step: int | None = None, features: tuple[int, int] = (0, 1),
               resolution: int = 161, samples: int = LENS_SAMPLES) -> dict[str, Any] | None:
    """One instance's slice through the plane of feature directions ``features`` (hidden space, through the origin;
    None when its model has no ReLU layer): ``ids`` (rows, columns) the polytope of each grid point, ``coords`` the
    grid's axis in the plane's orthonormal coordinates (-extent .. extent), ``lines`` (units, 3) the first layer's
    boundaries p c1 + q c2 = r, ``arrows`` (features, 2) each feature's direction times its top training magnitude
    projected on the plane, ``in_plane`` (features,) the share of its norm the plane holds, and ``features``."""
    family = get_family(results.sweep.base.model.model)
    cfg = instance_config(results, run_id)
    tensors = {k: v.unsqueeze(0) for k, v in results.params(run_id, step).items()}
    view = family_hook(family, "relu_layers")(tensors, [cfg])
    if view is None:
        return None
    with torch.no_grad(), one_thread():
        net = view.net.to(torch.float64)
        d = view.directions.double()
        i, j = (min(f, d.shape[1] - 1) for f in features)
        top = feature_magnitudes(view.draw(samples)[1])["top"]
        arrows_full = d * top.unsqueeze(-1)
        basis = plane_basis(d[:, i], d[:, j] if j != i else torch.roll(d[:, i], 1, dims=-1))
        proj = torch.einsum("ifd,ikd->ifk", arrows_full, basis)
        extent = 1.25 * torch.stack([proj[:, i].norm(dim=-1), proj[:, j].norm(dim=-1)]).amax(0).clamp(min=1e-6)
        ids = slice_codes(net, basis, extent, resolution)
        lines = slice_lines(net, basis)
    coords = torch.linspace(-1, 1, resolution, dtype=torch.float64) * extent[0]
    in_plane = proj[0].norm(dim=-1) / arrows_full[0].norm(dim=-1).clamp(min=1e-12)
    return {"ids": ids[0].numpy(), "coords": coords.numpy(), "lines": lines[0].numpy(), "arrows": proj[0].numpy(),
            "in_plane": in_plane.numpy(), "features": (i, j), "note": view.note, "extent": float(extent[0])}
