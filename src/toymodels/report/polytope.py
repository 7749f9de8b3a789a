"""The polytope lens in the report of any folder of a family with ReLU layers (docs/papers.md §6): three figures
and a section of ``report.html``, from ``families.polytope`` (the lens table at the final checkpoints, and one
instance's slice).

* ``polytope_slice``: up to three instances' 2D slice through the plane of features 0 and 1 in the hidden space,
  coloured by polytope, with the first layer's boundary lines and every feature's direction (arrows) that lies
  mostly in the plane (TMS with n = 5, m = 2: the pentagon and its five lines);
* ``polytope_density``: where the boundaries sit along paths from feature i to feature j, and along one feature;
* ``polytope_lens``: code purity and completeness against the neuron baseline, boundary density between and within
  features, and the validity range, against the swept field;
* :func:`polytope_html`: the lens table per setting (seeds averaged) and what the measures mean.

Nothing is drawn for a family without the ``relu_layers`` hook or a model without ReLU (e.g. GeLU).
"""

from __future__ import annotations

import functools
import html
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from toymodels.families.base import FigureSpec
from toymodels.families.polytope import has_lens, lens_table, slice_view
from toymodels.plotting.common import (
    ColourScale,
    choose_instances,
    instance_title,
    is_log_spaced,
    sort_key,
    write_figure,
)
from toymodels.plotting.save import new_figure
from toymodels.results.store import Results, ResultsError, load
from toymodels.results.tables import (
    format_number,
    format_value,
    py_value,
    setting_fields,
)
from toymodels.results.verify import signature

#: lines of the purity panel: (column, label, style)
PURITY_LINES = (("code_purity", "code purity", "-"), ("code_completeness", "code completeness", "--"),
                ("neuron_purity", "neuron purity", "-."), ("neuron_completeness", "neuron completeness", ":"))
#: the columns of the report's table, with their headers
HTML_COLUMNS = (("code_purity", "code purity"), ("code_completeness", "code completeness"),
                ("neuron_purity", "neuron purity"), ("neuron_completeness", "neuron completeness"),
                ("origin_share", "origin share"), ("ray_codes", "codes per ray"), ("data_codes", "data codes"),
                ("between_density", "density between"), ("within_density", "density within"),
                ("density_ratio", "between / within"), ("validity_lower", "valid from (x top)"),
                ("validity_upper", "valid to (x top)"))


#: what keeps the lens from a folder whose models it could read: an SAE's source folder gone or damaged
LENS_UNAVAILABLE = (ResultsError, OSError, KeyError)


@functools.lru_cache(maxsize=4)
def _final(folder: str, state: tuple) -> Any:
    return lens_table(load(folder), final_only=True)


def final_lens(results: Results) -> tuple[Any, str]:
    """(the lens table at the final checkpoints, read once per folder state for the three figures and the section;
    why there is none, or ""): an empty table and the reason where the lens cannot draw its samples."""
    try:
        return _final(str(Path(results.folder).resolve()), signature(Path(results.folder))), ""
    except LENS_UNAVAILABLE as err:
        import pandas as pd  # deferred: ~70 MB that a training process does not need

        return pd.DataFrame(), f"the polytope lens cannot read this folder's training data: {err}"


def _slice(results: Results, run_id: str) -> dict[str, Any] | None:
    try:
        return slice_view(results, run_id)
    except LENS_UNAVAILABLE:
        return None


def _x_axis(table: Any, results: Results) -> tuple[str | None, list[Any], bool, bool]:
    fields = [f for f in setting_fields(results) if f in table.columns]
    if not fields:
        return None, ["all"], False, False
    values = sorted({py_value(v) for v in table[fields[0]]}, key=sort_key)
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    return fields[0], values, numeric, numeric and is_log_spaced(values)


