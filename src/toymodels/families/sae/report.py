"""The SAE family's section of ``report.html`` (``SAEFamily.report_html``): the best SAE (highest MCC) of each
architecture and width of the folder, with its sparsity setting and the numbers that say how well it recovered the
true features."""

from __future__ import annotations

import html

from toymodels.results.store import Results
from toymodels.results.tables import format_number, format_value, setting_fields

#: the columns of the table after the SAE's name: (instance column, header)
COLUMNS = (("mcc", "MCC"), ("features_recovered", "recovered (cos > 0.9)"), ("l0", "L0"), ("true_l0", "true L0"),
           ("explained_variance", "variance explained"), ("dead_latents", "dead latents"),
           ("absorption_gap", "absorption gap"))


def best_sae_html(results: Results) -> str:
    """The best SAE per architecture and width as an HTML section ('' without a scored SAE that trained)."""
    inst = results.instances
    if "mcc" not in inst.columns:
        return ""
    ok = inst[(inst["status"] == "ok") & inst["mcc"].notna()]
    if ok.empty:
        return ""
    fields = [f for f in setting_fields(results) if f not in ("sae_arch", "sae_width")]
    columns = [(c, h) for c, h in COLUMNS if c in ok.columns and ok[c].notna().any()]
    e = html.escape
    rows = []
    for (arch, width), group in ok.groupby(["sae_arch", "sae_width"], sort=True):
        best = group.loc[group["mcc"].idxmax()]
        setting = ", ".join(f"{f}={format_value(best[f])}" for f in fields) or "-"
        cells = [str(arch), str(int(width)), setting, str(best["run_id"]),
                 *(format_number(float(best[c])) for c, _ in columns)]
        rows.append("<tr>" + "".join(f"<td class='text'>{e(c)}</td>" if i < 4 else f"<td>{e(c)}</td>"
                                     for i, c in enumerate(cells)) + "</tr>")
    head = "".join(f"<th>{e(h)}</th>" for h in ["architecture", "width", "setting", "run", *(h for _, h in columns)])
    return ("<h2>Best SAE per architecture and width</h2><p>The SAE with the highest MCC of each architecture and "
            "width (seeds that did not diverge), with its sparsity setting. <code>results.model(run_id)</code> gives "
            "it with <code>encode</code> / <code>decode</code>; <code>toymodels export-sae</code> writes it for "
            f"SAELens.</p><table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")
