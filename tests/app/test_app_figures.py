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


def test_the_swept_values_keep_their_ticks_and_crowded_labels_go(diverging_results):
    """LR1's six learning rates on a third of the page: 0.005, 0.007 and 0.01 cannot all be labelled."""
    lrs = [0.001, 0.003, 0.005, 0.007, 0.01, 0.03]
    inst = diverging_results.instances.copy()
    inst["lr"] = lrs[:len(inst)]
    inst["status"] = "ok"
    fig = app_figures.sweep_figure(diverging_results, inst, "lr", ["final_loss", "mono_per_feature",
                                                                   "features_covered"])
    axis = fig.layout.xaxis
    assert list(axis.tickvals) == lrs
    assert axis.ticktext[0] == "0.001" and axis.ticktext[-1] == "0.03" and "" in axis.ticktext
    assert "0.01" in axis.ticktext  # the round value is kept before its crowded neighbours
    wide = app_figures.sweep_figure(diverging_results, inst, "lr", ["final_loss"])
    assert list(wide.layout.xaxis.ticktext) == [str(v) for v in lrs]  # across the page, every label fits


def test_a_study_s_figure_has_one_box_per_part_and_metric(diverging_results):
    inst = diverging_results.instances.assign(part=["a", "a", "b", "b", "c", "c"])
    fig = app_figures.parts_figure(inst, str, ["final_loss", "mono_per_feature"])
    ok = inst[inst["status"] == "ok"]
    parts = list(dict.fromkeys(ok["part"]))
    assert [t.name for t in fig.data] == parts * 2
    assert [len(t.y) for t in fig.data[:len(parts)]] == [int((ok["part"] == p).sum()) for p in parts]
