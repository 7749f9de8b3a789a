"""The SAE family's dashboard panel (toymodels.families.sae.dashboard): one instance's view, the figures, the
panel the family brings and where the app puts its parts (on the sweep of conftest.py's ``sae_results``)."""

from __future__ import annotations

import pytest
from helpers import need_extra

need_extra("plotly", "app")
from toymodels.app.data import dashboard_panel, instance_heading, panel_parts  # noqa: E402
from toymodels.families.sae.dashboard import (  # noqa: E402
    PANEL,
    cosine_figure,
    mcc_l0_figure,
    metrics_table,
    sae_view,
)


def test_one_instances_view_at_a_checkpoint_and_at_the_end(sae_results):
    rid = "r0001"
    steps = sae_results.checkpoint_steps(rid)
    first = sae_view(sae_results, rid, steps[0])
    final = sae_view(sae_results, rid, steps[-1])
    assert first["cos"].shape == (32, 32) and first["arch"] == "topk" and final["width"] == 32
    row = sae_results.row(rid)
    assert final["metrics"]["mcc"] == pytest.approx(row["mcc"])
    curve = sae_results.curve(rid, "mcc")
    assert first["metrics"]["mcc"] == pytest.approx(float(curve["value"].iloc[0]))
    assert list(metrics_table(final)["metric"])[:2] == ["mcc", "features_recovered"]


def test_figures_have_the_heatmap_and_one_line_per_setting(sae_results):
    view = sae_view(sae_results, "r0000")
    fig = cosine_figure(view, "r0000")
    assert fig.data[0].type == "heatmap" and fig.data[0].z.shape == (32, 32)
    fig = mcc_l0_figure(sae_results.instances)
    assert [t.name for t in fig.data] == ["topk, width 32"]
    assert len(fig.data[0].x) == 2


def test_the_family_brings_its_panel_and_the_app_lays_it_out(sae_results):
    """The keys the browser test finds: the heatmap across the page (sae-figure), the metrics table (sae-metrics)
    beside MCC against L0 over the sweep."""
    panel = dashboard_panel(sae_results)
    assert panel is PANEL and panel.checkpoints
    rid = "r0001"
    step = sae_results.checkpoint_steps(rid)[-1]
    parts = panel_parts(panel, panel.view(sae_results, rid, step), instance_heading(rid, step),
                        sae_results.instances)
    (main,) = parts.main
    assert main.key == "sae-figure" and main.figure.data[0].type == "heatmap"
    assert rid in main.figure.layout.title.text and f"step {step}" in main.figure.layout.title.text
    (table,) = parts.tables
    assert table.key == "sae-metrics" and table.index == "metric"
    assert "mcc" in list(table.table["metric"])
    (sweep,) = parts.figures
    assert sweep.figure.layout.title.text == "MCC against L0" and not parts.folded
