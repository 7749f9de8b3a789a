"""The paper's figures from a results folder (matplotlib, Agg, PNG).

Every figure has a builder ``*_figure(results, ...) -> Figure | None`` (None when the figure does not apply, e.g.
an EM-only figure for a TMS sweep, or no instances) and a saver ``*_plot(results, ..., out_dir=None) -> list[Path]``
that writes ``<out_dir>/<name>.png`` (default ``<results folder>/figures``) and returns the written paths (empty
when skipped). ``all_plots(results)`` writes every figure that applies; ``FIGURES`` lists them with the one-line
caption the report prints under each.

Conventions shared by all figures:

* A *setting* is one combination of the swept fields other than ``seed``. Seeds of one setting are drawn as the
  mean over the seeds that did not diverge, with a band (or error bar) from their minimum to their maximum.
* Colour encodes the first swept field (a colour bar with its values as ticks). The colour scale is logarithmic when
  the swept values are all positive and span a factor of 10 or more (lr, l1, eps, k ...). Further swept fields are
  told apart by line style (training plot) or by separate lines (summary against the swept value).
* A diverged instance (its loss or parameters became non-finite; training froze it) is never dropped: it is drawn
  as a grey dashed line ending in a cross at its divergence step, or as a grey cross labelled ``diverged``; its
  panels and titles say so. Axis limits follow the instances that did not diverge, so their curves stay readable.
* EM-only figures (SFA heatmap, bias plot, multi-feature probe, mechanism) return ``None``/``[]`` for other model
  families (``results.sweep.base.model.model != "em"``).

No pyplot is used: figures are plain ``matplotlib.figure.Figure`` objects rendered by the Agg canvas, so nothing
opens a window or touches global matplotlib state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import BoundaryNorm, Colormap, ListedColormap, LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.transforms import blended_transform_factory

from . import metrics

DIVERGED_COLOUR = "0.55"
DIVERGED_STYLE = dict(color=DIVERGED_COLOUR, linestyle=(0, (4, 2)), linewidth=1.2)
KIND_COLOURS = {"mono": "tab:blue", "false mono": "tab:red", "poly": "tab:orange", "dead": "0.6"}
LINESTYLES = ["-", ":", "-.", (0, (6, 1, 1, 1, 1, 1))]  # dashed alone is reserved for diverged instances
# Swept values spanning at least this factor (all positive) get a log colour scale and a log x axis.
LOG_SPAN = 10.0
# Loss is logged every 16 steps; for the training plot it is averaged in bins of 1/8 of a doubling of the step
# count, so the late, dense, noisy part of the curve becomes readable (about 8 points per octave).
LOSS_BINS_PER_OCTAVE = 8
DPI = 110


# ------------------------------------------------------------------------------------------------------- helpers
def _py(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _fmt(value: Any) -> str:
    """Short label for a swept value: 0.001, 1000, -0.5, 'relu'."""
    value = _py(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.3g}"


def is_em(results: Any) -> bool:
    """EM-only figures need the EM model's tensors (W1, b1, W2, E)."""
    return results.sweep.base.model.model == "em"


def setting_fields(results: Any) -> list[str]:
    """Swept fields other than seed: the ones that define a setting (seeds of a setting are aggregated)."""
    return [f for f in results.sweep.swept_fields() if f != "seed" and f in results.instances.columns]


def settings(results: Any) -> list[tuple[tuple, pd.DataFrame]]:
    """(setting values, its instances' rows) for every setting, in the sweep's grid order."""
    inst = results.instances
    fields = setting_fields(results)
    if not fields:
        return [((), inst)] if len(inst) else []
    order = {f: {_py(v): i for i, v in enumerate(results.sweep.grid.get(f, []))} for f in fields}
    keys = []
    for _, row in inst.iterrows():
        key = tuple(_py(row[f]) for f in fields)
        if key not in keys:
            keys.append(key)
    keys.sort(key=lambda k: tuple(order[f].get(v, len(order[f])) for f, v in zip(fields, k)))
    out = []
    for key in keys:
        mask = np.ones(len(inst), dtype=bool)
        for f, v in zip(fields, key):
            mask &= (inst[f].map(_py) == v).to_numpy()
        out.append((key, inst[mask]))
    return out


def setting_label(fields: Sequence[str], key: tuple) -> str:
    return ", ".join(f"{f}={_fmt(v)}" for f, v in zip(fields, key)) or "all instances"


def is_log_spaced(values: Sequence[Any]) -> bool:
    """All numeric and positive, spanning a factor >= 10: plotted on a log scale (lr, l1, eps, k)."""
    vals = [_py(v) for v in values]
    if len(vals) < 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
        return False
    lo, hi = min(vals), max(vals)
    return lo > 0 and hi / lo >= LOG_SPAN


def _is_numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(_py(v), (int, float)) and not isinstance(_py(v), bool) for v in values)


