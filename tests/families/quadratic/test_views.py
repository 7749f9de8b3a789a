"""The quadratic family's capacity view of any results folder: the per-instance numbers against the capacity
theory, the report's figure and section, the swept figure's optimal-loss line and the dashboard panel (on a smoke
PC-kurtosis sweep: n=8 features, D=4)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from helpers import PNG_MAGIC, legend_texts

from toymodels.config.presets import preset
from toymodels.families import get_family
from toymodels.families.base import family_hook
from toymodels.families.quadratic import quadratic_capacity_theory, quadratic_expected_loss
from toymodels.families.quadratic.capacity import capacity_counts, capacity_view
from toymodels.report.html import write_report
from toymodels.report.swept import swept_figure
from toymodels.running.sweep import run_sweep


@pytest.fixture(scope="module")
def pc(tmp_path_factory):
    """PC-kurtosis at smoke scale: K = 1.5, 5, 30, one seed each."""
    return run_sweep(preset("PC-kurtosis", scale="smoke"), tmp_path_factory.mktemp("pc") / "run", progress=False)


def test_capacities_are_counted_with_the_family_s_tolerance():
    assert capacity_counts([1.0, 0.97, 0.5, 0.05, 0.04, 0.0]) == {"monosemantic": 2, "fractional": 2, "ignored": 2}


def test_one_instance_s_view_matches_the_theory_and_the_closed_form_loss(pc):
    row = pc.row("r0002")
    view = capacity_view(pc, "r0002")
    t = pc.params("r0002")
    v = t["importance"].double()
    theory, optimal = quadratic_capacity_theory(v, 4, float(row["kurtosis"]))
    np.testing.assert_allclose(view["theory"], theory.numpy())
    assert view["theory"].sum() == pytest.approx(4.0, abs=1e-6)  # K > 3: the optimum uses every dimension
    assert view["optimal_loss"] == pytest.approx(optimal)
    expected = quadratic_expected_loss(t["W"].double()[None], t["b"].double().reshape(1), v[None], row["kurtosis"])
    assert view["expected_loss"] == pytest.approx(float(expected[0]))
    assert view["expected_loss"] == pytest.approx(float(row["expected_loss"]), rel=1e-4)  # what evaluate saved
    assert view["off_optimum"] == (view["expected_loss"] > 1.01 * view["optimal_loss"])
    np.testing.assert_allclose(np.diag(view["gram"]), view["norms2"])


def test_the_report_draws_the_capacity_view_and_tabulates_every_feature(pc):
    page = write_report(pc).read_text()
    assert (pc.folder / "figures" / "pc_capacity.png").read_bytes()[:8] == PNG_MAGIC
    assert "<h2>Capacity allocation</h2>" in page and "id='pc_capacity'" in page
    per_feature = page[page.index("Per feature"):].split("</table>")[0]
    assert len(re.findall(r"<tr><td>", per_feature)) == 8  # one row per feature
    assert per_feature.count("(") >= 8 * 3  # trained C_i (optimal C_i) for each of the three settings


def test_the_swept_figure_draws_and_names_the_optimal_loss(pc):
    fig = swept_figure(pc)
    assert "optimal loss (theory)" in legend_texts(fig)
    (line,) = [ln for ax in fig.axes for ln in ax.get_lines() if ln.get_label() == "optimal loss (theory)"]
    order = np.argsort(pc.instances["kurtosis"].to_numpy())
    np.testing.assert_allclose(line.get_ydata(), pc.instances["optimal_loss"].to_numpy()[order])


def test_the_dashboard_panel_shows_capacities_against_the_theory(pc):
    pytest.importorskip("plotly", reason="needs the 'app' extra")
    from toymodels.app.data import panel_parts

    panel = family_hook(get_family("quadratic"), "dashboard_panel")()
    step = pc.checkpoint_steps("r0000")[0]
    view = panel.view(pc, "r0000", step)
    W = pc.params("r0000", step)["W"].double()
    np.testing.assert_allclose(view["gram"], (W.T @ W).numpy())  # the checkpoint asked for, not the final model
    parts = panel_parts(panel, view, "r0000 · step 0", pc.instances)
    assert [f.key for f in [*parts.main, *parts.figures]] == ["pc-figure", "pc-gram"]
    bars, diamonds = parts.main[0].figure.data
    assert sorted(bars.y) == pytest.approx(sorted(view["capacity"]))
    assert sorted(diamonds.y) == pytest.approx(sorted(view["theory"]))
    quantities = parts.tables[0].table.set_index("quantity")["value"]
    assert quantities["kurtosis K"] == "1.5" and quantities["hidden size D"] == "4"
