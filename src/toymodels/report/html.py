"""The report of a results folder: figures/*.png, a self-contained report.html and the summary table.

``write_report(results)`` draws every figure of the sweep (``toymodels.report.figures.figure_specs``: the generic training
and swept figures, then the model family's own) into ``<folder>/figures/`` and writes ``<folder>/report.html``: the
sweep's config, the summary table, each figure with a one-line caption saying what to look for and the family's own
sections (its ``report_html`` hook, e.g. EM's mechanism numbers of the most monosemantic instance). The page is
self-contained: images are embedded as base64 ``data:`` URIs, the CSS is inline, there is no script and no link to
anything outside the file, so it opens offline and can be mailed around.

``summary_table(results)`` is the table ``toymodels report`` and ``toymodels run`` print: one row per setting
(combination of swept fields other than seed), seeds aggregated, columns the family's
``presentation.summary_metrics``.

Example:
    >>> import toymodels as tm
    >>> from toymodels.report.html import summary_table, write_report
    >>> res = tm.load("runs/LR1-quick")          # doctest: +SKIP
    >>> summary_table(res)                        # doctest: +SKIP
    >>> write_report(res)                         # doctest: +SKIP
    PosixPath('runs/LR1-quick/report.html')
"""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

from toymodels.families.base import FigureSpec, family_hook
from toymodels.config.registry import get_family
from toymodels.results.files import refuse_links
from toymodels.results.store import Results, write_text
from toymodels.report.columns import column_descriptions, config_fields, field_description
from toymodels.results.tables import format_number, format_value, seed_stats, setting_fields, settings


# ----------------------------------------------------------------------------------------------- summary table
def status_word(counts: dict[str, int], n: int) -> str:
    """'ok' / 'diverged' for one seed; '2 ok', '1 ok, 1 diverged' for several."""
    if n == 1:
        return next(iter(counts))
    return ", ".join(f"{c} {s}" for s, c in counts.items())


def summary_table(results: Results) -> pd.DataFrame:
    """One row per setting (the swept fields other than ``seed``), seeds aggregated, in the sweep's grid order.

    Columns: the setting's swept fields (none when nothing is swept: one row for all instances); ``seeds``
    (instances in the setting); ``ok`` and ``diverged`` (how many ended with that status); ``status`` ('ok',
    'diverged' or e.g. '1 ok, 1 diverged'); then for each of the family's ``presentation.summary_metrics`` in the
    table: ``<metric>`` = the mean over the seeds that did not diverge and ``<metric>_std`` = their sample standard
    deviation (0 for one seed), both from ``tables.seed_stats``. Both are NaN when every seed diverged: a diverged
    instance has no final loss, and its other metrics describe its last finite parameters, not a trained model, so
    they are left out of the mean.
    """
    import pandas as pd  # deferred: ~70 MB that a training process does not need

    inst = results.instances
    fields = setting_fields(results)
    summary = get_family(results.sweep.base.model.model).presentation.summary_metrics
    metric_cols = [m for m in summary if m in inst.columns]
    rows = []
    for key, group in settings(results):
        counts = group["status"].value_counts().to_dict()
        counts = {s: int(counts[s]) for s in sorted(counts, key=lambda s: (s != "ok", s))}
        row: dict[str, Any] = dict(zip(fields, key))
        row.update(seeds=len(group), ok=int((group["status"] == "ok").sum()),
                   diverged=int((group["status"] == "diverged").sum()), status=status_word(counts, len(group)))
        stats = seed_stats(group, [], metric_cols).iloc[0]
        for m in metric_cols:
            row[m], row[f"{m}_std"] = float(stats[m]), float(stats[f"{m}_std"])
        rows.append(row)
    columns = [*fields, "seeds", "ok", "diverged", "status", *[c for m in metric_cols for c in (m, f"{m}_std")]]
    return pd.DataFrame(rows, columns=columns)


