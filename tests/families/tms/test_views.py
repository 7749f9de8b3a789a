"""The TMS family's views of any results folder: its feature geometry (a hand-built pentagon and antipodal pairs),
its report figures and section, and its dashboard panel (on a smoke TMS-intro sweep: n=5 features in m=2 dims)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from helpers import PNG_MAGIC, polygon

from toymodels.config.presets import preset
from toymodels.families import get_family
from toymodels.families.base import family_hook
from toymodels.families.tms.geometry import POLYTOPE_FRACTIONS, feature_geometry, fraction_counts
from toymodels.report.html import write_report
from toymodels.running.sweep import run_sweep


@pytest.fixture(scope="module")
def intro(tmp_path_factory):
    """TMS-intro at smoke scale: three densities, one seed, m = 2."""
    return run_sweep(preset("TMS-intro", scale="smoke"), tmp_path_factory.mktemp("tms") / "intro", progress=False)


def tensors(W: np.ndarray) -> dict[str, torch.Tensor]:
    n = W.shape[1]
    return {"W": torch.tensor(W), "b": torch.zeros(n), "importance": torch.ones(n)}


def test_a_pentagon_puts_every_feature_on_two_fifths():
    geo = feature_geometry(tensors(polygon(5)))
    np.testing.assert_allclose(geo["dims"], 0.4, atol=1e-9)
    np.testing.assert_allclose(geo["norms"], 1.0)
    assert geo["represented"] == 5 and geo["dims_per_feature"] == pytest.approx(2 / 5)
    np.testing.assert_allclose(np.diag(geo["gram"]), 1.0)
    assert fraction_counts(geo["dims"]) == {**{k: 0 for k in POLYTOPE_FRACTIONS}, "2/5": 5, "not represented": 0,
                                           "other": 0}


def test_antipodal_pairs_and_an_unused_feature_are_counted_apart():
    W = np.zeros((2, 5))
    W[:, 0], W[:, 1], W[:, 2], W[:, 3] = [1, 0], [-1, 0], [0, 1], [0, -1]  # two antipodal pairs; feature 4 unused
    counts = fraction_counts(feature_geometry(tensors(W))["dims"])
    assert counts["1/2"] == 4 and counts["not represented"] == 1 and counts["other"] == 0


def test_the_report_draws_the_geometry_and_counts_every_feature(intro):
    path = write_report(intro)
    figures = intro.folder / "figures"
    for name in ("tms_plane", "tms_geometry", "tms_dims"):
        assert (figures / f"{name}.png").read_bytes()[:8] == PNG_MAGIC, name
    page = path.read_text()
    assert "<h2>Feature geometry</h2>" in page and "id='tms_plane'" in page
    section = page[page.index("<h2>Feature geometry</h2>"):]
    rows = re.findall(r"<tr>(<td.*?)</tr>", section.split("</table>")[0])
    assert len(rows) == 3  # one per setting
    for row in rows:
        counts = [int(c) for c in re.findall(r"<td>(\d+)</td>", row)]
        assert sum(counts[1:]) == 5  # represented, then D_i bins that cover every feature once


def test_the_hidden_plane_is_drawn_only_for_two_hidden_dimensions(intro, tmp_path):
    from toymodels.families.tms.figures import plane_figure

    assert plane_figure(intro) is not None
    wide = run_sweep(preset("TMS-basic", scale="smoke").replace(grid={"eps": [0.1]}), tmp_path / "basic",
                     progress=False)
    assert wide.sweep.base.model.m == 5 and plane_figure(wide) is None
    assert {p.name for p in [*write_report(wide).parent.glob("figures/*.png")]} >= {"tms_geometry.png",
                                                                                     "tms_dims.png"}
    assert not (tmp_path / "basic" / "figures" / "tms_plane.png").exists()


def test_the_dashboard_panel_shows_the_geometry_of_one_instance_at_a_step(intro):
    pytest.importorskip("plotly", reason="needs the 'app' extra")
    from toymodels.app.data import panel_parts

    panel = family_hook(get_family("tms"), "dashboard_panel")()
    assert panel is not None
    step = intro.checkpoint_steps("r0002")[-1]
    view = panel.view(intro, "r0002", step)
    assert view["gram"].shape == (5, 5)
    np.testing.assert_allclose(view["W"], intro.params("r0002")["W"].double().numpy())
    parts = panel_parts(panel, view, "r0002 · step", intro.instances)
    assert [f.key for f in parts.main] == ["tms-figure"]
    assert [f.key for f in parts.figures] == ["tms-plane", "tms-dims"]
    assert [t.key for t in parts.tables] == ["tms-metrics"] and [t.key for t in parts.folded] == ["tms-features"]
    metrics = parts.tables[0].table.set_index("quantity")["value"]
    assert metrics["represented features"] == f"{view['represented']} of 5"
