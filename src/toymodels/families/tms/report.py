"""The TMS family's section of ``report.html`` (``TMSFamily.report_html``): where each setting's features sit in the
hidden space, counted on the polytope fractions TMS names (``geometry.fraction_counts``), for the lowest-loss seed
of each setting."""

from __future__ import annotations

import html

from toymodels.families.common import lowest_loss_per_setting
from toymodels.families.tms.geometry import FRACTION_TOLERANCE, NOT_REPRESENTED, feature_geometry, fraction_counts
from toymodels.results.store import Results
from toymodels.results.tables import format_number, setting_fields, setting_label

#: settings the table lists at most (evenly spread over the sweep)
MAX_ROWS = 40


def geometry_html(results: Results) -> str:
    """The feature-geometry table as an HTML section ('' without an instance that trained)."""
    picks = lowest_loss_per_setting(results, limit=MAX_ROWS)
    if not picks:
        return ""
    fields = setting_fields(results)
    e = html.escape
    rows, head = [], None
    for key, rid in picks:
        geo = feature_geometry(results.params(rid))
        counts = fraction_counts(geo["dims"])
        if head is None:
            head = ["setting", "run", "represented", "D*", *(f"D_i ≈ {k}" if k[0].isdigit() else k for k in counts)]
        cells = [setting_label(fields, key), rid, str(geo["represented"]), format_number(geo["dims_per_feature"]),
                 *(str(c) for c in counts.values())]
        rows.append("<tr>" + "".join(f"<td class='text'>{e(c)}</td>" if i < 2 else f"<td>{e(c)}</td>"
                                     for i, c in enumerate(cells)) + "</tr>")
    n_settings = len(lowest_loss_per_setting(results))
    shown = f" ({len(picks)} of {n_settings} settings, evenly spread)" if n_settings > len(picks) else ""
    header = "".join(f"<th>{e(h)}</th>" for h in head or [])
    return (f"<h2>Feature geometry</h2><p>The lowest-loss seed of each setting{e(shown)}: its represented features "
            f"(||W_i|| above the threshold), D* = m / ||W||_F^2, and how many features have a dimensionality D_i "
            f"within {FRACTION_TOLERANCE:g} of each fraction TMS names (1: a dimension of its own; 1/2: antipodal "
            f"pairs; 2/5: pentagons; 3/4, 2/3, 3/8: tetrahedra, triangles, square antiprisms), below "
            f"{NOT_REPRESENTED:g} (not represented) or elsewhere (other). <code>results.model(run_id)</code> gives "
            f"the model itself.</p><table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>")