def slice_figure(results: Results, n: int = 3) -> Figure | None:
    """Polytopes of up to ``n`` instances in the plane of features 0 and 1 (module docstring)."""
    if not has_lens(results) or results.instances.empty:
        return None
    views = [(r, v) for r in choose_instances(results, n) if (v := _slice(results, r)) is not None]
    if not views:
        return None
    fig = new_figure(4.4 * len(views), 4.6)
    axes = fig.subplots(1, len(views), squeeze=False)[0]
    cmap = colormaps["tab20"]
    for ax, (run_id, view) in zip(axes, views):
        ext = view["extent"]
        colours = cmap((view["ids"] * 7 % 20) / 19.0)  # neighbours by id get distant colours
        ax.imshow(colours, origin="lower", extent=(-ext, ext, -ext, ext), alpha=0.55, interpolation="nearest")
        xs = np.linspace(-ext, ext, 2)
        for p, q, r in view["lines"]:
            if abs(q) > abs(p):
                ax.plot(xs, (r - p * xs) / q, color="0.15", linewidth=0.7)
            elif abs(p) > 0:
                ax.plot((r - q * xs) / p, xs, color="0.15", linewidth=0.7)
        for f, ((u, v), share) in enumerate(zip(view["arrows"], view["in_plane"])):
            if share > 0.5:
                main = f in view["features"]
                style = {"arrowstyle": "->", "color": "crimson" if main else "k", "lw": 1.6 if main else 0.8}
                ax.annotate("", (u, v), (0, 0), arrowprops=style)
                ax.text(u * 1.06, v * 1.06, str(f), fontsize=7, ha="center", va="center")
        ax.set_xlim(-ext, ext)
        ax.set_ylim(-ext, ext)
        ax.set_aspect("equal")
        title, _ = instance_title(results, run_id)
        n_codes = int(view["ids"].max()) + 1
        ax.set_title(f"{title}\n{n_codes} polytopes in view", fontsize=8)
        i, j = view["features"]
        ax.set_xlabel(f"along feature {i}")
        ax.set_ylabel(f"feature {j}'s direction, orthogonalised")
    return fig


def slice_plot(results: Results, out_dir: str | Path | None = None) -> list[Path]:
    return write_figure(results, slice_figure(results), "polytope_slice", out_dir)


def density_figure(results: Results) -> Figure | None:
    """Mean boundaries per path in each tenth of the path, between two features and along one (module
    docstring), one line per setting (seeds averaged)."""
    if not has_lens(results) or results.instances.empty:
        return None
    table, _ = final_lens(results)
    if table.empty:
        return None
    scale = ColourScale.of(results)
    field = scale.field if scale.field in table.columns else None
    groups = table.groupby(field, sort=False) if field else [("all", table)]
    fig = new_figure(10, 3.8)
    axes = fig.subplots(1, 2, squeeze=False)[0]
    for ax, kind, title in ((axes[0], "between", "paths from feature i (0) to feature j (1)"),
                            (axes[1], "within", "one feature, from 10% to 90% of its magnitudes")):
        cols = sorted((c for c in table.columns if c.startswith(f"{kind}_profile_")), key=lambda c: int(c.rsplit("_")[-1]))
        centres = (np.arange(len(cols)) + 0.5) / len(cols)
        for value, rows in groups:
            ax.plot(centres, rows[cols].to_numpy(dtype=float).mean(0), marker=".", color=scale.colour(value),
                    label=format_value(value) if field else None)
        ax.set_title(f"boundaries along {title}", fontsize=9)
        ax.set_xlabel("position along the path")
        ax.set_ylabel("boundaries per path per tenth")
        ax.grid(alpha=0.3)
    if field:
        axes[0].legend(title=field, fontsize=7)
    return fig


def density_plot(results: Results, out_dir: str | Path | None = None) -> list[Path]:
    return write_figure(results, density_figure(results), "polytope_density", out_dir)


