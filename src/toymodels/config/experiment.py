"""Frozen, validated configuration: one source of truth that round-trips through JSON.

An ``ExperimentConfig`` describes one training run (one *instance*); it nests data, model, task, optimisation and run
settings (the shared sections) and one section per family that registered its own (``register_section``), but every
field also has a flat name (``N``, ``lr``, ``bias_offset`` ...) that users type on the command line, in TOML files
and that appear as columns of ``instances.parquet``. The sweep over instances is ``toymodels.config.sweep``.

Example:
    >>> cfg = ExperimentConfig.from_flat({"N": 128, "m": 16, "k": 256, "lr": 0.01})
    >>> cfg.flat()["lr"]
    0.01
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
import os
import re
from pathlib import Path
from collections.abc import Mapping
from typing import Any, ClassVar, Iterator, Literal

from pydantic import ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from toymodels.config.firing import FiringConfig
from toymodels.config.messages import did_you_mean, shown
from toymodels.config.sections import Frozen as _Frozen  # every section's base
from toymodels.config.registry import CONFIG_CHECKS, Registry, get_family

Task = Literal["decoder", "reprojector", "abs"]
Distribution = Literal["uniform", "power_law"]
Nonlinearity = Literal["relu", "gelu", "solu"]
Optimizer = Literal["lamb", "adam", "adamw", "sgd"]
Schedule = Literal["paper_cosine", "cosine", "constant", "warmup_cosine", "warmup_constant"]
Dtype = Literal["float32", "float64", "bfloat16", "tf32"]


class ConfigError(ValueError):
    """Bad user input: one line naming the field and what is allowed."""


# Set while a config written by an earlier run is read back (``stored_configs``): the family's checks of what lies
# outside the config (an SAE's source folder) were made when it was written and must not make its results unreadable.
_STORED: ContextVar[bool] = ContextVar("toymodels_stored_config", default=False)


@contextmanager
def stored_configs() -> Iterator[None]:
    """Validate configs read back from a results folder without the families' checks of external inputs."""
    token = _STORED.set(True)
    try:
        yield
    finally:
        _STORED.reset(token)


# Set while a sweep file is read (``paths_relative_to``): a relative path in it names a place beside the file, not in
# whatever folder the command happens to be typed from.
_PATH_BASE: ContextVar[str | None] = ContextVar("toymodels_path_base", default=None)


@contextmanager
def paths_relative_to(folder: str | os.PathLike) -> Iterator[None]:
    """Resolve the relative paths of the configs validated inside (``resolve_path``) against ``folder``."""
    token = _PATH_BASE.set(os.fspath(folder))
    try:
        yield
    finally:
        _PATH_BASE.reset(token)


def resolve_path(value: str) -> str:
    """A path field's value made absolute: a relative one against the folder of the sweep file being read
    (``paths_relative_to``), else against the working directory (what the user typed in a shell). A config read back
    from a results folder (``stored_configs``) keeps the path it was written with, whatever links changed since."""
    if _STORED.get():
        return value
    path = Path(value).expanduser()
    base = _PATH_BASE.get()
    return str((Path(base) / path if base is not None and not path.is_absolute() else path).resolve())


class DataConfig(_Frozen):
    N: int = Field(512, ge=1, description="number of features")
    eps: float = Field(1 / 64, gt=0, le=1, description="feature probability (mean for power law)")
    distribution: Distribution = "uniform"
    power_law_exponent: float = Field(1.1, gt=0, description="p_i proportional to i^-exponent")
    importance_decay: float = Field(1.0, gt=0, le=1, description="TMS: feature i has importance decay^i")
    importance_ratio: float = Field(
        1.0, gt=0, description="TMS/quadratic: multiplies the importance of the last feature (n=2 phase diagram: "
        "I = [1, r] with importance_decay=1); 1 = off")


#: the family a config without ``model`` runs: Engineering Monosemanticity's two-layer model
DEFAULT_MODEL = "em"


