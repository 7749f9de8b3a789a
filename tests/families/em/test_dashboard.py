"""The EM family's dashboard panel (toymodels.families.em.dashboard), on a sweep with diverged instances: one
instance's view, its figures and tables, the panel the family brings and where the app puts its parts."""

from __future__ import annotations

import numpy as np
import torch
from helpers import need_extra

need_extra("plotly", "app")

from toymodels import metrics  # noqa: E402
from toymodels.app.data import dashboard_panel, instance_heading, panel_parts  # noqa: E402
from toymodels.families.em import dashboard  # noqa: E402


def test_neuron_view_and_its_figure(diverging_results):
    res = diverging_results
    for run_id in res.instances["run_id"]:
        step = res.checkpoint_steps(run_id)[-1]
        view = dashboard.neuron_view(res, run_id, step)
        k, N = view["sfa"].shape
        assert sorted(view["neuron_order"].tolist()) == list(range(k))
        assert sorted(view["feature_order"].tolist()) == list(range(N))
        fig = dashboard.neuron_figure(view, run_id)
        # the heatmap is the sfa in display order (features x neurons), the bars cover every neuron once
        heatmap = next(t for t in fig.data if t.type == "heatmap")
        np.testing.assert_allclose(heatmap.z, np.round(view["sfa"][view["neuron_order"]][:, view["feature_order"]].T,
                                                       4))
        assert list(heatmap.x) == [f"n{n}" for n in view["neuron_order"]]
        bars = [t for t in fig.data if t.type == "bar"]
        assert sorted(x for t in bars for x in t.x) == sorted(f"n{n}" for n in range(k))
        assert fig.layout.title.text == run_id
        table = dashboard.mechanism_table(view["summary"])
        assert set(table["quantity"]) >= {"mono neurons", "rank of broad block"}
        n_mono = int(table.set_index("quantity").loc["mono neurons", "value"])
        assert n_mono == sum(kind == "mono" for kind in view["kinds"])


def test_neuron_view_uses_the_metrics_order(diverging_results):
    res = diverging_results
    view = dashboard.neuron_view(res, "r0002", res.checkpoint_steps("r0002")[-1])
    order = metrics.neuron_order(torch.as_tensor(view["sfa"])[None])
    assert view["neuron_order"].tolist() == order[0][0].tolist()
    assert view["feature_order"].tolist() == order[1][0].tolist()


def test_the_family_brings_its_panel_and_the_app_lays_it_out(diverging_results):
    """The keys the browser test finds: the heatmap across the page (sfa-figure, titled with the instance), the
    mechanism table (mechanism) beside the singular values; the per-neuron table folded."""
    res = diverging_results
    panel = dashboard_panel(res)
    assert panel is dashboard.PANEL and panel.checkpoints
    step = res.checkpoint_steps("r0002")[-1]
    view = panel.view(res, "r0002", step)
    parts = panel_parts(panel, view, instance_heading("r0002 · lr=0.1", step), res.instances)
    (main,) = parts.main
    assert main.key == "sfa-figure"
    assert main.figure.layout.title.text.startswith(f"single-feature activations · r0002 · lr=0.1 · step {step} · ")
    (heatmap,) = [t for t in main.figure.data if t.type == "heatmap"]  # the browser test counts one image
    (table,) = parts.tables
    assert table.key == "mechanism" and "rank of broad block" in list(table.table[table.index])
    (spectrum,) = parts.figures
    assert spectrum.key == "singular-values"
    assert (spectrum.figure is None) == (not view["singular_values"] or max(view["singular_values"]) == 0)
    (neurons,) = parts.folded
    assert len(neurons.table) == view["sfa"].shape[0] and neurons.table[neurons.index].tolist() == list(
        view["neuron_order"])
