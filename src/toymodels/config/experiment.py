"""Frozen, validated configuration: one source of truth that round-trips through JSON.

An ``ExperimentConfig`` describes one training run (one *instance*); it nests data, model, task, optimisation and run
settings, but every field also has a flat name (``N``, ``lr``, ``bias_offset`` ...) that users type on the command
line, in TOML files and that appear as columns of ``instances.parquet``. A ``SweepConfig`` is a base config, a grid
over any flat fields and a number of seeds.

Example:
    >>> cfg = ExperimentConfig.from_flat({"N": 128, "m": 16, "k": 256, "lr": 0.01})
    >>> cfg.flat()["lr"]
    0.01
    >>> sweep = SweepConfig(name="lr", base=cfg, grid={"lr": [0.001, 0.01]}, seeds=2)
    >>> len(sweep.instances())
    4
"""

from __future__ import annotations

import itertools
import math
from contextlib import contextmanager
from contextvars import ContextVar
import json
import re
from pathlib import Path
from typing import Any, ClassVar, Iterator, Literal

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator

from toymodels.config.dictionary import FiringConfig, SAEConfig
from toymodels.config.sections import Frozen as _Frozen, number as _number  # every section's base, shared with dictionary_config
from toymodels.config.registry import CONFIG_CHECKS, get_family

Task = Literal["decoder", "reprojector", "abs"]
Distribution = Literal["uniform", "power_law"]
Nonlinearity = Literal["relu", "gelu", "solu"]
Optimizer = Literal["lamb", "adam", "adamw", "sgd"]
Schedule = Literal["paper_cosine", "cosine", "constant", "warmup_cosine"]
Dtype = Literal["float32", "float64", "bfloat16", "tf32"]
TMSVariant = Literal["relu", "linear", "hidden_relu"]
InputKind = Literal["auto", "gaussian", "sign"]


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


#: the most instances one sweep may have (the grid's product times the seeds, computed without expanding it)
MAX_INSTANCES = 50_000


class DataConfig(_Frozen):
    N: int = Field(512, ge=1, description="number of features")
    eps: float = Field(1 / 64, gt=0, le=1, description="feature probability (mean for power law)")
    distribution: Distribution = "uniform"
    power_law_exponent: float = Field(1.1, gt=0, description="p_i proportional to i^-exponent")
    importance_decay: float = Field(1.0, gt=0, le=1, description="TMS: feature i has importance decay^i")
    importance_ratio: float = Field(
        1.0, gt=0, description="TMS/quadratic: multiplies the importance of the last feature (n=2 phase diagram: "
        "I = [1, r] with importance_decay=1); 1 = off")
    kurtosis: float = Field(
        3.0, ge=1, description="quadratic only: kurtosis K of each input x_i = s_i B_i / sqrt(q), B_i ~ Bernoulli(q), "
        "zero mean and unit variance; q = 3/K for input_kind gaussian, 1/K for sign (eps is not used)")
    input_kind: InputKind = Field(
        "auto", description="quadratic only: s_i standard normal (gaussian, needs K >= 3) or a random sign "
        "(sign, any K >= 1); auto = sign below K=3, gaussian from K=3")

    _numbers = field_validator("eps", "power_law_exponent", "importance_decay", "importance_ratio", "kurtosis",
                               mode="before")(classmethod(lambda cls, v: _number(v)))

    @model_validator(mode="after")
    def _input_kind_reaches_kurtosis(self) -> "DataConfig":
        if self.input_kind == "gaussian" and self.kurtosis < 3:
            raise ValueError(f"field 'kurtosis': input_kind 'gaussian' gives K = 3/q >= 3 (got {self.kurtosis}); "
                             "use input_kind 'sign' or 'auto' for K < 3")
        return self


#: the family a config without ``model`` runs: Engineering Monosemanticity's two-layer model
DEFAULT_MODEL = "em"