class ModelConfig(_Frozen):
    model: str = Field(DEFAULT_MODEL, description="the model family (see toymodels.families)")
    m: int = Field(64, ge=1, description="embedding (hidden) dimension")
    k: int = Field(1024, ge=1, description="neurons in the hidden layer (EM)")
    nonlinearity: Nonlinearity = "relu"
    bias_offset: float = Field(0.0, description="added to PyTorch's default bias init")


class TaskConfig(_Frozen):
    task: Task = "decoder"


class OptimConfig(_Frozen):
    optimizer: Optimizer = "lamb"
    lr: float = Field(0.003, gt=0)
    schedule: Schedule = "paper_cosine"
    batch_size: int = Field(8192, ge=1)
    steps: int = Field(2**17, ge=1)
    bias_decay: float = Field(0.0, ge=0, description="b *= 1 - bias_decay*lr after each step of the first half")
    l1: float = Field(0.0, ge=0, description="L1 penalty on hidden activations")
    weight_decay: float = Field(0.01, ge=0, description="AdamW only")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD only")
    lamb_clamp: float = Field(
        10.0, gt=0, description="LAMB only: the weight-norm clamp of the trust ratio (torch-optimizer's clamp_value; "
        "the paper's 10). Paper-size init norms (18 and 13) are clamped from step 0, quick-size ones (9 and 6.5) are "
        "not, so 5 at quick scale makes lr act as it does at paper size")
    warmup_frac: float = Field(0.05, ge=0, lt=1, description="warmup_cosine and warmup_constant only")



#: more threads than any machine has cores (torch crashes asking for ~10^5)
MAX_THREADS = 1024


class RunConfig(_Frozen):
    seed: int = Field(0, ge=0)
    device: str = "cpu"
    dtype: Dtype = Field("float32", description="bfloat16: bf16 matmuls, float32 weights; tf32: CUDA's TF32 matmuls")
    sampler: Literal["auto", "generator", "counter"] = Field("auto", description="'generator': a torch.Generator "
        "per instance (the CPU's default); 'counter': Philox numbers, the whole group in one pass with no host sync "
        "(a GPU's default; em and tms, independent features); 'auto': the device's default")
    threads: int = Field(
        0, ge=0, le=MAX_THREADS, description="CPU threads while training: 0 = automatic (what the group's size needs, "
        "at most the usable cores less those other processes keep busy, re-checked every few seconds); N = exactly "
        "N. Never changes a result")
    checkpoint_every: int = Field(
        0, ge=0, description="also keep the model after every step t with t+1 a multiple of this (0: only at steps "
        "2^j-1 and the last); 512 with schedule paper_cosine keeps every lr peak and trough")

    @field_validator("device", "dtype")
    @classmethod
    def _device_and_dtype(cls, v: str, info: ValidationInfo) -> str:
        if info.field_name == "device" and not re.fullmatch(r"cpu|cuda(:\d{1,4})?|mps", v):
            raise ValueError("must be one of cpu, cuda, cuda:N (N < 10000), mps")
        if info.field_name == "dtype" and v == "tf32" and not info.data.get("device", "").startswith("cuda"):
            raise ValueError("'tf32' is a matmul mode of CUDA GPUs; use float32, float64 or bfloat16 off CUDA")
        return v


#: the config's sections by name: the shared ones below, then each family's own (``register_section``)
SECTIONS: Registry[type[_Frozen]] = Registry("config section")
for _name, _section in {"data": DataConfig, "model": ModelConfig, "task": TaskConfig, "optim": OptimConfig,
                        "run": RunConfig, "firing": FiringConfig}.items():
    SECTIONS.register(_name, _section)
SHARED_SECTIONS = SECTIONS.names()


