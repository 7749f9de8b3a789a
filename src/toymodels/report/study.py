"""The report of a multi-part preset's folder (``report.parts.Study``): each part's own report, then one
``report.html`` in the study's folder that treats the parts as one study.

``write_study_report(study)`` writes every part's figures and ``report.html`` (``report.html.write_report``), then
``<study>/figures/parts.png`` (the family's final metrics of every instance, part by part) and
``<study>/report.html``: the parts (what each sweeps, how far it got, a link to its own report), the summary of
every setting of every part with each column explained, the comparison figure and each part's swept figure. Like a
part's report it is self-contained (images embedded), but for the links to the parts' own reports beside it.
``study_text(study)`` is what ``toymodels report`` prints for it.

Example:
    >>> from toymodels.report.parts import find_study
    >>> write_study_report(find_study("runs/SAE-L0-quick"))   # doctest: +SKIP
    PosixPath('runs/SAE-L0-quick/report.html')
"""

from __future__ import annotations

import html
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np

from toymodels.config.registry import get_family
from toymodels.report.columns import column_descriptions
from toymodels.report.html import CSS, data_uri, legend_html, summary_text, table_html, write_report
from toymodels.report.parts import PART, Study, combined_instances, combined_summary
from toymodels.results.files import refuse_links
from toymodels.results.store import Results, load, write_text

if TYPE_CHECKING:  # a type name only: matplotlib is loaded when a figure is drawn, not by every command
    from matplotlib.figure import Figure


def load_parts(study: Study) -> dict[str, Results]:
    """Each started part's results, by part name (``store.load``: its errors name the part's folder)."""
    return {part.name: load(part) for part in study.parts}


def parts_figure(study: Study, parts: dict[str, Results]) -> Figure | None:
    """The family's swept metrics of every instance that did not diverge, one column of dots per part, with the
    part's mean (black bar)."""
    from matplotlib import colormaps  # deferred: `toymodels status` and `run` load this module, not matplotlib

    from toymodels.plotting.save import new_figure  # deferred with matplotlib, which it imports

    table = combined_instances(parts)
    if table.empty or not len(parts):
        return None
    first = next(iter(parts.values()))
    presentation = get_family(first.sweep.base.model.model).presentation
    ok = table[table["status"] == "ok"]
    metrics = [m for m in presentation.swept_metrics if m in ok.columns and ok[m].notna().any()]
    if ok.empty or not metrics:
        return None
    names = list(parts)
    colours = {n: colormaps["tab10"](i % 10) for i, n in enumerate(names)}
    fig = new_figure(max(4.5, 0.55 * len(names) + 2.2) * len(metrics), 4.4)
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    rng = np.random.default_rng(0)
    for ax, metric in zip(axes, metrics):
        for i, name in enumerate(names):
            values = ok.loc[ok[PART] == name, metric].to_numpy(dtype=float)
            values = values[np.isfinite(values)]
            if not values.size:
                continue
            ax.scatter(i + rng.uniform(-0.15, 0.15, values.size), values, s=14, alpha=0.6, color=colours[name], lw=0)
            ax.plot([i - 0.3, i + 0.3], [values.mean()] * 2, color="k", lw=1.6)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels([n.removeprefix(study.preset + "-") for n in names], rotation=30, ha="right", fontsize=8)
        ax.set_title(presentation.label(metric), fontsize=10)
        ax.set_ylabel(presentation.label(metric))
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(f"{study.name}: final values of every instance, part by part (bar: mean)", fontsize=10)
    return fig


