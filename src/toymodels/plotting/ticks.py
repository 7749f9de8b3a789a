"""Tick labels that stay readable: the swept values as ticks, each labelled unless its label would overlap the
one before it (0.005, 0.007 and 0.01 on a log axis a few centimetres long), in the report's matplotlib figures and
the dashboard's plotly figures alike. Every value keeps its tick mark; only labels are dropped, never the first or
the last. No matplotlib or plotly import: :func:`spaced_labels` is plain arithmetic, :func:`readable_xticks` takes
a matplotlib axes.

Example:
    >>> spaced_labels([0.0, 0.52, 0.7, 0.85, 1.0], ["0.001", "0.005", "0.007", "0.01", "0.03"], length=180)
    ['0.001', '0.005', '', '0.01', '0.03']
"""

from __future__ import annotations

import math
from typing import Any, Sequence

#: a character's width in font sizes (DejaVu Sans, matplotlib's font: digits 0.64 em, points 0.32, letters ~0.6)
NARROW, DIGIT, OTHER = 0.32, 0.64, 0.62
#: the smallest gap between two labels, in font sizes
GAP = 0.4
#: the share of the axes' width before the layout that its data area keeps after it (constrained layout, without a
#: colour bar beside the axes, widens it: the estimate errs on the side of dropping a label)
LAYOUT_SHARE = 1.0


def text_width(label: str, font_size: float) -> float:
    """About how wide ``label`` is, in the unit of ``font_size``."""
    return font_size * sum(NARROW if c in ".,:;' " else DIGIT if c.isdigit() else OTHER for c in label)


def spaced_labels(positions: Sequence[float], labels: Sequence[str], length: float, font_size: float = 10.0
                  ) -> list[str]:
    """``labels`` with those that would overlap a neighbour blanked. ``positions``: each tick's place along the axis
    as a fraction 0..1 (in the order of ``labels``), ``length``: the axis' length in the unit of ``font_size``
    (points, or pixels for plotly). The first and the last label are always kept; among the others the shorter ones
    (0.01 before 0.007) are kept first."""
    if not labels:
        return []
    order = sorted(range(len(labels)), key=lambda i: positions[i])
    width = [text_width(str(label), font_size) for label in labels]

    def fits(i: int, j: int) -> bool:
        return abs(positions[j] - positions[i]) * length >= (width[i] + width[j]) / 2 + GAP * font_size

    kept = {order[0], order[-1]}
    for i in sorted(order[1:-1], key=lambda i: (len(str(labels[i])), positions[i])):
        if all(fits(i, j) for j in kept):
            kept.add(i)
    return [str(label) if i in kept else "" for i, label in enumerate(labels)]


def readable_xticks(ax: Any, values: Sequence[float], labels: Sequence[str], font_size: float = 10.0,
                    rotation: float = 0) -> None:
    """Ticks at ``values`` (data coordinates) on the x axis of a matplotlib ``ax``, labelled where the labels fit
    (:func:`spaced_labels`; call it after the data is drawn: it reads the axis limits), no minor ticks."""
    lo, hi = ax.get_xlim()
    lo, hi = min(lo, *values), max(hi, *values)  # ticks outside the data widen the axis to them
    log = ax.get_xscale() == "log"

    def where(v: float) -> float:
        if log:
            return (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))
        return (v - lo) / (hi - lo) if hi != lo else 0.5

    fig = ax.get_figure()
    length = ax.get_position().width * fig.get_figwidth() * 72 * LAYOUT_SHARE  # points
    if rotation:  # a rotated label takes less room along the axis
        length /= math.cos(math.radians(rotation))
    shown = spaced_labels([where(float(v)) for v in values], list(labels), length, font_size)
    ax.set_xticks(list(values))
    ax.set_xticklabels(shown, rotation=rotation, fontsize=font_size)
    ax.minorticks_off()
