"""The dashboard's plotly sweep figures, on a sweep with diverged instances (a family's own panel is tested
with the family: tests/families/*/test_dashboard.py)."""

from __future__ import annotations

import numpy as np
from helpers import need_extra

need_extra("plotly", "app")

from toymodels.app import figures as app_figures  # noqa: E402
from toymodels.app.data import family_metrics  # noqa: E402
from toymodels.report.figures import ColourScale  # noqa: E402


def test_training_and_final_figures_handle_diverged_instances(diverging_results):
    res = diverging_results
    assert (res.instances["status"] == "diverged").any()
    training, final, _ = family_metrics(res)
    fig = app_figures.training_figure(res, res.instances, "lr", training)
    assert len(fig.data) == len(res.instances) * len(training) + 1  # + the colour bar's trace
    # the lines' colours are the report's colour scale
    scale = ColourScale("lr", list(res.instances["lr"]))
    assert fig.data[0].line.color == scale.colour(res.instances["lr"].iloc[0])
    final_fig = app_figures.sweep_figure(res, res.instances, "lr", final, ["seed"])
    ok = res.instances.query("status == 'ok'")
    assert sum(len(t.x) for t in final_fig.data if t.mode == "markers") == len(ok) * len(final)  # diverged left out
    mean_line = next(t for t in final_fig.data if t.mode == "lines")  # first metric, mean over seeds per lr
    np.testing.assert_allclose(mean_line.y, ok.groupby("lr")[final[0]].mean().to_numpy(), rtol=1e-6)


def test_axis_helpers():
    assert app_figures.log_ticks(0.15, 0.6) == [0.2, 0.5]
    assert app_figures.log_ticks(0.3, 0.35) == [0.2, 0.5]  # a tick either side when none falls inside
    x = np.arange(1, 10_001, dtype=float)
    tx, ty = app_figures.thin_log(x, x)
    assert len(tx) <= app_figures.MAX_CURVE_POINTS and tx[0] == 1 and tx[-1] == 10_000
