"""The final values against the swept field: the family's metrics, log x, diverged crosses, one line per value of
a second swept field."""

from __future__ import annotations

from helpers import as_model, legend_texts, two_swept_fields

from toymodels.families import get_family
from toymodels.report.figures import swept_figure
from toymodels.results.tables import setting_fields, settings


def test_panels_are_the_familys_swept_metrics_on_a_log_x_axis(diverging_results):
    em = get_family("em").presentation
    fig = swept_figure(diverging_results)
    assert [ax.get_title() for ax in fig.axes] == [em.label(n) for n in em.swept_metrics]
    assert all(ax.get_xscale() == "log" for ax in fig.axes)
    assert "diverged (2)" in legend_texts(fig)
    # EM's multi-feature probe: the mono panel also shows the mono neurons the probe confirms
    assert "mono beyond multi-feature probe" in legend_texts(fig)
    tms = get_family("tms").presentation
    fig = swept_figure(as_model(diverging_results, "tms"))  # of its metrics, EM's table has dims_per_feature
    assert [ax.get_title() for ax in fig.axes] == [tms.label("dims_per_feature"), tms.label("final_loss")]


def test_error_bars_span_the_seeds(diverging_results):
    fig = swept_figure(diverging_results)
    name = get_family("em").presentation.swept_metrics[0]
    ax = fig.axes[0]
    line = next(ln for ln in ax.get_lines() if ln.get_marker() == "o")
    ok = diverging_results.instances.query("status == 'ok'")
    means = ok.groupby("lr")[name].mean()
    assert list(line.get_xdata()) == list(means.index) and list(line.get_ydata()) == list(means.to_numpy())


def test_second_swept_field_gets_its_own_lines(diverging_results):
    res = two_swept_fields(diverging_results)
    assert setting_fields(res) == ["lr", "bias_offset"] and len(settings(res)) == 6
    fig = swept_figure(res)
    assert {"bias_offset=0", "bias_offset=0.5"} <= set(legend_texts(fig))