def register_section(name: str, section: type[_Frozen]) -> type[_Frozen]:
    """Add a family's own config section: its fields become flat names users type (``--set``, sweep files, the
    columns of ``instances.parquet``), nested under ``name`` in ``sweep.json``. A flat name may belong to one section
    only. The section may list ``group_fields``: instances that differ in them never share a batched group."""
    taken = sorted(set(section.model_fields) & set(FIELDS))
    if taken:
        raise ConfigError(f"config section '{name}': field '{taken[0]}' belongs to section '{FIELDS[taken[0]]}'")
    return SECTIONS.register(name, section)


def unregister_section(name: str) -> None:
    """Remove a family's section (tests register temporary families)."""
    if name not in SHARED_SECTIONS:
        SECTIONS.unregister(name)


class _FlatFields(Mapping[str, str]):
    """flat field name -> its section, in section order; follows ``SECTIONS`` as families register theirs."""

    def __init__(self) -> None:
        self._key: tuple[str, ...] = ()
        self._fields: dict[str, str] = {}

    def _current(self) -> dict[str, str]:
        if self._key != SECTIONS.names():
            self._fields = {name: sec for sec, cls in SECTIONS.items() for name in cls.model_fields}
            self._key = SECTIONS.names()
        return self._fields

    def __getitem__(self, name: str) -> str:
        return self._current()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._current())

    def __len__(self) -> int:
        return len(self._current())


#: flat name -> section; the names users type everywhere.
FIELDS: Mapping[str, str] = _FlatFields()


def unknown_field(name: Any) -> str:
    """The one line for a field name nobody registered: the closest known name, then every allowed one."""
    return f"unknown field {shown(name)}{did_you_mean(name, FIELDS)}; allowed fields: {', '.join(FIELDS)}"


def one_line(err: ValidationError, prefix: str = "") -> str:
    """Turn pydantic's error into one line that names the flat field and what is allowed; an unknown field is
    reported before any other error (a typo explains the rest)."""
    errors = err.errors()
    e = next((x for x in errors if x["type"] == "extra_forbidden"
              or x["msg"].removeprefix("Value error, ").startswith("unknown ")), errors[0])
    field = str(e["loc"][-1]) if e["loc"] else "config"
    msg = e["msg"].removeprefix("Value error, ")
    if e["type"] == "extra_forbidden":
        return prefix + unknown_field(field)
    if msg.startswith(("field '", "unknown ", "grid field")):
        return prefix + msg  # already names the field (raised by our own validators)
    got = e.get("input")
    hint = ""
    if e["type"] == "literal_error":
        allowed = e.get("ctx", {}).get("expected", "")
        msg = f"must be one of {allowed}"
        hint = did_you_mean(got, re.findall(r"'([^']*)'", allowed))
    got_s = "" if isinstance(got, dict) else f" (got {shown(got)})"
    return f"{prefix}field '{field}': {msg}{got_s}{hint}"


