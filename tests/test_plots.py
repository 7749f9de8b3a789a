"""Figures of a results folder: files, aggregation of seeds, diverged instances, ordering, EM-only skipping."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from matplotlib.collections import PolyCollection
from matplotlib.colors import LogNorm

from toymodels import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EM_FIGURES = {"sfa", "bias", "probe", "mechanism"}


def _legend_texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]


def test_every_figure_is_written_as_a_png(reported):
    results, _ = reported
    files = sorted((results.folder / "figures").glob("*.png"))
    assert [f.stem for f in files] == sorted(s.name for s in plots.FIGURES)  # 6 figures, one file each
    for f in files:
        data = f.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000, f.name
        # readable size: at least 600 px wide (width is bytes 16-20 of the IHDR chunk)
        assert int.from_bytes(data[16:20], "big") >= 600, f.name


def test_plot_functions_return_the_paths_they_write(diverging_results, tmp_path):
    paths = plots.bias_plot(diverging_results, run_ids=["r0000"], out_dir=tmp_path)
    assert paths == [tmp_path / "bias.png"] and paths[0].read_bytes().startswith(PNG_MAGIC)


def test_training_plot_draws_seeds_as_mean_and_band(diverging_results):
    fig = plots.training_figure(diverging_results)
    assert [ax.get_title() for ax in fig.axes[:3]] == ["task loss", "mono neurons / features", "mean bias"]
    for ax in fig.axes[:3]:
        solid = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-" and ln.get_color() != plots.DIVERGED_COLOUR
                 and len(ln.get_xdata()) > 1 and ln.get_linewidth() > 1.5]
        bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
        # two settings train (lr 0.01, 0.1), each with two seeds: one mean line and one band each, not 4 lines
        assert len(solid) == 2 and len(bands) == 2, ax.get_title()
    assert fig.axes[0].get_xlabel() == "log2(training step + 1)"


def test_training_plot_shows_diverged_instances(diverging_results):
    fig = plots.training_figure(diverging_results)
    assert any("diverged" in t for t in _legend_texts(fig))
    ax = fig.axes[1]  # mono_per_feature at checkpoints 0, 1, 3: the diverged seeds have points before step 3
    grey = [ln for ln in ax.get_lines() if ln.get_color() == plots.DIVERGED_COLOUR]
    crosses = [ln for ln in grey if ln.get_marker() == "x"]
    assert len(crosses) == 2  # one per diverged seed, at log2(diverged_at + 1)
    at = diverging_results.instances.query("status == 'diverged'")["diverged_at"]
    assert sorted(c.get_xdata()[0] for c in crosses) == pytest.approx(sorted(np.log2(at + 1)))
    # the y range follows the instances that trained, not the diverged values (mean bias reaches ~ -1e19)
    lo, hi = fig.axes[2].get_ylim()
    assert lo > -10 and hi < 10


def test_colour_scale_is_log_for_log_spaced_values(diverging_results):
    scale = plots.ColourScale.of(diverging_results)
    assert scale.field == "lr" and scale.log and isinstance(scale.norm, LogNorm)
    assert plots.is_log_spaced([0.001, 0.003, 0.03]) and plots.is_log_spaced([16, 64, 2048])
    assert not plots.is_log_spaced([-1.0, 0.0, 0.5]) and not plots.is_log_spaced([16, 32])
    assert not plots.is_log_spaced(["relu", "gelu"])


def test_swept_plot_marks_diverged_and_uses_log_x(diverging_results):
    fig = plots.swept_figure(diverging_results)
    assert [ax.get_title() for ax in fig.axes] == [
        "mono neurons / features", "features covered (fraction)", "final task loss"]
    assert all(ax.get_xscale() == "log" for ax in fig.axes)
    assert "diverged (2)" in _legend_texts(fig)


def test_chosen_instances_span_the_swept_values(diverging_results):
    # lowest, middle, highest lr; first seed of each (lr=1000 only has diverged seeds, so one of those)
    assert plots.choose_instances(diverging_results) == ["r0000", "r0002", "r0004"]
    assert plots.choose_instances(diverging_results, n=2) == ["r0000", "r0004"]
    best = plots.most_monosemantic(diverging_results)
    inst = diverging_results.instances
    assert inst.set_index("run_id").loc[best, "status"] == "ok"
    assert inst.set_index("run_id").loc[best, "mono_per_feature"] == inst.query("status == 'ok'")[
        "mono_per_feature"].max()


def test_em_figures_title_the_diverged_instance(diverging_results):
    for build in (plots.sfa_figure, plots.bias_figure):
        fig = build(diverging_results)
        titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
        assert sum("DIVERGED" in t for t in titles) == 1, build.__name__  # only the lr=1000 panel
        assert "lr=1000" in next(t for t in titles if "DIVERGED" in t)


def test_sfa_ordering_on_hand_built_model():
    """N = 3, E = I. n0: poly (0.2 on every feature, bias 0.1: activation 0.3 everywhere); n1: mono on feature 2
    (activation 0.5); n2: mono on feature 0 (activation 1.5, ratio 1.5/(1e-10+1.5), a hair above n1's); n3: dead.
    Expected neuron order by ratio: n2, n1, n0, then the dead n3. Features by the position of their strongest
    neuron: feature 0 (n2, position 0), feature 2 (n1, position 1), feature 1 (n0, position 2): a diagonal."""
    W1 = torch.tensor([[0.2, 0.2, 0.2], [0, 0, 1], [2, 0, 0], [-1, -1, -1]], dtype=torch.float64)
    b1 = torch.tensor([0.1, -0.5, -0.5, -0.1], dtype=torch.float64)
    s = plots.sorted_sfa(W1, b1, torch.eye(3, dtype=torch.float64), "relu")
    assert s["neurons"].tolist() == [2, 1, 0, 3]
    assert s["features"].tolist() == [0, 2, 1]
    assert s["n_mono"] == 2 and s["mono"].tolist() == [True, True, False, False]
    np.testing.assert_allclose(s["sfa"][:3], [[1.5, 0, 0], [0, 0.5, 0], [0.3, 0.3, 0.3]])
    assert (s["sfa"][3] == 0).all()  # the dead neuron's row


def test_probe_and_mechanism_figures_describe_one_instance(diverging_results):
    fig = plots.probe_figure(diverging_results, "r0002")
    assert "r0002" in fig.get_suptitle() and "mono neurons fire without their feature" in fig.get_suptitle()
    assert fig.axes[1].get_xlabel().startswith("monosemanticity ratio")
    fig = plots.mechanism_figure(diverging_results, "r0002")
    assert "r0002" in fig.get_suptitle()
    assert fig.axes[0].get_title().startswith("(a) polysemantic block")


def test_em_only_figures_are_skipped_for_other_models(diverging_results, tmp_path):
    sweep = diverging_results.sweep
    tms_sweep = sweep.model_copy(update={"base": sweep.base.replace(model="tms")})
    tms = dataclasses.replace(diverging_results, sweep=tms_sweep)
    assert not plots.is_em(tms)
    for spec in plots.FIGURES:
        if spec.name in EM_FIGURES:
            assert spec.em_only and spec.plot(tms, out_dir=tmp_path) == [], spec.name
    assert list(tmp_path.iterdir()) == []
    # the generic figures still apply (built, not rendered, to keep the test fast)
    assert plots.training_figure(tms) is not None and plots.swept_figure(tms) is not None


def test_second_swept_field_gets_its_own_lines(diverging_results):
    """Relabel the sweep as lr x bias_offset (seed 1 of each lr becomes bias_offset 0.5, one seed per setting):
    the training plot tells the bias values apart by line style, the summary plot draws one line per bias."""
    inst = diverging_results.instances.copy()
    inst["bias_offset"] = np.where(inst["seed"] == 1, 0.5, 0.0)
    inst["seed"] = 0
    sweep = diverging_results.sweep.model_copy(update={"grid": {"lr": [0.01, 0.1, 1000.0], "bias_offset": [0.0, 0.5]},
                                                       "seeds": 1})
    res = dataclasses.replace(diverging_results, instances=inst, sweep=sweep)
    assert plots.setting_fields(res) == ["lr", "bias_offset"] and len(plots.settings(res)) == 6
    fig = plots.training_figure(res)
    texts = _legend_texts(fig)
    assert "bias_offset=0" in texts and "bias_offset=0.5" in texts
    styles = {ln.get_linestyle() for ln in fig.axes[1].get_lines() if ln.get_color() != plots.DIVERGED_COLOUR
              and ln.get_linewidth() > 1.5}
    assert len(styles) == 2
    assert not [c for c in fig.axes[1].collections if isinstance(c, PolyCollection)]  # one seed: no band
    fig = plots.swept_figure(res)
    assert {"bias_offset=0", "bias_offset=0.5"} <= set(_legend_texts(fig))