class ModelConfig(_Frozen):
    model: str = Field(DEFAULT_MODEL, description="the model family (see toymodels.families)")
    m: int = Field(64, ge=1, description="embedding (hidden) dimension")
    k: int = Field(1024, ge=1, description="neurons in the hidden layer (EM)")
    nonlinearity: Nonlinearity = "relu"
    bias_offset: float = Field(0.0, description="added to PyTorch's default bias init")
    init_std: float | None = Field(
        None, gt=0, description="TMS only: std of W's normal init (default: xavier-normal of one (m, n) matrix, "
        "sqrt(2/(m+n)); the official notebook's init over all its instances is families.superposition_presets.notebook_init_std)")
    tms_variant: TMSVariant = Field(
        "relu", description="TMS only: relu = ReLU(W^T W x + b) (ReLU output model), linear = W^T W x + b, "
        "hidden_relu = ReLU(W^T ReLU(W x) + b) (privileged basis)")

    _numbers = field_validator("bias_offset", "init_std", mode="before")(classmethod(lambda cls, v: _number(v)))


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
    warmup_frac: float = Field(0.05, ge=0, lt=1, description="warmup_cosine only")

    _numbers = field_validator("lr", "bias_decay", "l1", "weight_decay", "lamb_clamp", mode="before")(
        classmethod(lambda cls, v: _number(v))
    )


class RunConfig(_Frozen):
    seed: int = Field(0, ge=0)
    device: str = "cpu"
    dtype: Dtype = Field("float32", description="bfloat16: bf16 matmuls, float32 weights; tf32: CUDA's TF32 matmuls")
    sampler: Literal["auto", "generator", "counter"] = Field("auto", description="'generator': a torch.Generator "
        "per instance (the CPU's default); 'counter': Philox numbers, the whole group in one pass with no host sync "
        "(a GPU's default; em and tms, independent features); 'auto': the device's default")
    checkpoint_every: int = Field(
        0, ge=0, description="also keep the model after every step t with t+1 a multiple of this (0: only at steps "
        "2^j-1 and the last); 512 with schedule paper_cosine keeps every lr peak and trough")

    @field_validator("device", "dtype")
    @classmethod
    def _device_and_dtype(cls, v: str, info: ValidationInfo) -> str:
        if info.field_name == "device" and not re.fullmatch(r"cpu|cuda(:\d+)?|mps", v):
            raise ValueError("must be one of cpu, cuda, cuda:N, mps")
        if info.field_name == "dtype" and v == "tf32" and not info.data.get("device", "").startswith("cuda"):
            raise ValueError("'tf32' is a matmul mode of CUDA GPUs; use float32, float64 or bfloat16 off CUDA")
        return v


_SECTIONS: dict[str, type[_Frozen]] = {
    "data": DataConfig,
    "model": ModelConfig,
    "task": TaskConfig,
    "optim": OptimConfig,
    "run": RunConfig,
    "firing": FiringConfig,
    "sae": SAEConfig,
}
#: flat name -> section; the names users type everywhere.
FIELDS: dict[str, str] = {name: sec for sec, cls in _SECTIONS.items() for name in cls.model_fields}


def one_line(err: ValidationError, prefix: str = "") -> str:
    """Turn pydantic's error into one line that names the flat field and what is allowed."""
    e = err.errors()[0]
    field = str(e["loc"][-1]) if e["loc"] else "config"
    msg = e["msg"].removeprefix("Value error, ")
    if msg.startswith(("field '", "unknown field", "grid field")):
        return prefix + msg  # already names the field (raised by our own validators)
    if e["type"] == "literal_error":
        allowed = e.get("ctx", {}).get("expected", "")
        msg = f"must be one of {allowed}"
    got = e.get("input")
    got_s = "" if isinstance(got, dict) else f" (got {got!r})"
    return f"{prefix}field '{field}': {msg}{got_s}"


