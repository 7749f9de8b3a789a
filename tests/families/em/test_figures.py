"""The EM family's own figures: display order, diverged instances in titles, probe and mechanism of one instance."""

from __future__ import annotations

import numpy as np
from helpers import PNG_MAGIC, hand_built_neurons

from toymodels.families import get_family
from toymodels.families.em import figures as em_figures


def test_the_family_lists_its_figures():
    assert [s.name for s in get_family("em").figures()] == ["sfa", "bias", "probe", "mechanism"]
    assert all(s.caption.startswith(("Single", "Biases", "Multi", "Mechanism")) for s in em_figures.FIGURES)


def test_plot_functions_return_the_paths_they_write(diverging_results, tmp_path):
    paths = em_figures.bias_plot(diverging_results, run_ids=["r0000"], out_dir=tmp_path)
    assert paths == [tmp_path / "bias.png"] and paths[0].read_bytes().startswith(PNG_MAGIC)


def test_sorted_sfa_of_a_hand_built_model():
    """Mono neurons by feature (n2 and its duplicate n4 on f0, n1 on f2), the poly n0, the dead n3 last; features by
    the position of their strongest neuron: a diagonal."""
    s = em_figures.sorted_sfa(*hand_built_neurons(), "relu")
    assert s["neurons"].tolist() == [2, 4, 1, 0, 3] and s["features"].tolist() == [0, 2, 1]
    assert s["n_mono"] == 3 and s["mono"].tolist() == [True, True, True, False, False]
    np.testing.assert_allclose(s["sfa"], [[1.5, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0.3, 0.3, 0.3], [0, 0, 0]])


def test_bias_figure_uses_the_heatmap_order(diverging_results):
    fig = em_figures.bias_figure(diverging_results, run_ids=["r0000"])
    p, nonlin = em_figures.em_tensors(diverging_results, "r0000")
    order = em_figures.sorted_sfa(p["W1"], p["b1"], p["E"], nonlin)["neurons"]
    ax = fig.axes[0]
    drawn = sorted((x, y) for c in ax.collections for x, y in c.get_offsets())
    assert [y for _, y in drawn] == p["b1"].numpy()[order].tolist()


def test_instance_figures_title_the_diverged_instance(diverging_results):
    for build in (em_figures.sfa_figure, em_figures.bias_figure):
        fig = build(diverging_results)
        titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
        assert sum("DIVERGED" in t for t in titles) == 1, build.__name__  # only the lr=1000 panel
        assert "lr=1000" in next(t for t in titles if "DIVERGED" in t)


def test_probe_and_mechanism_figures_describe_one_instance(diverging_results):
    fig = em_figures.probe_figure(diverging_results, "r0002")
    assert "r0002" in fig.get_suptitle() and "mono neurons fire without their feature" in fig.get_suptitle()
    assert fig.axes[1].get_xlabel().startswith("monosemanticity ratio")
    fig = em_figures.mechanism_figure(diverging_results, "r0002")
    assert "r0002" in fig.get_suptitle()
    assert fig.axes[0].get_title().startswith("(a) broad block")
