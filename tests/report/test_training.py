"""The training figure: the family's curves, seeds as mean and band, diverged instances, further swept fields."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from helpers import as_model, legend_texts, two_swept_fields
from matplotlib.collections import PolyCollection

from toymodels.families import get_family
from toymodels.report.figures import DIVERGED_COLOUR, training_figure


def test_panels_are_the_familys_training_metrics(diverging_results):
    em = get_family("em").presentation
    fig = training_figure(diverging_results)
    assert [ax.get_title() for ax in fig.axes[:3]] == [em.label(n) for n in em.training_metrics] == [
        "task loss", "mono neurons / feature", "mean bias"]
    assert fig.axes[0].get_yscale() == "log" and fig.axes[0].get_xlabel() == "log2(training step + 1)"
    # presented as TMS: loss and dims_per_feature (EM logs it too); superposition was not logged, so no panel
    tms = get_family("tms").presentation
    fig = training_figure(as_model(diverging_results, "tms"))
    assert [ax.get_title() for ax in fig.axes[:2]] == [tms.label("loss"), tms.label("dims_per_feature")]
    assert "superposition" not in [ax.get_title() for ax in fig.axes]


def test_seeds_are_drawn_as_mean_and_band(diverging_results):
    fig = training_figure(diverging_results)
    for ax in fig.axes[:3]:
        solid = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-" and ln.get_color() != DIVERGED_COLOUR
                 and len(ln.get_xdata()) > 1 and ln.get_linewidth() > 1.5]
        bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
        # two settings train (lr 0.01, 0.1), each with two seeds: one mean line and one band each, not 4 lines
        assert len(solid) == 2 and len(bands) == 2, ax.get_title()
    # the signed metric (mean bias) gets a zero line, the others do not
    zero = [[ln for ln in ax.get_lines() if list(ln.get_ydata()) == [0, 0]] for ax in fig.axes[:3]]
    assert [len(z) for z in zero] == [0, 0, 1]


def test_diverged_instances_are_shown(diverging_results):
    fig = training_figure(diverging_results)
    assert any("diverged" in t for t in legend_texts(fig))
    ax = fig.axes[1]  # mono_per_feature at checkpoints 0, 1, 3: the diverged seeds have points before step 3
    grey = [ln for ln in ax.get_lines() if ln.get_color() == DIVERGED_COLOUR]
    crosses = [ln for ln in grey if ln.get_marker() == "x"]
    assert len(crosses) == 2  # one per diverged seed, at log2(diverged_at + 1)
    at = diverging_results.instances.query("status == 'diverged'")["diverged_at"]
    assert sorted(c.get_xdata()[0] for c in crosses) == pytest.approx(sorted(np.log2(at + 1)))
    # the y range follows the instances that trained, not the diverged values (mean bias reaches ~ -1e19)
    lo, hi = fig.axes[2].get_ylim()
    assert lo > -10 and hi < 10


def test_second_swept_field_gets_its_own_line_style(diverging_results):
    fig = training_figure(two_swept_fields(diverging_results))
    texts = legend_texts(fig)
    assert "bias_offset=0" in texts and "bias_offset=0.5" in texts
    styles = {ln.get_linestyle() for ln in fig.axes[1].get_lines() if ln.get_color() != DIVERGED_COLOUR
              and ln.get_linewidth() > 1.5}
    assert len(styles) == 2
    assert not [c for c in fig.axes[1].collections if isinstance(c, PolyCollection)]  # one seed: no band


def test_nothing_to_draw_without_instances(diverging_results):
    empty = dataclasses.replace(diverging_results, instances=diverging_results.instances.iloc[:0])
    assert training_figure(empty) is None


def test_checkpoints_at_lr_peaks_and_troughs_are_marked(oscillating_results, diverging_results):
    from toymodels.report.training import phase_steps

    steps = np.array(sorted(set(oscillating_results.metrics["step"])))
    assert phase_steps(oscillating_results, steps) == {511: "trough", 1023: "peak", 1535: "trough", 2047: "peak"}
    fig = training_figure(oscillating_results)
    texts = legend_texts(fig)
    assert "checkpoint at lr peak" in texts and "checkpoint at lr trough" in texts
    marks = [line for ax in fig.axes for line in ax.lines if line.get_marker() in ("^", "v")]
    assert marks and {len(line.get_xdata()) for line in marks} == {2}  # two peaks, two troughs per curve
    # no extra checkpoints: nothing marked
    assert "checkpoint at lr peak" not in legend_texts(training_figure(diverging_results))


def test_the_loss_axis_is_labelled_with_plain_numbers(diverging_results):
    from toymodels.report.training import log_ticks, training_figure

    assert log_ticks(0.04, 0.7) == [0.05, 0.1, 0.2, 0.5]
    assert log_ticks(1e-5, 1.0) == [1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0]  # beyond two decades: one tick each
    assert log_ticks(0.31, 0.39) == []  # no two ticks inside: matplotlib's own
    ax = training_figure(diverging_results).axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels and all(re.fullmatch(r"[0-9.e-]+", text) for text in labels), labels  # no 5x10^-2
