"""Readable tick labels (plotting/ticks.py): the swept values keep their ticks, labels that would overlap are
dropped (never the first or the last), and the report's swept figure of LR1's learning rates shows no two labels
on top of each other (the issue: 0.005 / 0.007 / 0.01)."""

from __future__ import annotations

import dataclasses
import math

from matplotlib.backends.backend_agg import FigureCanvasAgg

from toymodels.plotting.ticks import spaced_labels, text_width
from toymodels.report.swept import swept_figure

LRS = [0.001, 0.003, 0.005, 0.007, 0.01, 0.03]


def log_positions(values: list[float]) -> list[float]:
    lo, hi = math.log10(min(values)), math.log10(max(values))
    return [(math.log10(v) - lo) / (hi - lo) for v in values]


def test_labels_that_fit_are_all_kept_and_crowded_ones_dropped():
    labels = [str(v) for v in LRS]
    assert spaced_labels(log_positions(LRS), labels, length=2000) == labels
    short = spaced_labels(log_positions(LRS), labels, length=150)
    assert short[0] == "0.001" and short[-1] == "0.03" and "" in short
    kept = [(p, lab) for p, lab in zip(log_positions(LRS), short) if lab]
    for (p1, a), (p2, b) in zip(kept, kept[1:]):  # what is left does not overlap
        assert (p2 - p1) * 150 >= (text_width(a, 10) + text_width(b, 10)) / 2
    assert not ("0.007" in short and "0.01" not in short)  # the rounder value wins when one must go


def test_the_first_and_last_labels_stay_even_when_nothing_fits():
    assert spaced_labels([0.0, 0.5, 1.0], ["100", "200", "300"], length=1) == ["100", "", "300"]
    assert spaced_labels([], [], length=100) == []


def test_the_swept_figure_s_learning_rates_do_not_overlap(diverging_results):
    inst = diverging_results.instances.copy()
    inst["lr"] = [LRS[i % len(LRS)] for i in range(len(inst))]
    inst["status"] = "ok"
    sweep = diverging_results.sweep.model_copy(update={"grid": {"lr": LRS}})
    fig = swept_figure(dataclasses.replace(diverging_results, instances=inst, sweep=sweep))
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)  # the final layout: the labels where the PNG has them
    for ax in fig.axes:
        labels = [t for t in ax.get_xticklabels() if t.get_text()]
        assert len(ax.get_xticks()) == len(LRS)  # every value keeps its tick
        assert len(labels) >= 4
        boxes = sorted((t.get_window_extent(renderer) for t in labels), key=lambda b: b.x0)
        for left, right in zip(boxes, boxes[1:]):
            assert left.x1 <= right.x0, [t.get_text() for t in labels]
