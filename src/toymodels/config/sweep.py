"""A sweep: a base ExperimentConfig, a grid over any flat fields (full product) and a number of seeds; read from
TOML or JSON files users write.

Example:
    >>> from toymodels.config import ExperimentConfig
    >>> cfg = ExperimentConfig.from_flat({"N": 128, "m": 16, "k": 256, "lr": 0.01})
    >>> sweep = SweepConfig(name="lr", base=cfg, grid={"lr": [0.001, 0.01]}, seeds=2)
    >>> len(sweep.instances())
    4
"""

from __future__ import annotations

import itertools
import json
import math
import re
import unicodedata
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

from pydantic import Field, ValidationError, field_validator, model_validator

from toymodels.config.experiment import (FIELDS, SECTIONS, ConfigError, ExperimentConfig, one_line,
                                        paths_relative_to, unknown_field)
from toymodels.config.messages import did_you_mean, shown
from toymodels.config.sections import Frozen

#: the most instances one sweep may have (the grid's product times the seeds, computed without expanding it)
MAX_INSTANCES = 50_000
#: how deep a sweep's values may nest (sweep > base > section > field > value is 4; a grid's lists 3): deeper is
#: no config, and Python's parsers and validators would run out of stack on it
MAX_DEPTH = 16
#: a sweep's name: it becomes the folder runs/<name>, so no leading dot (it must stay inside runs/) and no separator
NAME_PATTERN = r"[A-Za-z0-9_+-][A-Za-z0-9_.+-]*"
NAME_MAX = 200
#: the keys of a sweep besides the flat fields
SWEEP_KEYS = ("name", "grid", "seeds", "base")


class SweepConfig(Frozen):
    """A base config, a grid over flat fields (full product, in the given order) and a number of seeds.

    Seeds are ``base.seed, base.seed+1, ...`` unless ``seed`` itself is in the grid.
    """

    name: str = "sweep"
    base: ExperimentConfig = Field(default_factory=ExperimentConfig)
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    seeds: int = Field(1, ge=1)

    @field_validator("name")
    @classmethod
    def _name_is_a_folder_name(cls, name: str) -> str:
        if not re.fullmatch(NAME_PATTERN, name) or len(name) > NAME_MAX:
            raise ValueError(f"field 'name': letters, digits and _ . + - only, not starting with a dot, at most "
                             f"{NAME_MAX} characters: it names the folder runs/<name> (got {shown(name)})")
        return name

    @field_validator("grid", mode="before")
    @classmethod
    def _grid_known(cls, grid: Any) -> Any:
        if isinstance(grid, dict):
            for key, values in grid.items():
                if key not in FIELDS:
                    raise ValueError(unknown_field(key))
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
            repeated = next((v for i, v in enumerate(typed[key]) if v in typed[key][:i]), None)
            if repeated is not None:  # e.g. lr=0.01,1e-2: one instance twice would read as two seeds
                raise ValueError(f"grid field '{key}': {repeated!r} is given twice (the same instance twice is not "
                                 "a second seed: use seeds for repeats)")
        object.__setattr__(self, "grid", typed)
        seen: dict[ExperimentConfig, int] = {}
        for i, cfg in enumerate(self.instances()):  # combinations can be invalid even if each value is fine
            if cfg in seen:
                raise ValueError(f"field 'seed': instances {seen[cfg]} and {i} are the same run (seed "
                                 f"{cfg.run.seed} twice): the grid's seed values and seeds={self.seeds} overlap; "
                                 "give seeds that are at least seeds apart, or seeds=1")
            seen[cfg] = i
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

    def replace(self, **values: Any) -> "SweepConfig":
        """A copy with ``name``, ``grid`` or ``seeds`` changed and any flat field of the base set (validated; one
        line naming the field if not): a base field that the grid sweeps leaves the grid, as ``--set`` does.

        >>> SweepConfig(name="lr", grid={"lr": [0.001, 0.01]}).replace(lr=0.1, seeds=2).grid
        {}
        """
        own = {k: values.pop(k) for k in ("name", "grid", "seeds") if k in values}
        grid = {k: v for k, v in own.pop("grid", self.grid).items() if k not in values}
        base = self.base.replace(**values) if values else self.base
        try:
            return SweepConfig(name=own.get("name", self.name), base=base, grid=grid,
                               seeds=own.get("seeds", self.seeds))
        except ValidationError as err:
            raise ConfigError(one_line(err)) from None

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
        """Accept nested or flat ``base`` and flat base fields at the top level (for hand-written TOML).

        The first unknown name is reported before any value is checked (a typo explains the errors after it)."""
        if not isinstance(raw, dict):
            raise ConfigError(f"a sweep is a dict of fields, not {type(raw).__name__}")
        _check_depth(raw)
        _check_names(raw)
        raw = dict(raw)
        base_raw = raw.pop("base", {}) or {}
        top_flat = {k: raw.pop(k) for k in list(raw) if k in FIELDS}
        # nested (as sweep.json stores it) when a section's name holds a table; flat names otherwise (`model` is both)
        if any(k in SECTIONS and isinstance(v, dict) for k, v in base_raw.items()):
            try:
                base = ExperimentConfig.model_validate(base_raw)
            except ValidationError as err:
                raise ConfigError(one_line(err)) from None
            base = base.replace(**top_flat) if top_flat else base
        else:
            base = ExperimentConfig.from_flat({**base_raw, **top_flat})
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
        except RecursionError:
            raise ConfigError(f"config file '{path}': nested more than {MAX_DEPTH} levels deep; a field's value "
                              "is a number or a string, a grid field's a list of them") from None
        except ValueError as err:  # _unique_keys; a number of more than 4300 digits
            raise ConfigError(f"config file '{path}': {err}") from None
        except OSError as err:
            raise ConfigError(f"config file '{path}': cannot be read ({err.strerror})") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"config file '{path}': must hold an object of fields, not {type(raw).__name__}")
        known = all(k in FIELDS or k in ("name", "seeds", "base", "grid") for k in raw)
        if known and not any(k in FIELDS or k in ("base", "grid") for k in raw):
            raise ConfigError(f"config file '{path}': sets no field; name at least the fields you want "
                              f"(e.g. N, lr) or start from a preset (`toymodels presets`)")
        raw.setdefault("name", folder_name(path.stem))  # "my run é.toml" runs as my-run-e: the user set no name
        with paths_relative_to(path.resolve().parent):  # a relative path in the file names a place beside it
            return cls.from_dict(raw)


