"""The EM family's section of ``report.html`` (``EMFamily.report_html``): the numbers behind the mechanism figure
(``analysis.explain``'s summary) for the most monosemantic instance, when the checkpoints hold a neuron layer."""

from __future__ import annotations

import html

from toymodels.families.em.analysis import explain, has_neurons, most_monosemantic
from toymodels.results.store import Results
from toymodels.results.tables import format_number

#: summary key -> the row label of the mechanism table, in order
MECHANISM_LABELS = {
    "n_mono": "mono neurons", "n_narrow": "narrow (near-mono) neurons",
    "n_broad": "broad (residual polysemantic) neurons", "n_dead": "dead neurons",
    "broad_positive_bias": "broad neurons with positive bias (fraction)",
    "broad_linear_fraction": "broad pre-activations > 0 on training-like inputs (linear regime)",
    "broad_rank": "numerical rank of the broad block (1% tolerance; <= m by construction)",
    "gram_c": "fit of the broad block's linear part M = c E^T E: c", "gram_residual": "fit: relative residual",
    "offset_mean": "broad block's output offset W2_B b_B (mean)",
    "loss_full": "lone-feature loss: full model", "loss_without_broad": "... without the broad block",
    "loss_mono": "... mono block only", "loss_broad": "... broad block only", "loss_zero": "... no neurons",
}


def mechanism_html(results: Results) -> str:
    """The mechanism numbers of the most monosemantic instance as an HTML section ('' without a neuron layer)."""
    if not has_neurons(results):
        return ""
    run_id = most_monosemantic(results)
    if run_id is None:
        return ""
    attrs = explain(results, run_id).attrs
    e = html.escape
    rows = "".join(f"<tr><td class='text'>{e(label)}</td><td>{e(format_number(float(attrs[k])))}</td></tr>"
                   for k, label in MECHANISM_LABELS.items() if k in attrs)
    return (f"<h2>Mechanism numbers of {e(run_id)}</h2><p>From <code>tm.analysis.explain(results, "
            f"'{e(run_id)}')</code> (the full neuron table is returned there).</p><table><tbody>{rows}</tbody>"
            "</table>")