class ExperimentConfig(_Frozen):
    """One instance: data, model, task, optimisation and run settings."""

    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    task: TaskConfig = TaskConfig()
    optim: OptimConfig = OptimConfig()
    run: RunConfig = RunConfig()
    firing: FiringConfig = FiringConfig()
    sae: SAEConfig = SAEConfig()

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
        return {name: getattr(getattr(self, sec), name) for name, sec in FIELDS.items()}

    @classmethod
    def from_flat(cls, values: dict[str, Any], base: "ExperimentConfig | None" = None) -> "ExperimentConfig":
        """Build from flat names (optionally on top of ``base``); raises ConfigError naming the bad field."""
        unknown = [k for k in values if k not in FIELDS]
        if unknown:
            raise ConfigError(f"unknown field '{unknown[0]}'; allowed fields: {', '.join(FIELDS)}")
        nested = (base or cls()).model_dump()
        for name, value in values.items():
            nested[FIELDS[name]][name] = value
        try:
            return cls.model_validate(nested)
        except ValidationError as err:
            raise ConfigError(one_line(err)) from None

    def replace(self, **values: Any) -> "ExperimentConfig":
        """A copy with some flat fields changed (validated)."""
        return ExperimentConfig.from_flat(values, base=self)

    # Fields that must be equal for instances to share one batched group (same tensor shapes, same loop).
    GROUP_FIELDS: ClassVar[tuple[str, ...]] = (
        "model", "task", "N", "m", "k", "nonlinearity", "distribution", "optimizer", "schedule", "batch_size",
        "steps", "device", "dtype", "weight_decay", "momentum", "warmup_frac", "power_law_exponent",
        "tms_variant", "sae_arch", "sae_width", "source", "source_layer", "lamb_clamp", "checkpoint_every",
        "sampler",
    )

    def group_key(self) -> tuple:
        flat = self.flat()
        return tuple(flat[f] for f in self.GROUP_FIELDS)