def folder_name(text: str) -> str:
    """``text`` made a valid sweep name: accents dropped, anything else but letters, digits and _ . + - as "-".

    >>> folder_name("my run é")
    'my-run-e'
    """
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    name = re.sub(r"[^A-Za-z0-9_.+-]+", "-", ascii_text).lstrip(".")[:NAME_MAX]
    return name or "sweep"


def _check_depth(raw: dict[str, Any]) -> None:
    """ConfigError when values nest deeper than MAX_DEPTH (checked without recursion)."""
    todo: list[tuple[Any, int, str]] = [(raw, 0, "")]
    while todo:
        value, depth, where = todo.pop()
        if depth > MAX_DEPTH:
            raise ConfigError(f"field '{where.split('.')[0]}': nested more than {MAX_DEPTH} levels deep; a field's "
                              "value is a number or a string, a grid field's a list of them")
        if isinstance(value, dict):
            todo += [(v, depth + 1, f"{where}.{k}" if where else str(k)) for k, v in value.items()]
        elif isinstance(value, (list, tuple)):
            todo += [(v, depth + 1, where) for v in value]


def _check_names(raw: dict[str, Any]) -> None:
    """ConfigError naming the first unknown key: of the sweep, of a flat ``base`` or of the grid."""
    for key in raw:
        if key not in FIELDS and key not in SWEEP_KEYS:
            raise ConfigError(f"unknown field {shown(key)}{did_you_mean(key, [*SWEEP_KEYS, *FIELDS])}; allowed: "
                              f"{', '.join(SWEEP_KEYS)} or a field of {', '.join(FIELDS)}")
    base, grid = raw.get("base"), raw.get("grid")
    if base is not None and not isinstance(base, dict):
        raise ConfigError(f"field 'base': must be a table of fields (got {shown(base)})")
    if base and not any(k in SECTIONS and isinstance(v, dict) for k, v in base.items()):  # flat names
        for key in base:
            if key not in FIELDS:
                raise ConfigError(unknown_field(key))
    for key in grid if isinstance(grid, dict) else ():
        if key not in FIELDS:
            raise ConfigError(f"grid: {unknown_field(key)}")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json's object hook: a key given twice is an error (json alone keeps the last one silently)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"field '{key}' is given twice")
        out[key] = value
    return out
