"""Named experiments: a preset is a named sweep at three scales; each family registers its own.

What is here is generic: the :class:`Preset` type, the preset registry (``PRESETS``, :func:`register_preset`,
refusing a second preset of the same name), :func:`preset` (a preset's ``SweepConfig`` at a scale, or one part of a
multi-part preset), :func:`thin_grid` and :func:`scaled` (the plain scaling rule). The presets themselves live with
their family and register when the family is imported (``import toymodels`` imports every built-in one): Table 1
of *Engineering Monosemanticity* and OPT1 in ``families/em/presets.py``, the TMS-* presets in
``families/tms/presets.py``, PC-kurtosis in ``families/quadratic/presets.py``, the SAE studies in
``families/sae/presets.py``.

Scales (``SCALES``): ``smoke`` (seconds, for tests), ``quick`` (minutes on 2 CPU cores), ``paper`` (the paper's
sizes). What a scale changes is the preset's own ``scale_fn(preset, scale) -> (flat base, grid)``; without one,
:func:`scaled` keeps the base and grid as given and thins the grid to three values per field at smoke scale.

Multi-part presets: a study that one grid product cannot express (different lr ranges per optimizer, one part per
SAE architecture) is a list of sweeps, ``parts``: ``Preset.sweeps(scale)`` returns them, ``preset("OPT1-LR3-adam")``
returns one, ``toymodels run OPT1`` runs them all into ``<out>/<part>``. ``Preset.config()`` of a multi-part preset
raises.

Example:
    >>> preset("LR1", scale="quick").grid["lr"]
    [0.001, 0.003, 0.005, 0.007, 0.01, 0.03]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pydantic import ValidationError

from toymodels.config import ConfigError, ExperimentConfig, SweepConfig, one_line, parse_assignment
from toymodels.config.registry import Registry

SCALES = ("smoke", "quick", "paper")

#: how a preset becomes a sweep at a scale: ``(preset, scale) -> (flat base fields, grid)``
ScaleFn = Callable[["Preset", str], "tuple[dict[str, Any], dict[str, list[Any]]]"]


@dataclass(frozen=True)
class Preset:
    """A named sweep: fixed values (``base``, flat field names) plus the grid that the paper varies.

    ``family`` is the value of the field ``model`` (read from ``base`` when not given); ``scale_fn`` makes the base
    and grid of a scale (default :func:`scaled`: as given, three values per field at smoke scale).
    """

    name: str
    summary: str
    base: dict[str, Any]
    grid: dict[str, list[Any]]
    figure: str | None = None
    notes: str = ""
    family: str = ""
    scale_fn: ScaleFn | None = field(default=None, repr=False)
    #: multi-part presets (OPT1): (part suffix, base overrides, grid) per sweep; see the module docstring.
    parts: tuple = ()
    #: smoke scale keeps the full grid instead of three values per field
    smoke_full_grid: bool = False

    def __post_init__(self) -> None:
        if not self.family:  # the family of the field ``model``, its default when the base does not set it
            model = self.base["model"] if "model" in self.base else ExperimentConfig.from_flat({}).model.model
            object.__setattr__(self, "family", model)

    @property
    def swept(self) -> list[str]:
        if self.parts:
            return list(dict.fromkeys(k for _, over, grid in self.parts for k in [*grid, *over]))
        return list(self.grid)

    def config(self, scale: str = "quick", seeds: int = 1) -> SweepConfig:
        if self.parts:
            raise ConfigError(f"preset '{self.name}' is a study of {len(self.parts)} sweeps "
                              f"({', '.join(self.part_names())}); use Preset.sweeps() or one part by name")
        return self._config(self.name, self.base, self.grid, scale, seeds)

    def _config(self, name: str, base: dict[str, Any], grid: dict[str, list[Any]], scale: str,
                seeds: int) -> SweepConfig:
        if scale not in SCALES:
            raise ConfigError(f"field 'scale': must be one of {', '.join(SCALES)} (got {scale!r})")
        fn = self.scale_fn or scaled()
        view = (Preset(name=name, summary=self.summary, base=base, grid=grid, family=self.family,
                       smoke_full_grid=self.smoke_full_grid) if self.parts else self)
        base, grid = fn(view, scale)
        try:
            return SweepConfig(name=f"{name}-{scale}", base=ExperimentConfig.from_flat(base), grid=grid,
                               seeds=seeds)
        except ValidationError as err:  # e.g. seeds=0
            raise ConfigError(one_line(err)) from None

    def part_names(self) -> list[str]:
        return [f"{self.name}-{suffix}" for suffix, _, _ in self.parts]

    def sweeps(self, scale: str = "quick", seeds: int = 1) -> list[SweepConfig]:
        """Every sweep of the preset: ``[config()]``, or one per part for a multi-part preset."""
        if not self.parts:
            return [self.config(scale, seeds)]
        return [self._config(f"{self.name}-{suffix}", {**self.base, **over}, grid, scale, seeds)
                for suffix, over, grid in self.parts]


def thin_grid(values: list[Any]) -> list[Any]:
    """At most three values (first, middle, last) for smoke runs."""
    if len(values) <= 3:
        return list(values)
    return [values[0], values[len(values) // 2], values[-1]]


def scaled(per_scale: dict[str, dict[str, Any]] | None = None,
           grids: dict[str, dict[str, list[Any]]] | None = None) -> ScaleFn:
    """A ``scale_fn``: the preset's base updated with ``per_scale[scale]``; the grid as given (``grids[scale]``
    replaces it where present), thinned to three values per field at smoke scale (unless ``smoke_full_grid``)."""

    def fn(p: Preset, scale: str) -> tuple[dict[str, Any], dict[str, list[Any]]]:
        base = {**p.base, **(per_scale or {}).get(scale, {})}
        grid = dict((grids or {}).get(scale, p.grid))
        if scale == "smoke" and scale not in (grids or {}) and not p.smoke_full_grid:
            grid = {key: thin_grid(values) for key, values in grid.items()}
        return base, grid

    return fn


class PresetRegistry(Registry[Preset]):
    """The presets by name, in registration order; ``PRESETS[name]`` is ``PRESETS.get(name)``."""

    def __getitem__(self, name: str) -> Preset:
        return self.get(name)


#: every named experiment, in registration order (the order ``toymodels presets`` lists them)
PRESETS = PresetRegistry("preset", error=ConfigError)


def register_preset(p: Preset) -> Preset:
    """Add a named experiment (a family's package adds its own); a second one of the same name is refused."""
    return PRESETS.register(p.name, p)


def presets() -> list[Preset]:
    """Every registered preset, in registration order."""
    return PRESETS.values()


def preset(name: str, scale: str = "quick", seeds: int = 1) -> SweepConfig:
    """The SweepConfig of a named experiment at a scale, or of one part of a multi-part preset ("OPT1-LR3-adam").

    >>> preset("K1", scale="paper").grid["k"][-1]
    2048
    """
    if not isinstance(name, str):
        raise ConfigError(f"a preset is named by a string, e.g. 'LR1' (got {type(name).__name__})")
    if name not in PRESETS:
        for p in PRESETS.values():  # one part of a multi-part preset, e.g. "OPT1-LR3-adam"
            if name in p.part_names():
                return p.sweeps(scale, seeds=seeds)[p.part_names().index(name)]
    return PRESETS.get(name).config(scale, seeds=seeds)


def resolve_sweep(target: str, scale: str, sets: list[str], sweeps: list[str], seeds: int | None,
                  device: str | None) -> SweepConfig:
    """The sweep of `toymodels run TARGET`: a preset name or a config file, then --set (fixes a field, dropping it
    from the grid) and --sweep (grid).

    Every field name typed is checked first: a typo is reported before any value."""
    set_pairs, sweep_pairs = [parse_assignment(item) for item in sets], [parse_assignment(item) for item in sweeps]
    path = Path(target)
    if path.is_dir():
        raise ConfigError(f"'{target}' is a folder; give a preset name (see `toymodels presets`) or a .toml/.json "
                          "sweep file")
    if path.suffix in (".toml", ".json") or path.is_file():
        if not path.exists():
            raise ConfigError(f"config file '{target}' not found")
        if not path.is_file():  # a FIFO or a device would block or never end
            raise ConfigError(f"config file '{target}' is not a regular file")
        sweep = SweepConfig.from_file(path)
    else:
        sweep = preset(target, scale=scale)
    base_values, grid, swept = {}, dict(sweep.grid), set()
    for key, value in set_pairs:
        if key in base_values:
            raise ConfigError(f"field '{key}' is given twice ({base_values[key]} and {value}; --set, --threads); "
                              "give it once")
        base_values[key] = value
        grid.pop(key, None)
    if device is not None:
        if "device" in base_values:
            raise ConfigError("field 'device' is given by both --device and --set; give it once")
        base_values["device"] = device
        grid.pop("device", None)
    for key, value in sweep_pairs:
        if key in base_values or key in swept:
            raise ConfigError(f"field '{key}' is given twice (--set and --sweep, or two --sweep); give it once")
        swept.add(key)
        grid[key] = [v.strip() for v in value.split(",") if v.strip()]
    base = sweep.base.replace(**base_values) if base_values else sweep.base
    try:
        return SweepConfig(name=sweep.name, base=base, grid=grid, seeds=sweep.seeds if seeds is None else seeds)
    except ValueError as err:  # pydantic's ValidationError is a ValueError
        raise ConfigError(one_line(err) if hasattr(err, "errors") else str(err)) from None