class SweepConfig(_Frozen):
    """A base config, a grid over flat fields (full product, in the given order) and a number of seeds.

    Seeds are ``base.seed, base.seed+1, ...`` unless ``seed`` itself is in the grid.
    """

    # no leading dot: the name becomes the default folder runs/<name>, which must stay inside runs/
    name: str = Field("sweep", pattern=r"^[A-Za-z0-9_+-][A-Za-z0-9_.+-]*$", max_length=200)
    base: ExperimentConfig = Field(default_factory=ExperimentConfig)
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    seeds: int = Field(1, ge=1)

    @field_validator("grid", mode="before")
    @classmethod
    def _grid_known(cls, grid: Any) -> Any:
        if isinstance(grid, dict):
            for key, values in grid.items():
                if key not in FIELDS:
                    raise ValueError(f"unknown field '{key}'; allowed fields: {', '.join(FIELDS)}")
                if not isinstance(values, (list, tuple)) or len(values) == 0:
                    raise ValueError(f"grid field '{key}' needs a non-empty list of values")
        return grid

    @model_validator(mode="after")
    def _typed_grid(self) -> "SweepConfig":
        # Count before expanding: a huge grid is refused at once instead of filling the memory.
        count = self.size()
        if count > MAX_INSTANCES:
            raise ValueError(f"field 'grid': {count:,} instances (grid x seeds); a sweep may have at most "
                             f"{MAX_INSTANCES:,}: split it into several sweeps")
        # Validate every grid value now (before any work) and store it typed, e.g. "1/64" -> 0.015625.
        typed = {}
        for key, values in self.grid.items():
            typed[key] = [self.base.replace(**{key: v}).flat()[key] for v in values]
        object.__setattr__(self, "grid", typed)
        self.instances()  # combinations can be invalid even if each value is fine
        return self

    def size(self) -> int:
        """How many instances the sweep has (the grid's product times the seeds), without expanding it."""
        return self.seeds * math.prod(len(values) for values in self.grid.values())

    def instances(self) -> list[ExperimentConfig]:
        """Every instance of the sweep, in a fixed order: grid product (first key outermost), seeds innermost."""
        keys = list(self.grid)
        out = []
        for combo in itertools.product(*(self.grid[k] for k in keys)):
            values = dict(zip(keys, combo))
            first_seed = values.get("seed", self.base.run.seed)
            for s in range(self.seeds):
                out.append(self.base.replace(**{**values, "seed": first_seed + s}))
        return out

    def swept_fields(self) -> list[str]:
        """The fields that vary across instances (seed included when several)."""
        fields = [k for k, v in self.grid.items() if len(v) > 1]
        if self.seeds > 1 and "seed" not in fields:
            fields.append("seed")
        return fields

    # ---- files -----------------------------------------------------------------------------------------------
    def to_json(self) -> str:
        return self.model_dump_json(indent=2)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> "SweepConfig":
        """Accept nested or flat ``base`` and flat base fields at the top level (for hand-written TOML)."""
        raw = dict(raw)
        base_raw = raw.pop("base", {}) or {}
        top_flat = {k: raw.pop(k) for k in list(raw) if k in FIELDS}
        if base_raw and all(k in _SECTIONS for k in base_raw):
            try:
                base = ExperimentConfig.model_validate(base_raw)
            except ValidationError as err:
                raise ConfigError(one_line(err)) from None
            base = base.replace(**top_flat) if top_flat else base
        else:
            base = ExperimentConfig.from_flat({**base_raw, **top_flat})
        unknown = [k for k in raw if k not in ("name", "grid", "seeds")]
        if unknown:
            raise ConfigError(
                f"unknown field '{unknown[0]}'; allowed: name, grid, seeds, base or a field of {', '.join(FIELDS)}"
            )
        try:
            return cls(base=base, **raw)
        except ValidationError as err:
            raise ConfigError(one_line(err)) from None

    @classmethod
    def from_json(cls, text: str) -> "SweepConfig":
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_file(cls, path: str | Path) -> "SweepConfig":
        """Read a sweep from a .toml or .json file."""
        path = Path(path)
        if path.suffix not in (".toml", ".json"):
            raise ConfigError(f"config file '{path}': must end in .toml or .json")
        try:
            text = path.read_bytes().decode("utf-8-sig")  # a BOM from a Windows editor is fine
            raw = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text, object_pairs_hook=_unique_keys)
        except UnicodeDecodeError:
            raise ConfigError(f"config file '{path}': not UTF-8 text") from None
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as err:
            raise ConfigError(f"config file '{path}': not valid {path.suffix[1:].upper()} ({err})") from None
        except ValueError as err:  # _unique_keys
            raise ConfigError(f"config file '{path}': {err}") from None
        except OSError as err:
            raise ConfigError(f"config file '{path}': cannot be read ({err.strerror})") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"config file '{path}': must hold an object of fields, not {type(raw).__name__}")
        known = all(k in FIELDS or k in ("name", "seeds", "base", "grid") for k in raw)
        if known and not any(k in FIELDS or k in ("base", "grid") for k in raw):
            raise ConfigError(f"config file '{path}': sets no field; name at least the fields you want "
                              f"(e.g. N, lr) or start from a preset (`toymodels presets`)")
        raw.setdefault("name", path.stem)
        return cls.from_dict(raw)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json's object hook: a key given twice is an error (json alone keeps the last one silently)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"field '{key}' is given twice")
        out[key] = value
    return out


def parse_assignment(text: str) -> tuple[str, str]:
    """Split ``field=value`` (from ``--set``/``--sweep``), checking the field name."""
    if "=" not in text:
        raise ConfigError(f"expected field=value, got '{text}'")
    key, value = text.split("=", 1)
    key = key.strip()
    if key not in FIELDS:
        raise ConfigError(f"unknown field '{key}'; allowed fields: {', '.join(FIELDS)}")
    return key, value.strip()
