"""The dashboard's plotly figures and per-neuron panels, on a sweep with diverged instances."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import need_extra

need_extra("plotly", "app")

from toymodels import metrics  # noqa: E402
from toymodels.app import figures as app_figures  # noqa: E402
from toymodels.app import neurons  # noqa: E402
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


def test_neuron_view_and_its_figure(diverging_results):
    res = diverging_results
    for run_id in res.instances["run_id"]:
        step = res.checkpoint_steps(run_id)[-1]
        view = neurons.neuron_view(res, run_id, step)
        k, N = view["sfa"].shape
        assert sorted(view["neuron_order"].tolist()) == list(range(k))
        assert sorted(view["feature_order"].tolist()) == list(range(N))
        fig = neurons.neuron_figure(view, run_id)
        # the heatmap is the sfa in display order (features x neurons), the bars cover every neuron once
        heatmap = next(t for t in fig.data if t.type == "heatmap")
        np.testing.assert_allclose(heatmap.z, np.round(view["sfa"][view["neuron_order"]][:, view["feature_order"]].T,
                                                       4))
        assert list(heatmap.x) == [f"n{n}" for n in view["neuron_order"]]
        bars = [t for t in fig.data if t.type == "bar"]
        assert sorted(x for t in bars for x in t.x) == sorted(f"n{n}" for n in range(k))
        assert fig.layout.title.text == run_id
        table = neurons.mechanism_table(view["summary"])
        assert set(table["quantity"]) >= {"mono neurons", "rank of broad block"}
        n_mono = int(table.set_index("quantity").loc["mono neurons", "value"])
        assert n_mono == sum(kind == "mono" for kind in view["kinds"])


def test_neuron_view_uses_the_metrics_order(diverging_results):
    res = diverging_results
    view = neurons.neuron_view(res, "r0002", res.checkpoint_steps("r0002")[-1])
    order = metrics.neuron_order(torch.as_tensor(view["sfa"])[None])
    assert view["neuron_order"].tolist() == order[0][0].tolist()
    assert view["feature_order"].tolist() == order[1][0].tolist()


def test_axis_helpers():
    assert app_figures.log_ticks(0.15, 0.6) == [0.2, 0.5]
    assert app_figures.log_ticks(0.3, 0.35) == [0.2, 0.5]  # a tick either side when none falls inside
    x = np.arange(1, 10_001, dtype=float)
    tx, ty = app_figures.thin_log(x, x)
    assert len(tx) <= app_figures.MAX_CURVE_POINTS and tx[0] == 1 and tx[-1] == 10_000
