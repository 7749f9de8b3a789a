"""The SAE studies' sweeps as plain data, and the one function that turns them into SweepConfigs.

Each study (docs/dictionary_learning.md) is a list of *parts*, one sweep each: a part fixes the architecture (and
the source), because architecture, width and source decide tensor shapes; its grid varies what one batched group
can hold (k or l1, lr, seed, the source run) and, where a study needs it, the width (the planner splits widths into
groups). Scales: ``smoke`` (seconds, for tests) and ``quick`` (minutes on 2 CPU cores, the documented results).

* ``SAE-L0``: MCC against L0 and width for the four architectures on one synthetic dictionary (128 features in
  32 dims, 4 active on average).
* ``SAE-ABS``: independent, correlated (blocks of 3, strength 0.8) and hierarchical (trees of a parent and two
  children) features, the four architectures at four sparsities each (the independent arm is the null baseline of
  the absorption gap).
* ``SAE-LR`` and ``SAE-TMS`` read trained toy models; their parts are made by :func:`source_sweeps` once the
  source folder exists (run ids are known only then).

Example:
    >>> [s.name for s in sae_sweeps("SAE-L0", "smoke")][:2]
    ['SAE-L0-smoke-relu_l1', 'SAE-L0-smoke-topk']
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from toymodels.config import ConfigError, ExperimentConfig, SweepConfig
from toymodels.config.presets import Preset, register_preset
from toymodels.families.sae.sources import source_layers

#: optimisation of every SAE study: Adam at a constant lr (SAELens' synthetic default is Adam, constant lr)
SAE_BASE = dict(model="sae", task="decoder", optimizer="adam", schedule="constant", lr=3e-3, k=1, bias_decay=0.0)
SCALES = {
    "smoke": dict(batch_size=64, steps=64),
    "quick": dict(batch_size=128, steps=3000),
    "paper": dict(batch_size=1024, steps=20_000),  # no paper sets these: longer training, larger batches (a GPU)
}
#: the sparsity each architecture sweeps: k for topk/batchtopk, the l1 coefficient for relu_l1/jumprelu
SPARSITY = {
    "relu_l1": ("l1", [1.0, 0.3, 0.1, 0.03, 0.01]),
    "topk": ("sae_k", [1, 2, 4, 8, 16]),
    "batchtopk": ("sae_k", [1, 2, 4, 8, 16]),
    "jumprelu": ("l1", [0.1, 0.03, 0.01, 0.003, 0.001]),
}
#: per-architecture fixed fields (jumprelu: thresholds start at 0.05 and learn through a 0.05 bandwidth, the scale
#: of these features' magnitudes, U[0, 1))
ARCH_FIELDS = {"relu_l1": {}, "topk": dict(l1=0.0), "batchtopk": dict(l1=0.0),
               "jumprelu": dict(sae_threshold=0.05, sae_bandwidth=0.05)}

SAE_PRESETS: dict[str, dict[str, Any]] = {
    "SAE-L0": dict(
        summary="MCC vs L0 and width, four architectures, one synthetic dictionary (128 features in 32 dims)",
        base=dict(source="synthetic", N=128, m=32, eps=1 / 32),
        widths={"smoke": [32], "quick": [64, 128, 256], "paper": [64, 128, 256, 512]},
        archs=["relu_l1", "topk", "batchtopk", "jumprelu"],
        smoke=dict(N=32, m=8, eps=1 / 16),
    ),
    "SAE-ABS": dict(
        summary="independent, correlated and hierarchical features: MCC and the absorption gap",
        base=dict(source="synthetic", N=96, m=32, eps=0.05, sae_width=96, feature_group_size=3,
                  correlation="block", correlation_strength=0.8, hierarchy_branching=2, hierarchy_depth=2,
                  hierarchy_child_prob=0.5),
        firing=["independent", "correlated", "hierarchical"],
        sparsity={"relu_l1": [1.0, 0.3, 0.1, 0.03], "topk": [1, 2, 4, 8], "batchtopk": [1, 2, 4, 8],
                  "jumprelu": [0.1, 0.03, 0.01, 0.003]},
        smoke=dict(N=24, m=12, sae_width=24),
    ),
}

#: SAEs on toy-model layers: width per layer as a multiple of N, sparsity and steps
SOURCE_SAE = {
    "SAE-LR": dict(arch="topk", fields=dict(sae_k=3, l1=0.0), width_per_feature=1, layers=["h", "x"]),
    "SAE-TMS": dict(arch="relu_l1", fields={}, grid={"l1": [0.03, 0.3]}, width_per_feature=2, layers=["h"],
                    batch_size=256),
}


def sae_sweeps(name: str, scale: str = "quick", seeds: int = 1) -> list[SweepConfig]:
    """The sweeps (parts) of a synthetic SAE study at a scale; ConfigError naming the field otherwise."""
    if name not in SAE_PRESETS:
        raise ConfigError(f"unknown SAE study '{name}'; available: {', '.join(SAE_PRESETS)}")
    if scale not in SCALES:
        raise ConfigError(f"field 'scale': must be one of {', '.join(SCALES)} (got {scale!r})")
    p = SAE_PRESETS[name]
    common = {**SAE_BASE, **SCALES[scale], **p["base"], **(p["smoke"] if scale == "smoke" else {})}
    out = []
    if name == "SAE-L0":
        for arch in p["archs"]:
            field, values = SPARSITY[arch]
            values = values[1:4] if scale == "smoke" else values
            base = ExperimentConfig.from_flat({**common, **ARCH_FIELDS[arch], "sae_arch": arch})
            out.append(SweepConfig(name=f"{name}-{scale}-{arch}", base=base, seeds=seeds,
                                   grid={"sae_width": p["widths"][scale], field: values}))
    else:
        for arch, values in p["sparsity"].items():
            field = SPARSITY[arch][0]
            base = ExperimentConfig.from_flat({**common, **ARCH_FIELDS[arch], "sae_arch": arch})
            out.append(SweepConfig(name=f"{name}-{scale}-{arch}", base=base, seeds=seeds,
                                   grid={"firing": p["firing"], field: values}))
    return out


def source_sweeps(name: str, folder: Path, run_ids: list[str], source_cfg: ExperimentConfig, scale: str = "quick",
                  seeds: int = 1) -> list[SweepConfig]:
    """The SAE sweeps of study ``name`` (SAE-LR, SAE-TMS) on the trained toy models ``run_ids`` of ``folder``, one
    per layer: every run's SAEs in one batched group (run id, sparsity and seed vary inside it)."""
    spec = SOURCE_SAE[name]
    out = []
    for layer in spec["layers"]:
        d = source_layers(source_cfg.model.model)[layer].dims(source_cfg)
        fields = {**SAE_BASE, **SCALES[scale], **spec["fields"], "source": str(Path(folder).resolve()),
                  "source_layer": layer, "source_run": run_ids[0], "N": source_cfg.data.N, "m": d, "sae_arch": spec["arch"],
                  "sae_width": spec["width_per_feature"] * source_cfg.data.N}
        if "batch_size" in spec and scale != "smoke":
            fields["batch_size"] = spec["batch_size"]
        grid = {"source_run": list(run_ids), **spec.get("grid", {})}
        out.append(SweepConfig(name=f"{name}-{scale}-{Path(folder).name}-{layer}",
                               base=ExperimentConfig.from_flat(fields), grid=grid, seeds=seeds))
    return out


def _part_scale(view: Preset, scale: str) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """Base and grid of one part (``<study>-<arch>``) of a synthetic study, from :func:`sae_sweeps`."""
    study, arch = view.name.rsplit("-", 1)
    sweep = next(s for s in sae_sweeps(study, scale) if s.base.sae.sae_arch == arch)
    return sweep.base.flat(), dict(sweep.grid)


# The synthetic studies as presets (`toymodels presets`, `toymodels run SAE-L0 --scale smoke`): one part per
# architecture. SAE-LR and SAE-TMS need a trained source first: `toymodels reproduce SAE-LR` trains it.
for _study, _spec in SAE_PRESETS.items():
    register_preset(Preset(
        name=_study, summary=_spec["summary"], base={"model": "sae", "task": "decoder"}, grid={}, family="sae",
        scale_fn=_part_scale,
        parts=tuple((arch, {"sae_arch": arch}, {}) for arch in _spec.get("archs") or list(_spec["sparsity"]))))