def lens_figure(results: Results) -> Figure | None:
    """Purity, boundary density and validity against the swept field (module docstring)."""
    if not has_lens(results) or results.instances.empty:
        return None
    table, _ = final_lens(results)
    if table.empty:
        return None
    field, values, numeric, log = _x_axis(table, results)
    xs = [float(v) for v in values] if numeric else list(range(len(values)))

    def series(col: str) -> tuple[list[float], list[float]]:
        ok = table[table["status"] == "ok"]
        rows = [ok[ok[field] == v] if field else ok for v in values]
        means = [float(np.nanmean(r[col].to_numpy(dtype=float))) if len(r) else float("nan") for r in rows]
        return xs, means

    fig = new_figure(13, 3.8)
    axes = fig.subplots(1, 3, squeeze=False)[0]
    for col, label, style in PURITY_LINES:
        axes[0].plot(*series(col), linestyle=style, marker="o", label=label, color="C0" if "code" in col else "C1")
    axes[0].set_title("lone-feature inputs: polytopes vs most active unit", fontsize=9)
    axes[0].set_ylim(-0.02, 1.02)
    for col, label, colour in (("between_density", "between two features", "C2"),
                               ("within_density", "along one feature", "C4")):
        axes[1].plot(*series(col), marker="o", label=label, color=colour)
    axes[1].set_title("boundaries per unit length", fontsize=9)
    for col, label, colour in (("validity_upper", "valid up to", "C3"), ("validity_lower", "valid from", "C5")):
        axes[2].plot(*series(col), marker="o", label=label, color=colour)
    axes[2].axhline(1.0, color="0.5", linewidth=0.8, linestyle=":")
    axes[2].set_title("validity range (median feature), x its top training magnitude", fontsize=9)
    for ax in axes:
        if log:
            ax.set_xscale("log")
        if field and not numeric:
            ax.set_xticks(xs)
            ax.set_xticklabels([format_value(v) for v in values], rotation=30, fontsize=8)
        ax.set_xlabel((field or "") + (" (log scale)" if log else ""))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return fig


def lens_plot(results: Results, out_dir: str | Path | None = None) -> list[Path]:
    return write_figure(results, lens_figure(results), "polytope_lens", out_dir)


POLYTOPE_FIGURES = [
    FigureSpec("polytope_slice", slice_plot,
               "Polytope lens: a 2D slice through the plane of features 0 and 1 (hidden space, through the origin), "
               "one colour per polytope (spline code), black lines the boundaries of the first ReLU layer, arrows "
               "each feature direction times its top training magnitude (red: the two spanning the plane). Look for "
               "whether each feature's arrow sits in a polytope of its own."),
    FigureSpec("polytope_density", density_plot,
               "Where polytope boundaries sit along straight paths between the typical points of two features "
               "(left) and along the magnitudes of one feature (right), final checkpoints. Look for a peak mid-way "
               "on the left (boundaries at the semantic boundary) above the level on the right."),
    FigureSpec("polytope_lens", lens_plot,
               "The polytope lens against the swept field (final checkpoints, mean over seeds): purity and "
               "completeness of spline codes against the most-active-unit partition on lone-feature inputs; "
               "boundary density; how far the median feature direction stays within 1% of affine. Definitions: "
               "docs/papers.md §6."),
]


def polytope_specs(results: Results) -> list[FigureSpec]:
    """The lens's figures when the folder's family has ReLU layers to read (its ``relu_layers`` hook), else none."""
    return list(POLYTOPE_FIGURES) if has_lens(results) else []


def polytope_html(results: Results) -> str:
    """The lens's section of ``report.html``: its table per setting at the final checkpoints (mean over seeds
    that did not diverge) and what the columns mean; ``""`` without ReLU layers."""
    if not has_lens(results) or results.instances.empty:
        return ""
    table, problem = final_lens(results)
    if table.empty:
        return f"<h2>Polytope lens</h2><p>{html.escape(problem)}</p>" if problem else ""
    ok = table[table["status"] == "ok"]
    fields = [f for f in setting_fields(results) if f in ok.columns and f != "seed"]
    cols = [(c, h) for c, h in HTML_COLUMNS if c in ok.columns]
    groups = ok.groupby(fields, sort=False) if fields else [((), ok)]
    head = "".join(f"<th>{html.escape(h)}</th>" for h in [*fields, "seeds", *(h for _, h in cols)])
    body = []
    for key, rows in groups:
        key = key if isinstance(key, tuple) else (key,)
        cells = [format_value(v) for v in key] + [str(len(rows))]
        cells += [format_number(float(np.nanmean(rows[c].to_numpy(dtype=float)))) for c, _ in cols]
        body.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    note = next((n for n in table["note"] if n), "")
    return ("<h2>Polytope lens</h2><p>Spline codes of the ReLU layers against the true features at the final "
            "checkpoints (docs/papers.md §6): purity = how often a polytope holds one feature's lone inputs, "
            "completeness = how often one feature's lone inputs share one polytope (inputs in the origin's polytope "
            "left out: origin share), the neuron columns the same for the partition by most active unit; codes "
            "per ray up to the top training magnitude; boundaries per unit length on paths between two features "
            "and along one; the median feature's validity range in units of its top training magnitude.</p>"
            + (f"<p class='warn'>{html.escape(note)}</p>" if note else "")
            + f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")