@dataclass
class ColourScale:
    """Colour of a setting from its value of the first swept field, and the matching colour bar."""

    field: str | None
    values: list[Any]
    cmap: Colormap
    norm: Normalize | None
    log: bool
    categorical: bool

    @classmethod
    def of(cls, results: Any) -> "ColourScale":
        fields = setting_fields(results)
        field = fields[0] if fields else None
        values = sorted({_py(v) for v in results.instances[field]}, key=_sort_key) if field else []
        # Viridis without its last, pale-yellow tenth: every line stays visible on white.
        base = colormaps["viridis"]
        cmap = ListedColormap(base(np.linspace(0.0, 0.88, 256)))
        if not values or len(values) == 1:
            return cls(field, values, cmap, None, False, False)
        if not _is_numeric(values):
            cat = ListedColormap(colormaps["tab10"].colors[: max(1, len(values))])
            return cls(field, values, cat, None, False, True)
        log = is_log_spaced(values)
        norm = LogNorm(min(values), max(values)) if log else Normalize(min(values), max(values))
        return cls(field, values, cmap, norm, log, False)

    def colour(self, value: Any) -> Any:
        if self.field is None or len(self.values) <= 1:
            return "tab:blue"
        value = _py(value)
        if self.categorical:
            return self.cmap(self.values.index(value) % self.cmap.N)
        return self.cmap(self.norm(value))

    def colourbar(self, fig: Figure, axes: Any, **kw: Any) -> None:
        """A colour bar (numeric) or a legend of colours (categorical); nothing for a single setting."""
        if self.field is None or len(self.values) <= 1:
            return
        if self.categorical:
            handles = [Patch(color=self.colour(v), label=_fmt(v)) for v in self.values]
            fig.legend(handles=handles, title=self.field, loc="outside right upper")
            return
        sm = ScalarMappable(norm=self.norm, cmap=self.cmap)
        cb = fig.colorbar(sm, ax=axes, pad=0.015, fraction=0.04, **kw)
        cb.set_label(f"{self.field}" + (" (log scale)" if self.log else ""))
        if len(self.values) <= 12:
            cb.set_ticks(self.values)
            cb.set_ticklabels([_fmt(v) for v in self.values])
            cb.minorticks_off()


def _sort_key(v: Any) -> tuple:
    v = _py(v)
    return (0, v, "") if isinstance(v, (int, float)) and not isinstance(v, bool) else (1, 0, str(v))


def _status_split(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    ok = rows["status"] == "ok"
    return rows[ok], rows[~ok]


def _new_figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def save(fig: Figure, path: Path) -> Path:
    """Write a figure as PNG (atomically, like every file of a results folder)."""
    from .store import atomic_write as _atomic

    path = Path(path)
    _atomic(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI))
    return path


def _out_dir(results: Any, out_dir: str | Path | None) -> Path:
    return Path(out_dir) if out_dir is not None else Path(results.folder) / "figures"


def _save_one(results: Any, fig: Figure | None, name: str, out_dir: str | Path | None) -> list[Path]:
    if fig is None:
        return []
    return [save(fig, _out_dir(results, out_dir) / f"{name}.png")]


def _wide(results: Any, name: str) -> pd.DataFrame:
    """A metric's values: index step, one column per run_id."""
    m = results.metrics
    m = m[m["name"] == name]
    if m.empty:
        return pd.DataFrame()
    return m.pivot_table(index="step", columns="run_id", values="value", aggfunc="mean").sort_index()


def _bin_loss(wide: pd.DataFrame) -> pd.DataFrame:
    """Average each run's loss in bins of 1/LOSS_BINS_PER_OCTAVE in log2(step + 1); index = bin centre in log2."""
    if wide.empty:
        return wide
    x = np.log2(wide.index.to_numpy() + 1.0)
    bins = np.floor(x * LOSS_BINS_PER_OCTAVE)
    binned = wide.groupby(bins).mean()
    # the x of a bin: mean log2(step + 1) of the steps in it
    binned.index = pd.Series(x).groupby(bins).mean().to_numpy()
    return binned


def _diverge_limits(ax: Any, ok_values: list[np.ndarray], log: bool = False) -> None:
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


def _clip(y: float, ax: Any) -> float:
    lo, hi = ax.get_ylim()
    return min(max(y, lo), hi) if math.isfinite(y) else lo


# ------------------------------------------------------------------------------------------- training plot
TRAINING_PANELS = [
    ("loss", "task loss", True),
    ("mono_per_feature", "mono neurons / features", False),
    ("mean_bias", "mean bias", False),
]


