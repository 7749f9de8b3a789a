"""The grokking family's section of ``report.html`` (``GrokkingFamily.report_html``): per instance, when train and
test accuracy first passed 99%, the gap between them, the final model's key frequencies and the phases
(``analysis``)."""

from __future__ import annotations

import html

import pandas as pd

from toymodels.families.grokking import analysis
from toymodels.results.store import Results

#: at most this many instances are listed (the first ones; the phase diagram covers the rest)
MAX_ROWS = 40


def _step(value: object) -> str:
    return "never" if value is None or pd.isna(value) else f"{int(value):,}"


def grokking_html(results: Results) -> str:
    """The table of grokking steps and key frequencies as an HTML section ('' without finished instances)."""
    inst = results.instances
    if inst.empty:
        return ""
    steps = analysis.accuracy_steps(results).set_index("run_id")
    e = html.escape
    rows = []
    for rid in list(inst["run_id"])[:MAX_ROWS]:
        row = results.row(rid)
        s = steps.loc[rid]
        keys = analysis.key_frequencies(results, rid) if row["status"] == "ok" else []
        ph = analysis.phases(results, rid)
        rows.append(
            f"<tr><td class='text'>{e(rid)}</td><td>{row['weight_decay']:g}</td><td>{row['train_frac']:g}</td>"
            f"<td>{float(row['train_acc']):.3f}</td><td>{float(row['test_acc']):.3f}</td>"
            f"<td>{_step(s['train_acc_step'])}</td><td>{_step(s['test_acc_step'])}</td>"
            f"<td class='text'>{e(', '.join(map(str, keys)) or 'none')}</td>"
            f"<td>{_step(ph['memorisation_end'])} / {_step(ph['cleanup_start'])} / {_step(ph['cleanup_end'])}</td>"
            "</tr>")
    more = f"<p>The first {MAX_ROWS} of {len(inst)} instances.</p>" if len(inst) > MAX_ROWS else ""
    return ("<h2>Grokking: when each instance generalised</h2><p>Checkpoint steps at which train and test accuracy "
            f"first exceeded {analysis.GROKKED:.0%} (<code>analysis.accuracy_steps</code>), the final model's key "
            "frequencies (embedding Fourier norms at least 1/4 of the largest) and our phase boundaries: "
            "memorisation ends / cleanup starts / cleanup ends (train accuracy 99%, test loss at half its peak, "
            "test accuracy 99%; <code>analysis.phases</code>).</p><table><thead><tr><th>run</th><th>weight decay</th>"
            "<th>train frac</th><th>train acc</th><th>test acc</th><th>train acc &gt; 99% at</th>"
            "<th>test acc &gt; 99% at</th><th>key frequencies</th><th>phases</th></tr></thead><tbody>"
            + "".join(rows) + f"</tbody></table>{more}")
