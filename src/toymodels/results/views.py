"""What ``Results`` shows of itself beyond its tables: one trained instance as a model (``results.model``), a short
``repr`` and an HTML summary for Jupyter (``_repr_html_``). ``Results`` (``store.py``) inherits them from
:class:`ResultsViews`, which reads only its ``folder``, ``sweep``, ``meta``, ``instances`` and ``metrics``.

Example:
    >>> res = tm.load("runs/LR1-quick")   # doctest: +SKIP
    >>> res                               # doctest: +SKIP
    Results('runs/LR1-quick': LR1-quick, model em, 12/12 instances (0 diverged), swept lr, seed)
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from toymodels.config.registry import FamilyError, get_family
from toymodels.results.model import TrainedModel, trained_model
from toymodels.results.tables import format_value

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from toymodels.config import SweepConfig

#: instance rows the HTML summary shows (the whole table is ``results.instances``)
HTML_ROWS = 10


class ResultsViews:
    """The model and display methods of ``Results`` (module docstring)."""

    folder: "Path"
    sweep: "SweepConfig"
    meta: dict[str, Any]
    instances: "pd.DataFrame"
    metrics: "pd.DataFrame"

    def model(self, run_id: str, step: int | None = None) -> TrainedModel:
        """Instance ``run_id`` at checkpoint ``step`` (default: the final model) as a ``torch.nn.Module`` of its
        family with its trained weights: ``model(inputs)``, ``model.run_with_cache(inputs)`` (every named layer's
        activations), ``model.axes`` (axis names), and for an SAE ``encode`` / ``decode``
        (``toymodels.results.model``). KeyError naming the run id or the step when there is none."""
        return trained_model(self, run_id, step)  # type: ignore[arg-type]

    def _summary(self) -> dict[str, str]:
        inst = self.instances
        statuses = inst["status"].value_counts().to_dict() if "status" in inst else {}
        diverged = sum(n for status, n in statuses.items() if status != "ok")
        return {"name": self.sweep.name, "model": self.sweep.base.model.model,
                "instances": f"{len(inst)}/{self.sweep.size()}", "diverged": str(diverged),
                "swept": ", ".join(self.sweep.swept_fields()) or "nothing"}

    def __repr__(self) -> str:
        s = self._summary()
        return (f"Results('{self.folder}': {s['name']}, model {s['model']}, {s['instances']} instances "
                f"({s['diverged']} diverged), swept {s['swept']})")

    def _repr_html_(self) -> str:
        """Jupyter's view: what the folder holds, then the first instances with their swept fields and the family's
        summary metrics."""
        s, inst = self._summary(), self.instances
        left_out = getattr(self, "left_out", {})  # groups whose files do not match their DONE record
        try:
            metrics = list(get_family(s["model"]).presentation.summary_metrics)
        except FamilyError:  # a folder of a family this installation does not have
            metrics = ["final_loss"]
        cols = [c for c in ["run_id", *self.sweep.swept_fields(), "status", *metrics] if c in inst.columns]
        head = inst[list(dict.fromkeys(cols))].head(HTML_ROWS)
        rows = "".join("<tr>" + "".join(f"<td>{html.escape(format_value(v) if isinstance(v, float) else str(v))}</td>"
                                        for v in row) + "</tr>" for row in head.itertuples(index=False))
        more = f"<p>… {len(inst) - HTML_ROWS} more rows in <code>.instances</code></p>" if len(inst) > HTML_ROWS else ""
        facts = "".join(f"<tr><th style='text-align:left'>{k}</th><td>{html.escape(v)}</td></tr>" for k, v in [
            ("folder", str(self.folder)), *s.items(),
            ("trained by", f"toymodels {self.meta.get('toymodels_version', '?')}, torch "
                           f"{self.meta.get('torch_version', '?')}, commit {str(self.meta.get('git_commit'))[:12]}"),
            ("device", str(self.meta.get("device", "?"))),
            *([("left out", "; ".join(f"{gid}: {why}" for gid, why in left_out.items()))] if left_out else [])])
        header = "".join(f"<th>{html.escape(c)}</th>" for c in head.columns)
        return (f"<div><b>toymodels Results</b><table>{facts}</table>"
                f"<table><thead><tr>{header}</tr></thead><tbody>{rows}</tbody></table>{more}"
                "<p><code>.instances</code>, <code>.metrics</code>, <code>.model(run_id)</code>, "
                "<code>.params(run_id)</code>, <code>.curve(run_id, name)</code></p></div>")