def training_figure(results: Any) -> Figure | None:
    """The paper's training plot: task loss, mono_per_feature and mean bias against log2(step + 1).

    One line per setting (mean over its non-diverged seeds, band = min-max), coloured by the swept value; diverged
    instances as grey dashed lines ending with a cross at the divergence step. Loss is averaged in bins of 1/8
    octave of the step count. Panels whose metric the model family does not report are left out.
    """
    if results.instances.empty:
        return None
    panels = [(n, label, log) for n, label, log in TRAINING_PANELS if (results.metrics["name"] == n).any()]
    if not panels:
        return None
    fields = setting_fields(results)
    sets = settings(results)
    scale = ColourScale.of(results)
    styles: dict[tuple, Any] = {}
    other = fields[1:]
    if other:
        subs = sorted({tuple(k[1:]) for k, _ in sets}, key=lambda t: [_sort_key(v) for v in t])
        styles = {sub: LINESTYLES[i % len(LINESTYLES)] for i, sub in enumerate(subs)}

    fig = _new_figure(5.0 * len(panels) + 1.2, 4.3)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    any_div, multi_seed = False, False
    for ax, (name, label, log_y) in zip(axes, panels):
        wide = _wide(results, name)
        if name == "loss":
            wide = _bin_loss(wide)
            x_of = wide.index.to_numpy()
        else:
            x_of = np.log2(wide.index.to_numpy() + 1.0)
        ok_vals = []
        for key, rows in sets:
            ok, _ = _status_split(rows)
            colour = scale.colour(key[0]) if key else "tab:blue"
            ls = styles.get(tuple(key[1:]), "-")
            cols = [r for r in ok["run_id"] if r in wide.columns]
            if cols:
                block = wide[cols].to_numpy()
                with np.errstate(all="ignore"):
                    mean = np.nanmean(block, axis=1)
                keep = np.isfinite(mean)
                ax.plot(x_of[keep], mean[keep], color=colour, linestyle=ls, linewidth=1.8)
                if len(cols) > 1:
                    multi_seed = True
                    ax.fill_between(x_of[keep], np.nanmin(block, 1)[keep], np.nanmax(block, 1)[keep],
                                    color=colour, alpha=0.2, linewidth=0)
                ok_vals.append(block.ravel())
        _diverge_limits(ax, ok_vals, log=log_y)
        if log_y:
            ax.set_yscale("log")
        # diverged instances after the limits are set, so they cannot stretch the axes
        for key, rows in sets:
            for _, r in _status_split(rows)[1].iterrows():
                any_div = True
                at = int(r["diverged_at"])
                if r["run_id"] not in wide.columns or at < 0:  # at < 0: failed, not diverged; nothing to mark
                    continue
                series = wide[r["run_id"]]
                steps = series.index.to_numpy() if name != "loss" else (2.0 ** series.index.to_numpy() - 1)
                keep = (steps <= at) & np.isfinite(series.to_numpy())
                xs, ys = x_of[keep], series.to_numpy()[keep]
                if xs.size:  # the y limits are already fixed: the line may leave the panel, it is not rescaled
                    ax.plot(xs, ys, **DIVERGED_STYLE)
                # the cross stays inside the panel (on its edge when the value is off-scale)
                ax.plot([math.log2(at + 1)], [_clip(float(ys[-1]) if ys.size else float("nan"), ax)], marker="x",
                        color=DIVERGED_COLOUR, markersize=8, markeredgewidth=2, linestyle="none", clip_on=False)
        ax.set_xlabel("log2(training step + 1)")
        ax.set_ylabel(label)
        ax.set_title(label)
        ax.grid(alpha=0.3)
        if name == "mean_bias":
            ax.axhline(0, color="0.3", linewidth=0.8)

    handles = []
    if multi_seed:
        handles.append(Patch(facecolor="0.6", alpha=0.35, label="mean of seeds; band: min-max"))
    for sub, ls in styles.items():
        handles.append(Line2D([], [], color="0.2", linestyle=ls, label=setting_label(other, sub)))
    if any_div:
        handles.append(Line2D([], [], marker="x", markeredgewidth=2, label="diverged (cross: divergence step)",
                              **DIVERGED_STYLE))
    if handles:
        axes[0].legend(handles=handles, loc="best", fontsize=8)
    scale.colourbar(fig, list(axes))
    fig.suptitle(f"{results.sweep.name}: training" + (f" (colour: {scale.field})" if scale.field else ""))
    return fig


def training_plot(results: Any, out_dir: str | Path | None = None) -> list[Path]:
    """Write figures/training.png (see ``training_figure``)."""
    return _save_one(results, training_figure(results), "training", out_dir)


# -------------------------------------------------------------------------------------------- chosen instances
def choose_instances(results: Any, n: int = 3) -> list[str]:
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
        ok, _ = _status_split(rows)
        out.append(str((ok if len(ok) else rows)["run_id"].iloc[0]))
    return out


def most_monosemantic(results: Any) -> str | None:
    """The run_id with the highest final mono_per_feature among instances that did not diverge (else the first)."""
    inst = results.instances
    if inst.empty:
        return None
    ok = inst[inst["status"] == "ok"]
    if ok.empty or "mono_per_feature" not in ok:
        return str(inst["run_id"].iloc[0])
    return str(ok.loc[ok["mono_per_feature"].idxmax(), "run_id"])


