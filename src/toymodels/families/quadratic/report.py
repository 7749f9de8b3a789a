"""The quadratic family's section of ``report.html`` (``QuadraticFamily.report_html``): the capacity allocation of
each setting's lowest-loss seed against the optimal allocation of the capacity theory, feature by feature, and how
far its expected loss is above the optimum."""

from __future__ import annotations

import html

from toymodels.families.common import lowest_loss_per_setting
from toymodels.families.quadratic.capacity import capacity_counts, capacity_view
from toymodels.results.store import Results
from toymodels.results.tables import format_number, setting_fields, setting_label

#: settings the tables list at most (evenly spread over the sweep)
MAX_SETTINGS = 12


def capacity_html(results: Results) -> str:
    """The capacity tables as an HTML section ('' without an instance that trained)."""
    picks = lowest_loss_per_setting(results, by="expected_loss", limit=MAX_SETTINGS)
    if not picks:
        return ""
    fields, e = setting_fields(results), html.escape
    views = [capacity_view(results, rid) for _, rid in picks]
    names = [setting_label(fields, key) for key, _ in picks]
    summary = []
    for name, (_, rid), v in zip(names, picks, views):
        counts = capacity_counts(v["capacity"], v["tolerance"])
        gap = 100 * (v["expected_loss"] / v["optimal_loss"] - 1) if v["optimal_loss"] > 0 else float("nan")
        cells = [name, rid, format_number(float(v["capacity"].sum())), format_number(float(v["theory"].sum())),
                 *(str(c) for c in counts.values()), format_number(v["expected_loss"]),
                 format_number(v["optimal_loss"]), "-" if gap != gap else f"{gap:.2f}%",
                 "no" if v["off_optimum"] else "yes"]
        summary.append("<tr>" + "".join(f"<td class='text'>{e(c)}</td>" if i < 2 else f"<td>{e(c)}</td>"
                                        for i, c in enumerate(cells)) + "</tr>")
    head = ["setting", "run", "Σ C_i", "Σ C_i optimal", "monosemantic", "fractional", "ignored", "expected loss",
            "optimal loss", "above optimum", "at optimum"]
    n = max(v["capacity"].size for v in views)
    same = all(v["importance"].shape == views[0]["importance"].shape and (v["importance"] == views[0]["importance"])
               .all() for v in views)  # one importance column, unless the sweep changes the importances

    def cell(v: dict, i: int) -> str:
        if i >= v["capacity"].size:
            return "-"
        return f"{v['capacity'][i]:.2f} ({v['theory'][i]:.2f})" + ("" if same else f", v={v['importance'][i]:.3g}")

    per_feature = []
    for i in range(n):
        cells = [str(i), *([format_number(float(views[0]["importance"][i]))] if same else []),
                 *(cell(v, i) for v in views)]
        per_feature.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>")
    v_head = "<th>importance v_i</th>" if same else ""
    th = "".join
    return ("<h2>Capacity allocation</h2><p>The lowest-loss seed of each setting (by the closed-form expected loss): "
            "the capacity it gives its features against the optimal allocation of the capacity theory, and its "
            "expected loss against the optimum (a seed more than 1% above it is not at the optimum: a local minimum, "
            "or training too short to reach it).</p>"
            f"<table><thead><tr>{th(f'<th>{e(h)}</th>' for h in head)}</tr></thead><tbody>{''.join(summary)}"
            "</tbody></table><p>Per feature: C_i (optimal C_i in brackets).</p>"
            f"<table><thead><tr><th>feature</th>{v_head}{th(f'<th>{e(n)}</th>' for n in names)}"
            f"</tr></thead><tbody>{''.join(per_feature)}</tbody></table>")