class ExperimentConfig(_Frozen):
    """One instance: data, model, task, optimisation, run and firing settings, then one section per family that
    registered its own fields (``register_section``; e.g. ``cfg.sae.sae_arch``), each with its defaults."""

    # the families' sections are the extra attributes, each validated by its registered class (_family_sections)
    model_config = ConfigDict(**{**_Frozen.model_config, "extra": "allow"})

    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    task: TaskConfig = TaskConfig()
    optim: OptimConfig = OptimConfig()
    run: RunConfig = RunConfig()
    firing: FiringConfig = FiringConfig()

    @model_validator(mode="before")
    @classmethod
    def _family_sections(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = {name: dict(v) if isinstance(v, dict) else v for name, v in data.items()}
        unknown = [name for name in data if name not in SECTIONS]
        if unknown:
            raise ValueError(f"unknown config section {shown(unknown[0])}{did_you_mean(unknown[0], SECTIONS)}; "
                             f"sections: {', '.join(SECTIONS)}")
        # a field that an earlier version kept in another section (e.g. TMS's init_std under model) moves to its own
        for name, values in list(data.items()):
            if isinstance(values, dict):
                for field in [f for f in values if f in FIELDS and FIELDS[f] != name]:
                    data.setdefault(FIELDS[field], {})
                    if isinstance(data[FIELDS[field]], dict):
                        data[FIELDS[field]][field] = values.pop(field)
        for name, section in SECTIONS.items():
            if name not in SHARED_SECTIONS and not isinstance(data.get(name), section):
                data[name] = section.model_validate(data.get(name, {}))
        return data

    def section(self, name: str) -> _Frozen:
        """The section ``name``; its defaults where this config was made before the section was registered."""
        found = getattr(self, name, None) if name in SHARED_SECTIONS else (self.__pydantic_extra__ or {}).get(name)
        return found if found is not None else SECTIONS.get(name)()

    @model_validator(mode="after")
    def _consistent(self) -> "ExperimentConfig":
        family = get_family(self.model.model)
        if self.task.task not in family.tasks:
            allowed = family.tasks[0] if len(family.tasks) == 1 else ", ".join(family.tasks)
            raise ValueError(f"field 'task': model '{family.name}' supports only task '{allowed}'"
                             if len(family.tasks) == 1 else
                             f"field 'task': model '{family.name}' supports tasks {allowed}")
        why = None if _STORED.get() else family.check(self)
        if why:
            raise ValueError(why)
        return self

    @model_validator(mode="after")
    def _runnable(self) -> "ExperimentConfig":
        # the engine's checks (the firing law exists and fits the family; the sampler can draw it), in their order
        for check in CONFIG_CHECKS.values():
            why = check(self)
            if why:
                raise ValueError(why)
        return self

    def flat(self) -> dict[str, Any]:
        """All fields under their flat names."""
        return {name: getattr(self.section(sec), name) for name, sec in FIELDS.items()}

    @classmethod
    def from_flat(cls, values: dict[str, Any], base: "ExperimentConfig | None" = None) -> "ExperimentConfig":
        """Build from flat names (optionally on top of ``base``); raises ConfigError naming the bad field."""
        unknown = [k for k in values if k not in FIELDS]
        if unknown:
            raise ConfigError(unknown_field(unknown[0]))
        nested = (base or cls()).model_dump()
        for name, value in values.items():
            nested.setdefault(FIELDS[name], {})[name] = value  # a section registered after ``base`` was made
        try:
            return cls.model_validate(nested)
        except ValidationError as err:
            raise ConfigError(one_line(err)) from None

    def replace(self, **values: Any) -> "ExperimentConfig":
        """A copy with some flat fields changed (validated)."""
        return ExperimentConfig.from_flat(values, base=self)

    # Fields that must be equal for instances to share one batched group (same tensor shapes, same loop); the
    # families' sections add theirs (``group_fields``).
    GROUP_FIELDS: ClassVar[tuple[str, ...]] = (
        "model", "task", "N", "m", "k", "nonlinearity", "distribution", "optimizer", "schedule", "batch_size",
        "steps", "device", "dtype", "weight_decay", "momentum", "warmup_frac", "power_law_exponent",
        "lamb_clamp", "checkpoint_every", "sampler",
    )

    def group_fields(self) -> tuple[str, ...]:
        """``GROUP_FIELDS`` and every registered section's ``group_fields``."""
        return self.GROUP_FIELDS + tuple(f for _, cls in SECTIONS.items() for f in getattr(cls, "group_fields", ()))

    def group_key(self) -> tuple:
        flat = self.flat()
        return tuple(flat[f] for f in self.group_fields())


def parse_assignment(text: str) -> tuple[str, str]:
    """Split ``field=value`` (from ``--set``/``--sweep``), checking the field name."""
    key, eq, value = text.partition("=")
    key = key.strip()
    if not eq or not key:
        raise ConfigError(f"expected field=value, e.g. lr=0.01 (got {shown(text)})")
    if key not in FIELDS:
        raise ConfigError(unknown_field(key))
    return key, value.strip()
