"""What every figure of a results folder shares: the colour scale, diverged-instance styling, chosen instances and
the file each figure is written to.

Conventions (the report's figures, the family figures and the dashboard follow them):

* A *setting* is one combination of the swept fields other than ``seed`` (``toymodels.results.tables.settings``). Seeds of
  one setting are drawn as the mean over the seeds that did not diverge, with a band (or error bar) min-max.
* Colour encodes the first swept field through :class:`ColourScale`, the one colour scale of the package (the
  matplotlib figures and the plotly dashboard both use it): viridis for numbers, logarithmic when the values are all
  positive and span a factor of ``LOG_SPAN`` or more (lr, l1, eps, k ...); a categorical palette otherwise.
* A diverged instance (its loss or parameters became non-finite; training froze it) is never dropped: it is drawn
  in ``DIVERGED_COLOUR`` (dashed line, cross at its divergence step) and its titles say so. Axis limits follow the
  instances that did not diverge (``fit_to_trained``), so their curves stay readable.

No pyplot: figures are made by :func:`toymodels.plotting.save.new_figure` and written by ``save_figure``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Colormap, ListedColormap, LogNorm, Normalize, to_hex
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from toymodels.results.store import Results
from toymodels.results.tables import format_value, is_number, py_value, setting_fields, setting_label, settings
from toymodels.plotting.save import new_figure, save_figure

DIVERGED_COLOUR = "0.55"
DIVERGED_STYLE = dict(color=DIVERGED_COLOUR, linestyle=(0, (4, 2)), linewidth=1.2)
LINESTYLES = ["-", ":", "-.", (0, (6, 1, 1, 1, 1, 1))]  # dashed alone is reserved for diverged instances
# Swept values spanning at least this factor (all positive) get a log colour scale and a log x axis.
LOG_SPAN = 10.0
# The part of viridis used: without its last, pale-yellow tenth every line stays visible on white.
COLOUR_RANGE = (0.0, 0.88)
SINGLE_COLOUR = to_hex("tab:blue")  # one setting (nothing to tell apart)
CATEGORY_COLOURS = [to_hex(c) for c in colormaps["tab10"].colors]


# ---------------------------------------------------------------------------------------------- swept values
def sort_key(value: Any) -> tuple:
    """Numbers first, by value, then everything else by its text (so mixed int/float values sort as numbers)."""
    value = py_value(value)
    return (0, value, "") if is_number(value) else (1, 0, str(value))


def is_log_spaced(values: Sequence[Any]) -> bool:
    """All numeric and positive, spanning a factor >= LOG_SPAN: plotted on a log scale (lr, l1, eps, k)."""
    vals = [py_value(v) for v in values]
    if len(vals) < 2 or not all(is_number(v) for v in vals):
        return False
    lo, hi = min(vals), max(vals)
    return lo > 0 and hi / lo >= LOG_SPAN


@dataclass
class ColourScale:
    """Colour of each value of one field: viridis for numbers (log when ``is_log_spaced``), else a palette.

    ``values`` are made distinct and sorted (``sort_key``). A single value (or none) is drawn in ``SINGLE_COLOUR``.
    ``colour(v)`` is a hex string, usable by matplotlib and plotly alike; ``fraction(v)`` is where ``v`` sits on the
    scale (0..1) and ``position(v)`` the coordinate of a colour bar (log10 of the value on a log scale).
    """

    field: str | None
    values: list[Any]

    def __post_init__(self) -> None:
        self.values = sorted({py_value(v) for v in self.values}, key=sort_key)
        self.numeric = len(self.values) > 1 and all(is_number(v) for v in self.values)
        self.categorical = len(self.values) > 1 and not self.numeric
        self.log = self.numeric and is_log_spaced(self.values)

    @classmethod
    def of(cls, results: Results) -> "ColourScale":
        """The scale of a results folder: its first setting field (swept, other than seed)."""
        fields = setting_fields(results)
        return cls(fields[0], list(results.instances[fields[0]])) if fields else cls(None, [])

    def position(self, value: Any) -> float:
        value = float(py_value(value))
        return math.log10(value) if self.log else value

    @property
    def lo(self) -> float:
        return self.position(self.values[0]) if self.numeric else 0.0

    @property
    def hi(self) -> float:
        return self.position(self.values[-1]) if self.numeric else 1.0

    def fraction(self, value: Any) -> float:
        value = py_value(value)
        if self.numeric:
            span = self.hi - self.lo
            return (self.position(value) - self.lo) / span if span > 0 else 0.5
        return self.values.index(value) / max(1, len(self.values) - 1) if value in self.values else 0.0

    @property
    def cmap(self) -> Colormap:
        base = colormaps["viridis"]
        return ListedColormap(base(np.linspace(*COLOUR_RANGE, 256)))

    def colour(self, value: Any) -> str:
        value = py_value(value)
        if self.categorical:
            known = value in self.values
            return CATEGORY_COLOURS[self.values.index(value) % len(CATEGORY_COLOURS)] if known else "#444444"
        if not self.numeric:
            return SINGLE_COLOUR
        return to_hex(self.cmap(self.fraction(value)))

    def gradient(self, n: int = 11) -> list[str]:
        """``n`` evenly spaced colours of the numeric scale, low to high (a plotly colour bar)."""
        return [to_hex(self.cmap(t)) for t in np.linspace(0.0, 1.0, n)]

    def tick_labels(self) -> list[str]:
        return [format_value(v) for v in self.values]

    def colourbar(self, fig: Figure, axes: Any, **kw: Any) -> None:
        """A matplotlib colour bar (numeric) or a legend of colours (categorical); nothing for a single setting."""
        if self.categorical:
            handles = [Patch(color=self.colour(v), label=format_value(v)) for v in self.values]
            fig.legend(handles=handles, title=self.field, loc="outside right upper")
            return
        if not self.numeric:
            return
        lo, hi = self.values[0], self.values[-1]
        norm = LogNorm(lo, hi) if self.log else Normalize(lo, hi)
        cb = fig.colorbar(ScalarMappable(norm=norm, cmap=self.cmap), ax=axes, pad=0.015, fraction=0.04, **kw)
        cb.set_label(f"{self.field}" + (" (log scale)" if self.log else ""))
        if len(self.values) <= 12:
            cb.set_ticks(self.values)
            cb.set_ticklabels(self.tick_labels())
            cb.minorticks_off()


# ------------------------------------------------------------------------------------------------- instances
def status_split(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows that trained, rows that did not: diverged or failed)."""
    ok = rows["status"] == "ok"
    return rows[ok], rows[~ok]


