"""The dashboard's polytope-lens figures (app/polytope.py; the page itself: test_app_page.py and the browser
test): the slice's polytopes, lines and arrows, and the lens against the swept field."""

from __future__ import annotations

import numpy as np
from helpers import need_extra

need_extra("plotly", "app")
need_extra("streamlit", "app")
from toymodels.app.polytope import lens_plotly, slice_plotly


def view() -> dict:
    ids = np.zeros((5, 5), dtype=int)
    ids[:, 3:] = 1
    return {"ids": ids, "coords": np.linspace(-1, 1, 5), "extent": 1.0, "features": (0, 1),
            "lines": np.array([[1.0, 0.0, 0.2], [0.0, 1.0, -0.5]]), "arrows": np.array([[0.8, 0.0], [0.0, 0.9],
                                                                                        [0.1, 0.1]]),
            "in_plane": np.array([1.0, 1.0, 0.2]), "note": ""}


def test_slice_figure_has_the_polytopes_the_lines_and_the_features_in_the_plane():
    fig = slice_plotly(view(), "t")
    heat, *rest = fig.data
    assert heat.type == "heatmap" and set(np.unique(heat.customdata)) == {0, 1}
    lines = [t for t in rest if t.mode == "lines"]
    arrows = [t for t in rest if t.mode == "lines+markers+text"]
    assert len(lines) == 2 and len(arrows) == 2  # feature 2 lies mostly outside the plane
    assert list(lines[0].x) == [0.2, 0.2]  # x = 0.2, a vertical line
    assert fig.layout.title.text == "t"


def test_lens_figure_has_a_line_per_measure_over_the_swept_values():
    import pandas as pd

    table = pd.DataFrame({"lr": [0.001, 0.01, 0.001, 0.01], "status": ["ok"] * 4,
                          "code_purity": [1.0, 0.8, 0.9, 0.7], "code_completeness": [0.1, 0.3, 0.1, 0.3],
                          "neuron_purity": [0.3, 0.5, 0.3, 0.5], "neuron_completeness": [0.7, 0.5, 0.7, 0.5]})
    fig = lens_plotly(table, "lr")
    assert [t.name for t in fig.data] == ["code purity", "code completeness", "neuron purity", "neuron completeness"]
    assert list(fig.data[0].y) == [0.95, 0.75] and list(fig.data[0].x) == [0.001, 0.01]
    assert fig.layout.xaxis.type == "log"