def _instance_title(results: Any, run_id: str) -> tuple[str, bool]:
    """'lr=0.03, seed 0 (r0002)' and whether the instance diverged (then the title says so)."""
    row = results.row(run_id)
    fields = setting_fields(results)
    label = setting_label(fields, tuple(_py(row[f]) for f in fields))
    title = f"{label}, seed {_py(row['seed'])} ({run_id})"
    diverged = row["status"] != "ok"
    if diverged:
        title += f"\nDIVERGED at step {int(row['diverged_at'])}: last finite parameters"
    return title, diverged


def _em_tensors(results: Any, run_id: str, step: int | None = None) -> tuple[dict[str, torch.Tensor], str]:
    p = results.params(run_id, step)
    nonlin = str(results.row(run_id)["nonlinearity"])
    return {k: v.double() for k, v in p.items()}, nonlin


def sorted_sfa(W1: torch.Tensor, b1: torch.Tensor, E: torch.Tensor, nonlinearity: str) -> dict[str, Any]:
    """Single-feature activations (positive part) ordered for display.

    Neurons most-monosemantic first (descending paper ratio; dead neurons last), then features by the position of
    their strongest neuron, so a monosemantic neuron's feature lines up on the diagonal. Returns ``sfa`` (k, N)
    ordered, the orders ``neurons`` and ``features``, ``mono`` (bool per ordered neuron) and ``n_mono``.
    """
    sfa = metrics.single_feature_activations(W1[None], b1[None], E[None], nonlinearity)[0].clamp(min=0)
    ratio = metrics.mono_ratio(sfa[None])[0]
    mono = metrics.is_mono(sfa[None])[0]
    # mono first (by ratio), then the rest by ratio; stable so equal ratios keep index order
    key = ratio.numpy() + 2.0 * mono.numpy()
    neurons = np.argsort(-key, kind="stable")
    ordered = sfa.numpy()[neurons]
    strongest = ordered.argmax(0)  # position (in the neuron order) of each feature's strongest neuron
    strongest = np.where(ordered.max(0) > 0, strongest, len(neurons))  # features nothing responds to: last
    features = np.argsort(strongest, kind="stable")
    return {"sfa": ordered[:, features], "neurons": neurons, "features": features,
            "mono": mono.numpy()[neurons], "n_mono": int(mono.sum()), "ratio": ratio.numpy()[neurons]}


def _instance_panels(results: Any, run_ids: Sequence[str] | None, height: float):
    """One panel per chosen EM instance (default: lowest, middle, highest swept value): (fig, axes, run_ids),
    or None when there is nothing to draw (not EM, no instances)."""
    if not is_em(results):
        return None
    run_ids = list(run_ids) if run_ids is not None else choose_instances(results)
    if not run_ids:
        return None
    fig = _new_figure(4.6 * len(run_ids), height)
    return fig, fig.subplots(1, len(run_ids), squeeze=False)[0], run_ids


# --------------------------------------------------------------------------------------------- SFA heatmap
def sfa_figure(results: Any, run_ids: Sequence[str] | None = None) -> Figure | None:
    """Single-feature activation heatmaps (neurons x features) of chosen instances (default: lowest, middle and
    highest swept value). Neurons most-monosemantic first, features sorted by their strongest neuron; a line marks
    where the mono neurons end. EM only."""
    panels = _instance_panels(results, run_ids, height=5.4)
    if panels is None:
        return None
    fig, axes, run_ids = panels
    for ax, rid in zip(axes, run_ids):
        p, nonlin = _em_tensors(results, rid)
        s = sorted_sfa(p["W1"], p["b1"], p["E"], nonlin)
        k, N = s["sfa"].shape
        vmax = float(s["sfa"].max()) if np.isfinite(s["sfa"]).all() and s["sfa"].max() > 0 else 1.0
        im = ax.imshow(s["sfa"], aspect="auto", cmap="magma_r", vmin=0, vmax=vmax, interpolation="nearest")
        if 0 < s["n_mono"] < k:
            ax.axhline(s["n_mono"] - 0.5, color="tab:cyan", linewidth=1.5)
        title, diverged = _instance_title(results, rid)
        ax.set_title(f"{title}\n{s['n_mono']} mono neurons = {s['n_mono'] / N:.2f} per feature", fontsize=9,
                     color="tab:red" if diverged else "black")
        ax.set_xlabel(f"feature (sorted by strongest neuron), N={N}")
        ax.set_ylabel(f"neuron (most monosemantic first), k={k}")
        fig.colorbar(im, ax=ax, shrink=0.8, pad=0.02).set_label("activation on lone feature (amplitude 1)")
    fig.suptitle(f"{results.sweep.name}: single-feature activations (line: end of the mono neurons)")
    return fig


def sfa_plot(results: Any, run_ids: Sequence[str] | None = None, out_dir: str | Path | None = None) -> list[Path]:
    """Write figures/sfa.png (see ``sfa_figure``); [] for non-EM models."""
    return _save_one(results, sfa_figure(results, run_ids), "sfa", out_dir)