def _parts_table(study: Study, parts: dict[str, Results]) -> str:
    e = html.escape
    rows = []
    for name, res in parts.items():
        inst = res.instances
        n_div = int((inst["status"] != "ok").sum()) if len(inst) else 0
        grid = "; ".join(f"{k}: {len(v)} values" for k, v in res.sweep.grid.items()) or "nothing"
        rows.append(f"<tr><td class='text'><a href='{e(name)}/report.html'>{e(name)}</a></td><td class='text'>"
                    f"{e(res.sweep.base.model.model)}</td><td class='text'>{e(grid)}</td><td>{len(inst)} of "
                    f"{res.sweep.size()}</td><td>{n_div}</td></tr>")
    rows += [f"<tr><td class='text'>{e(name)}</td><td class='text' colspan='4'>not started: "
             f"<code>toymodels run {e(study.preset)} ... --out {e(str(study.folder))} --resume</code> trains it</td>"
             "</tr>" for name in study.missing]
    return ("<table><thead><tr><th>part (its own report)</th><th>model</th><th>sweeps</th><th>instances finished"
            f"</th><th>diverged</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def write_study_report(study: Study, redraw: bool = True) -> Path:
    """Every part's report (unless not ``redraw``: ``toymodels run`` has just drawn them), then the study's
    figures/parts.png and report.html (module docstring); returns the study's report.html."""
    parts = load_parts(study)
    swept: dict[str, Path] = {}
    for name, res in parts.items():
        if redraw or not (res.folder / "report.html").is_file():
            write_report(res)
        if (res.folder / "figures" / "swept.png").is_file():
            swept[name] = res.folder / "figures" / "swept.png"
    from toymodels.plotting.save import save_figure  # deferred: matplotlib, loaded only when figures are drawn

    refuse_links(study.folder)  # figures/ or report.html as a link would carry the writes outside the folder
    figure = parts_figure(study, parts)
    comparison = save_figure(figure, study.folder / "figures" / "parts.png") if figure is not None else None
    e = html.escape
    out = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
           f"<title>{e(study.name)}: toymodels study report</title><style>{CSS}</style></head><body>",
           f"<h1>{e(study.name)}</h1>",
           f"<p class='meta'>The {len(study.parts) + len(study.missing)} parts of preset <code>{e(study.preset)}</code>"
           f", one sweep each, read as one study. Each part's own report (all its figures) is linked below.</p>"]
    for name, res in parts.items():
        out += [f"<p class='warn'>{e(name)}: {e(note)}</p>" for note in res.notes]
    out += ["<h2>Parts</h2>", _parts_table(study, parts), "<h2>Summary</h2>"]
    table = combined_summary(parts)
    if table.empty:
        out.append("<p>No finished instances yet.</p>")
    else:
        titles = {PART: "the part of the study (one sweep of the preset)"}
        for res in parts.values():
            titles.update({c: t for c, t in column_descriptions(res, list(table.columns)).items() if c not in titles})
        out += ["<p>One row per setting of each part: mean ± standard deviation over the seeds that did not diverge; "
                "blank where a part does not sweep that field.</p>", table_html(table, None, titles),
                legend_html(titles, list(table.columns))]
    if comparison is not None:
        out.append(f"<h2>The parts compared</h2><figure id='parts'><img src='{data_uri(comparison)}' alt='parts'>"
                   "<figcaption><b>parts.png</b>: the family's final metrics of every instance that did not diverge, "
                   "part by part (black bar: the part's mean). Look for the part that moves them furthest."
                   "</figcaption></figure>")
    for name, path in swept.items():
        out.append(f"<h2>{e(name)}</h2><figure><img src='{data_uri(path)}' alt='{e(name)} swept'><figcaption>"
                   f"<b>{e(name)}/figures/swept.png</b>: this part's final values against its swept field; all of its "
                   f"figures are in <a href='{e(name)}/report.html'>its report</a>.</figcaption></figure>")
    out.append("</body></html>")
    path = study.folder / "report.html"
    write_text(path, "\n".join(out) + "\n")
    return path


def study_text(study: Study) -> str:
    """Each part's summary table under its name, as ``toymodels report`` prints it, then the parts not started."""
    blocks = [f"== {part.name}\n{summary_text(load(part))}" for part in study.parts]
    blocks += [f"== {name}: not started" for name in study.missing]
    return "\n".join(blocks)