def format_summary(table: pd.DataFrame) -> pd.DataFrame:
    """The summary table as text: 'mean ± std' per metric ('-' where every seed diverged), swept values short."""
    import pandas as pd  # deferred: ~70 MB that a training process does not need

    out = pd.DataFrame(index=table.index)
    metric_cols = [c for c in table.columns if f"{c}_std" in table.columns]
    for col in table.columns:
        if col.endswith("_std") or col in ("ok", "diverged"):
            continue
        if col in metric_cols:
            out[col] = [
                format_number(m) if not math.isfinite(m) or n_ok <= 1 else f"{format_number(m)} ± {format_number(sd)}"
                for m, sd, n_ok in zip(table[col], table[f"{col}_std"], table["ok"])
            ]
        elif col in ("seeds", "status"):
            out[col] = table[col].astype(str)
        else:
            out[col] = [format_value(v) for v in table[col]]
    return out


def summary_text(results: Results) -> str:
    """The summary table as printed in the terminal, after one line per finished group left out of it (damaged,
    copied in, or not what sweep.json plans: ``Results.notes``)."""
    table = summary_table(results)
    text = "(no finished instances yet)" if table.empty else format_summary(table).to_string(index=False)
    return "\n".join([*results.notes, text])


# ------------------------------------------------------------------------------------------------------ html
#: the style of every report page (a results folder's, a study's)
CSS = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1400px;
       padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.6em; }