# ---------------------------------------------------------------------------------------------------- biases
def _kinds(mono: np.ndarray, dead: np.ndarray, false_mono: np.ndarray | None = None) -> np.ndarray:
    kinds = np.where(mono, "mono", np.where(dead, "dead", "poly")).astype(object)
    if false_mono is not None:
        kinds[mono & false_mono] = "false mono"
    return kinds


def bias_figure(results: Any, run_ids: Sequence[str] | None = None) -> Figure | None:
    """First-layer bias of every neuron, neurons sorted by the paper's monosemanticity ratio (highest first), for
    the chosen instances; mono neurons in blue, polysemantic orange, dead grey. EM only."""
    panels = _instance_panels(results, run_ids, height=4.4)
    if panels is None:
        return None
    fig, axes, run_ids = panels
    for ax, rid in zip(axes, run_ids):
        p, nonlin = _em_tensors(results, rid)
        sfa = metrics.single_feature_activations(p["W1"][None], p["b1"][None], p["E"][None], nonlin)
        ratio = metrics.mono_ratio(sfa)[0].numpy()
        mono = metrics.is_mono(sfa)[0].numpy()
        dead = metrics.is_dead(sfa)[0].numpy()
        order = np.argsort(-(ratio + 2.0 * mono), kind="stable")
        bias = p["b1"].numpy()[order]
        kinds = _kinds(mono[order], dead[order])
        x = np.arange(len(order))
        for kind in ("mono", "poly", "dead"):
            sel = kinds == kind
            if sel.any():
                ax.scatter(x[sel], bias[sel], s=12, color=KIND_COLOURS[kind],
                           label=f"{kind} ({int(sel.sum())}), mean bias {bias[sel].mean():.3g}")
        ax.axhline(0, color="0.3", linewidth=0.8)
        if 0 < mono.sum() < len(order):
            ax.axvline(mono.sum() - 0.5, color="tab:blue", linewidth=0.8, linestyle=":")
        title, diverged = _instance_title(results, rid)
        ax.set_title(title, fontsize=9, color="tab:red" if diverged else "black")
        ax.set_xlabel("neuron, sorted by monosemanticity ratio (highest first)")
        ax.set_ylabel("bias b1")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    fig.suptitle(f"{results.sweep.name}: biases of mono, polysemantic and dead neurons")
    return fig


def bias_plot(results: Any, run_ids: Sequence[str] | None = None, out_dir: str | Path | None = None) -> list[Path]:
    """Write figures/bias.png (see ``bias_figure``); [] for non-EM models."""
    return _save_one(results, bias_figure(results, run_ids), "bias", out_dir)


# ------------------------------------------------------------------------------------- final values vs swept
SWEPT_PANELS = [
    ("mono_per_feature", "mono neurons / features"),
    ("features_covered", "features covered (fraction)"),
    ("final_loss", "final task loss"),
]