def choose_instances(results: Results, n: int = 3) -> list[str]:
    """Up to n run_ids spread over the settings: the lowest, middle and highest swept value (first seed that did
    not diverge in each setting; a diverged one only if the whole setting diverged)."""
    sets = settings(results)
    if not sets:
        return []
    if len(sets) <= n:
        picks = sets
    else:
        idx = sorted({round(i * (len(sets) - 1) / (n - 1)) for i in range(n)}) if n > 1 else [0]
        picks = [sets[i] for i in idx]
    out = []
    for _, rows in picks:
        ok, _ = status_split(rows)
        out.append(str((ok if len(ok) else rows)["run_id"].iloc[0]))
    return out


def instance_title(results: Results, run_id: str) -> tuple[str, bool]:
    """'lr=0.03, seed 0 (r0002)' and whether the instance diverged (then the title says so)."""
    row = results.row(run_id)
    fields = setting_fields(results)
    label = setting_label(fields, tuple(py_value(row[f]) for f in fields))
    title = f"{label}, seed {py_value(row['seed'])} ({run_id})"
    diverged = row["status"] != "ok"
    if diverged:
        title += f"\nDIVERGED at step {int(row['diverged_at'])}: last finite parameters"
    return title, diverged


def instance_panels(
    results: Results, run_ids: Sequence[str] | None, height: float
) -> tuple[Figure, Any, list[str]] | None:
    """A figure with one panel per chosen instance (default: ``choose_instances``): (fig, axes, run_ids), or None
    when there are no instances."""
    run_ids = list(run_ids) if run_ids is not None else choose_instances(results)
    if not run_ids:
        return None
    fig = new_figure(4.6 * len(run_ids), height)
    return fig, fig.subplots(1, len(run_ids), squeeze=False)[0], run_ids


# ---------------------------------------------------------------------------------------------------- axes
def fit_to_trained(ax: Any, ok_values: list[np.ndarray], log: bool = False) -> None:
    """Fit the y range to the instances that did not diverge (diverged ones may run to 1e20)."""
    vals = np.concatenate([v[np.isfinite(v)] for v in ok_values]) if ok_values else np.array([])
    if log:
        vals = vals[vals > 0]
    if vals.size == 0:
        return
    lo, hi = float(vals.min()), float(vals.max())
    if log:
        pad = (hi / lo) ** 0.05 if hi > lo else 1.5
        ax.set_ylim(lo / pad, hi * pad)
    else:
        pad = 0.06 * (hi - lo) if hi > lo else max(0.05, 0.1 * abs(hi))
        ax.set_ylim(lo - pad, hi + pad)


def clip_to_axes(y: float, ax: Any) -> float:
    """``y`` moved inside the panel's y range (its bottom edge when not finite)."""
    lo, hi = ax.get_ylim()
    return min(max(y, lo), hi) if math.isfinite(y) else lo


# ---------------------------------------------------------------------------------------------------- files
def write_figure(results: Results, fig: Figure | None, name: str, out_dir: str | Path | None) -> list[Path]:
    """Write ``fig`` as ``<out_dir>/<name>.png`` (default ``<results folder>/figures``): [path], or [] for None."""
    if fig is None:
        return []
    folder = Path(out_dir) if out_dir is not None else Path(results.folder) / "figures"
    return [save_figure(fig, folder / f"{name}.png")]