.meta { color: #666; font-size: 0.9em; }
table { border-collapse: collapse; font-size: 0.88em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
th { background: #f4f4f4; } td.text { text-align: left; }
tr.diverged td { background: #fbeaea; color: #8a1f1f; } tr.partial td { background: #fdf6e3; }
figure { margin: 1em 0 2em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #444; font-size: 0.92em; margin-top: 0.3em; }
code { background: #f4f4f4; padding: 0 3px; }
p.warn { background: #fbeaea; color: #8a1f1f; padding: 4px 8px; }
th[title] { text-decoration: underline dotted; cursor: help; }
details.legend dl { display: grid; grid-template-columns: max-content auto; gap: 2px 12px; font-size: 0.88em; }
details.legend dt, details.legend dd { margin: 0; } details summary { cursor: pointer; color: #444; }
"""


def _e(x: Any) -> str:
    return html.escape(str(x))


def table_html(df: pd.DataFrame, row_classes: list[str] | None = None, titles: dict[str, str] | None = None
                ) -> str:
    """``df`` as an HTML table; ``titles``: a column's explanation, shown when the pointer rests on its header."""
    titles = titles or {}
    head = "".join(_titled("th", c, titles.get(c, "")) for c in df.columns)
    body = []
    for i, (_, row) in enumerate(df.iterrows()):
        cls = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        cells = "".join(
            f'<td class="text">{_e(v)}</td>' if isinstance(v, str) and not _looks_numeric(v) else f"<td>{_e(v)}</td>"
            for v in row.tolist()
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _titled(tag: str, text: str, title: str) -> str:
    """``<tag title="...">text</tag>``, without the title when there is none."""
    return f"<{tag} title='{_e(title)}'>{_e(text)}</{tag}>" if title else f"<{tag}>{_e(text)}</{tag}>"


def _looks_numeric(text: str) -> bool:
    return bool(text) and (text[0].isdigit() or text[0] in "-+.") and not text[:1].isalpha()


def data_uri(path: Path) -> str:
    """A PNG file as a ``data:`` URI (the page embeds its images)."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _config_html(results: Results) -> str:
    sweep = results.sweep
    grid = "".join(f"<tr><td class='text'><code>{_e(k)}</code></td><td class='text'>"
                   f"{_e(', '.join(format_value(v) for v in vals))}</td></tr>" for k, vals in sweep.grid.items())
    grid_html = (f"<table><thead><tr><th>swept field</th><th>values</th></tr></thead><tbody>{grid}</tbody></table>"
                 if grid else "<p>Nothing is swept.</p>")
    flat = sweep.base.flat()
    shown, folded = config_fields(results)

    def fields_table(names: list[str]) -> str:
        ncol = 4
        cells = [f"<td class='text'>{_titled('code', k, field_description(k))}</td>"
                 f"<td>{_e(format_value(flat[k]))}</td>" for k in names]
        rows = "".join("<tr>" + "".join(cells[i:i + ncol]) + "</tr>" for i in range(0, len(cells), ncol))
        return f"<table><tbody>{rows}</tbody></table>"

    rest = (f"<details><summary>{len(folded)} more fields the model reads, at their defaults</summary>"
            f"{fields_table(folded)}</details>") if folded else ""
    return (f"{grid_html}<p>Seeds per setting: {sweep.seeds}. Instances: {sweep.size()}.</p>"
            f"<p>Fixed fields:</p>{fields_table(shown)}{rest}")


def legend_html(described: dict[str, str], columns: list[str]) -> str:
    """What each column of a summary table is (``described``: column -> text, its header's tooltip too)."""
    items = "".join(f"<dt><code>{_e(c)}</code></dt><dd>{_e(described[c])}</dd>" for c in columns if c in described)
    return f"<details class='legend' open><summary>What the columns are</summary><dl>{items}</dl></details>"


def write_report(results: Results) -> Path:
    """Draw figures/*.png and write the self-contained report.html into the results folder; returns its path."""
    from toymodels.report.figures import figure_specs  # matplotlib: loaded only when figures are drawn

    folder = Path(results.folder)
    refuse_links(folder)  # figures/ or report.html as a link would carry the writes outside the folder
    inst = results.instances
    figures: list[tuple[FigureSpec, Path]] = []
    if len(inst):
        for spec in figure_specs(results):
            for path in spec.plot(results, out_dir=folder / "figures"):
                figures.append((spec, path))

    meta = results.meta
    n_div = int((inst["status"] != "ok").sum()) if len(inst) else 0
    model = results.sweep.base.model.model
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{_e(results.sweep.name)}: toymodels report</title><style>{CSS}</style></head><body>",
        f"<h1>{_e(results.sweep.name)}</h1>",
        f"<p class='meta'>toymodels {_e(meta.get('toymodels_version', '?'))}, torch "
        f"{_e(meta.get('torch_version', '?'))}, git {_e((meta.get('git_commit') or 'n/a')[:12])}, device "
        f"{_e(meta.get('device', '?'))}; model <code>{_e(model)}</code>; {len(inst)} of "
        f"{results.sweep.size()} instances finished, {n_div} diverged.</p>",
        *(f"<p class='warn'>{_e(note)}</p>" for note in results.notes),  # groups no table or figure counts
        "<h2>Sweep</h2>", _config_html(results),
        "<h2>Summary</h2>",
    ]
    table = summary_table(results)
    if table.empty:
        parts.append("<p>No finished instances yet.</p>")
    else:
        classes = ["diverged" if d == s else "partial" if d else "" for d, s in zip(table["diverged"], table["seeds"])]
        parts.append("<p>One row per setting: mean ± standard deviation over the seeds that did not diverge; "
                     "'-' where every seed diverged (no final loss).</p>")
        text = format_summary(table)
        described = column_descriptions(results, list(text.columns))
        parts.append(table_html(text, classes, described))
        parts.append(legend_html(described, list(text.columns)))
    if figures:
        parts.append("<h2>Figures</h2>")
        for spec, path in figures:
            parts.append(f"<figure id='{_e(spec.name)}'><img src='{data_uri(path)}' alt='{_e(spec.name)}'>"
                         f"<figcaption><b>{_e(path.name)}</b>: {_e(spec.caption)}</figcaption></figure>")
    extra = family_hook(get_family(model), "report_html")(results) if len(inst) else ""
    if extra:  # the family's own sections (its ``report_html`` hook), e.g. EM's mechanism numbers
        parts.append(extra)
    if len(inst):  # the polytope lens of a family with ReLU layers (report/polytope.py)
        from toymodels.report.polytope import polytope_html  # matplotlib, like the figures: only when drawn

        parts.append(polytope_html(results))
    parts.append("</body></html>")
    out = folder / "report.html"
    write_text(out, "\n".join(parts) + "\n")
    return out