def swept_figure(results: Any) -> Figure | None:
    """Final mono_per_feature, features_covered and loss against the first swept field (one line per value of the
    other swept fields): mean over non-diverged seeds, error bars min-max, dots = single seeds. The mono panel also
    shows (mono - false_mono) / N dotted: neurons still monosemantic under the multi-feature probe. Diverged
    instances are grey crosses on the bottom edge of each panel."""
    inst = results.instances
    if inst.empty:
        return None
    panels = [(n, lab) for n, lab in SWEPT_PANELS if n in inst.columns]
    if not panels:
        return None
    fields = setting_fields(results)
    xfield = fields[0] if fields else None
    xvals = sorted({_py(v) for v in inst[xfield]}, key=_sort_key) if xfield else ["all"]
    numeric_x = bool(xfield) and _is_numeric(xvals)
    log_x = numeric_x and is_log_spaced(xvals)

    def xpos(v: Any) -> float:
        return float(_py(v)) if numeric_x else float(xvals.index(_py(v)) if xfield else 0)

    sets = settings(results)
    sub_keys = sorted({tuple(k[1:]) for k, _ in sets}, key=lambda t: [_sort_key(v) for v in t])
    sub_colours = {s: colormaps["tab10"](i % 10) for i, s in enumerate(sub_keys)}
    if len(sub_keys) == 1:
        sub_colours = {sub_keys[0]: "tab:blue"}

    multi_seed = any((rows["status"] == "ok").sum() > 1 for _, rows in sets)
    fig = _new_figure(4.6 * len(panels), 4.2)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, label) in zip(axes, panels):
        if log_x:
            ax.set_xscale("log")
        for sub in sub_keys:
            xs, means, lo, hi = [], [], [], []
            for key, rows in sets:
                if tuple(key[1:]) != sub:
                    continue
                ok, _ = _status_split(rows)
                vals = ok[name].to_numpy(dtype=float)
                vals = vals[np.isfinite(vals)]
                x = xpos(key[0]) if key else 0.0
                if vals.size:
                    xs.append(x)
                    means.append(vals.mean())
                    lo.append(vals.mean() - vals.min())
                    hi.append(vals.max() - vals.mean())
                    if vals.size > 1:
                        ax.scatter([x] * vals.size, vals, s=10, color=sub_colours[sub], alpha=0.45, zorder=3)
            if xs:
                lab = setting_label(fields[1:], sub) if fields[1:] else (
                    "mean over seeds (bars: min-max)" if multi_seed else "final value")
                ax.errorbar(xs, means, yerr=[lo, hi], color=sub_colours[sub], marker="o", capsize=3,
                            linewidth=1.6, label=lab)
            if name == "mono_per_feature" and "false_mono" in inst.columns:
                pts = []
                for key, rows in sets:
                    if tuple(key[1:]) != sub:
                        continue
                    ok, _ = _status_split(rows)
                    N = ok["N"].to_numpy(dtype=float)
                    v = (ok["mono_neurons"].to_numpy(dtype=float) - ok["false_mono"].to_numpy(dtype=float)) / N
                    if v.size:
                        pts.append((xpos(key[0]) if key else 0.0, float(np.mean(v))))
                if pts:
                    ax.plot(*zip(*pts), color=sub_colours[sub], linestyle=":", marker=".",
                            label="mono beyond multi-feature probe" if sub == sub_keys[0] else None)
        # diverged: crosses on the bottom edge (x in data, y in axes coordinates)
        trans = blended_transform_factory(ax.transData, ax.transAxes)
        div = inst[inst["status"] != "ok"]
        if len(div):
            xs = [xpos(v) for v in div[xfield]] if xfield else [0.0] * len(div)
            ax.scatter(xs, [0.03] * len(xs), transform=trans, marker="x", s=60, linewidths=2,
                       color=DIVERGED_COLOUR, label=f"diverged ({len(div)})", zorder=4, clip_on=False)
        ax.set_ylabel(label)
        ax.set_title(label)
        ax.set_xlabel((xfield + (" (log scale)" if log_x else "")) if xfield else "")
        if xfield and (not numeric_x or len(xvals) <= 12):
            ax.set_xticks([xpos(v) for v in xvals])
            ax.set_xticklabels([_fmt(v) for v in xvals], rotation=30 if len(xvals) > 6 else 0)
            ax.minorticks_off()
        elif not xfield:
            ax.set_xticks([0.0])
            ax.set_xticklabels(["all instances"])
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: ("beyond" in labels[i], "diverged" in labels[i]))
    axes[0].legend([handles[i] for i in order], [labels[i] for i in order], fontsize=7, loc="best")
    fig.suptitle(f"{results.sweep.name}: final values" + (f" vs {xfield}" if xfield else ""))
    return fig


def swept_plot(results: Any, out_dir: str | Path | None = None) -> list[Path]:
    """Write figures/swept.png (see ``swept_figure``)."""
    return _save_one(results, swept_figure(results), "swept", out_dir)


# ------------------------------------------------------------------------------------- multi-feature probe
def probe_figure(results: Any, run_id: str | None = None) -> Figure | None:
    """Multi-feature probe of one instance (default: the most monosemantic one that did not diverge).

    Left: does neuron n fire when every feature but j is on (neurons and features ordered as in the SFA heatmap)?
    Middle and right: per neuron, how many all-but-one inputs and how many context features make it fire, against
    its monosemanticity ratio. Red = "false mono": mono by the single-feature probe but firing without its own
    feature (the ``false_mono`` metric, same probe inputs). EM only.
    """
    from .analysis import instance_config
    from .evaluate import em_probe

    if not is_em(results):
        return None
    run_id = run_id or most_monosemantic(results)
    if run_id is None:
        return None
    p, nonlin = _em_tensors(results, run_id)
    cfg = instance_config(results, run_id)
    probe = em_probe([cfg], {k: p[k][None] for k in ("W1", "b1", "E")})
    s = sorted_sfa(p["W1"], p["b1"], p["E"], nonlin)
    W = metrics.net_map(p["W1"][None], p["E"][None])[0]
    # all features on but j: pre = sum_f W[:, f] - W[:, j] + b (as in metrics.multi_feature_probe)
    fires_abo = (metrics.activation(W.sum(-1, keepdim=True) - W + p["b1"][:, None], nonlin) > 0).numpy()
    grid = fires_abo[s["neurons"]][:, s["features"]]
    k, N = grid.shape

    sfa = metrics.single_feature_activations(p["W1"][None], p["b1"][None], p["E"][None], nonlin)
    ratio = metrics.mono_ratio(sfa)[0].numpy()
    kinds = _kinds(probe["mono"][0].numpy(), metrics.is_dead(sfa)[0].numpy(), probe["false_mono_neurons"][0].numpy())

    fig = _new_figure(15.5, 4.8)
    axes = fig.subplots(1, 3, width_ratios=[1.1, 1, 1])
    ax = axes[0]
    ax.imshow(grid, aspect="auto", cmap=ListedColormap(["white", "tab:purple"]),
              norm=BoundaryNorm([-0.5, 0.5, 1.5], 2), interpolation="nearest")
    if 0 < s["n_mono"] < k:
        ax.axhline(s["n_mono"] - 0.5, color="black", linewidth=1.2, linestyle="--")
        ax.text(N - 1, s["n_mono"] - 1, f"{s['n_mono']} mono above", ha="right", va="bottom", fontsize=8,
                bbox=dict(facecolor="white", edgecolor="none", alpha=0.8, pad=1))
    ax.set_xlabel("held-out feature j (SFA order)")
    ax.set_ylabel("neuron (most monosemantic first)")
    ax.set_title("fires with all features on but j (purple)", fontsize=10)
    jitter = np.random.default_rng(0).uniform(-0.25, 0.25, size=k)  # fixed: only separates equal counts
    for ax, col, ylabel in ((axes[1], "fires_all_but_one", f"all-but-one inputs that fire it (of {N})"),
                            (axes[2], "context_features", "context features (random inputs, own feature off)")):
        y = probe[col][0].numpy().astype(float)
        for kind in ("poly", "dead", "mono", "false mono"):
            sel = kinds == kind
            if sel.any():
                ax.scatter(ratio[sel], y[sel] + jitter[sel], s=14, color=KIND_COLOURS[kind], alpha=0.8,
                           label=f"{kind} ({int(sel.sum())})", zorder=3 if "mono" in kind else 2)
        ax.axvline(metrics.MONO_THRESHOLD, color="0.4", linewidth=0.8, linestyle=":")
        ax.set_xlabel("monosemanticity ratio max/sum (mono > 0.999)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="best")
    axes[1].set_title("dense context: all but one feature on", fontsize=10)
    axes[2].set_title("sparse context: training-like inputs", fontsize=10)
    title, diverged = _instance_title(results, run_id)
    n_false = int(probe["false_mono"][0])
    fig.suptitle(f"{results.sweep.name}: multi-feature probe of {title.splitlines()[0]}; "
                 f"{n_false} of {s['n_mono']} mono neurons fire without their feature"
                 + ("\nDIVERGED: last finite parameters" if diverged else ""),
                 color="tab:red" if diverged else "black")
    return fig


def probe_plot(results: Any, run_id: str | None = None, out_dir: str | Path | None = None) -> list[Path]:
    """Write figures/probe.png (see ``probe_figure``); [] for non-EM models."""
    return _save_one(results, probe_figure(results, run_id), "probe", out_dir)


# ------------------------------------------------------------------------------------------------ mechanism
def mechanism_figure(results: Any, run_id: str | None = None) -> Figure | None:
    """How the mono and polysemantic blocks of one instance compute (``analysis.explain_summary``, PAPERS.md §1.6).

    (a) singular values of the polysemantic block's linear map M = W2[:, poly] W1[poly] E (its numerical rank, at
    most m); (b) M itself, to compare with the fit c E^T E + d; (c) threshold and slope of each mono neuron's
    response to its feature's amplitude; (d) lone-feature loss of the full model, each block alone and no
    neurons. EM only; default instance: the most monosemantic one that did not diverge.
    """
    from .analysis import explain_summary

    if not is_em(results):
        return None
    run_id = run_id or most_monosemantic(results)
    if run_id is None:
        return None
    p, nonlin = _em_tensors(results, run_id)
    s = explain_summary(p["W1"], p["b1"], p["W2"], p["E"], nonlin)
    m = p["E"].shape[0]
    fig = _new_figure(12.5, 8.6)
    (ax_sv, ax_map), (ax_mono, ax_loss) = fig.subplots(2, 2)

    sv = s["poly_singular_values"].numpy()
    if sv.size and sv[0] > 0:
        rel = sv / sv[0]
        idx = np.arange(1, sv.size + 1)
        keep = rel > 1e-12  # exact zeros cannot go on a log axis
        ax_sv.semilogy(idx[keep], rel[keep], marker="o", markersize=3, color="tab:orange")
        ax_sv.axhline(0.01, color="0.4", linewidth=0.8, linestyle=":", label="rank tolerance (1%)")
        ax_sv.axvline(m + 0.5, color="tab:purple", linewidth=1, label=f"m = {m} (rank bound)")
        ax_sv.legend(fontsize=8)
    else:
        ax_sv.text(0.5, 0.5, "no polysemantic neurons", ha="center", va="center", transform=ax_sv.transAxes)
    ax_sv.set_xlabel("singular value index")
    ax_sv.set_ylabel("singular value / largest")
    ax_sv.set_title(f"(a) polysemantic block ({s['n_poly']} neurons): numerical rank {s['poly_rank']}", fontsize=10)
    ax_sv.grid(alpha=0.3)

    M = s["poly_map"].numpy()
    lim = float(np.abs(M).max()) if M.size and np.isfinite(M).all() and np.abs(M).max() > 0 else 1.0
    im = ax_map.imshow(M, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto", interpolation="nearest")
    fig.colorbar(im, ax=ax_map, shrink=0.85).set_label("M[output, feature]")
    fit = (f"fit M = c E^T E + d: c={s['gram_c']:.3g}, d={s['gram_d']:.3g}, rel. residual {s['gram_residual']:.2f}"
           if math.isfinite(s["gram_c"]) else "no feature-to-feature fit (re-projector output)")
    ax_map.set_title(f"(b) polysemantic block map M\n{fit}", fontsize=10)
    ax_map.set_xlabel("input feature")
    ax_map.set_ylabel("output")

    table = s["neurons"]
    mono = table[table["kind"] == "mono"]
    if len(mono):
        sc = ax_mono.scatter(mono["threshold"], mono["slope"], c=mono["bias"], cmap="coolwarm", s=18,
                             norm=Normalize(-max(abs(mono["bias"]).max(), 1e-9), max(abs(mono["bias"]).max(), 1e-9)))
        fig.colorbar(sc, ax=ax_mono, shrink=0.85).set_label("bias")
        ax_mono.axvline(0, color="0.4", linewidth=0.8)
        ax_mono.set_title(f"(c) {len(mono)} mono neurons: median threshold {mono['threshold'].median():.3g}, "
                          f"median slope {mono['slope'].median():.3g}", fontsize=10)
    else:
        ax_mono.text(0.5, 0.5, "no monosemantic neurons", ha="center", va="center", transform=ax_mono.transAxes)
        ax_mono.set_title("(c) mono neurons", fontsize=10)
    ax_mono.set_xlabel("threshold: feature amplitude where the neuron turns on (-b / w)")
    ax_mono.set_ylabel("slope of its output vs amplitude")
    ax_mono.grid(alpha=0.3)

    names = ["full model", "mono only", "poly only", "no neurons"]
    vals = [s["loss_full"], s["loss_mono"], s["loss_poly"], s["loss_zero"]]
    if all(math.isfinite(v) for v in vals):
        bars = ax_loss.bar(names, vals, color=["tab:green", "tab:blue", "tab:orange", "0.6"])
        ax_loss.bar_label(bars, fmt="%.3g", fontsize=8)
        ax_loss.set_ylabel("lone-feature loss (amplitudes 0..1)")
        if max(vals) / max(min(v for v in vals if v > 0) if any(v > 0 for v in vals) else 1, 1e-30) > 1e3:
            ax_loss.set_yscale("log")
    else:
        ax_loss.text(0.5, 0.5, "block losses need the decoder / abs output (one per feature)", ha="center",
                     va="center", transform=ax_loss.transAxes, fontsize=9)
    ax_loss.set_title("(d) loss of each block alone on lone features", fontsize=10)
    ax_loss.grid(alpha=0.3, axis="y")
    title, diverged = _instance_title(results, run_id)
    fig.suptitle(f"{results.sweep.name}: mechanism of {title}", color="tab:red" if diverged else "black")
    return fig


def mechanism_plot(results: Any, run_id: str | None = None, out_dir: str | Path | None = None) -> list[Path]:
    """Write figures/mechanism.png (see ``mechanism_figure``); [] for non-EM models."""
    return _save_one(results, mechanism_figure(results, run_id), "mechanism", out_dir)


# ---------------------------------------------------------------------------------------------------- all
@dataclass(frozen=True)
class FigureSpec:
    name: str
    plot: Callable[..., list[Path]]
    caption: str
    em_only: bool


FIGURES: list[FigureSpec] = [
    FigureSpec("training", training_plot,
               "Training: task loss, mono neurons per feature and mean bias vs log2(step+1), one line per setting "
               "(mean over seeds, band min-max, grey dashed = diverged). Look for monosemanticity rising as the "
               "mean bias turns negative, at equal or lower loss.", False),
    FigureSpec("swept", swept_plot,
               "Final values vs the swept field (dots = seeds, bars = min-max, grey crosses = diverged). Look for "
               "settings that reach more mono neurons per feature and more covered features without a higher loss.",
               False),
    FigureSpec("sfa", sfa_plot,
               "Single-feature activations of three instances (lowest, middle, highest swept value), neurons "
               "most-monosemantic first. Look for a clean diagonal above the cyan line (one feature per neuron) "
               "and dense rows below it (polysemantic neurons).", True),
    FigureSpec("bias", bias_plot,
               "Biases sorted by monosemanticity ratio. Look for monosemantic neurons at moderate negative bias "
               "and polysemantic ones near zero or positive.", True),
    FigureSpec("probe", probe_plot,
               "Multi-feature probe of the most monosemantic instance. Look for red points: neurons the "
               "single-feature probe calls monosemantic but that fire without their own feature.", True),
    FigureSpec("mechanism", mechanism_plot,
               "Mechanism of the most monosemantic instance. Look for a polysemantic block of rank at most m close "
               "to c E^T E + d, mono neurons with positive thresholds, and a full model that beats each block "
               "alone.", True),
]


def all_plots(results: Any, out_dir: str | Path | None = None) -> dict[str, list[Path]]:
    """Write every figure that applies to this sweep; returns {figure name: written paths}."""
    return {spec.name: spec.plot(results, out_dir=out_dir) for spec in FIGURES}
