"""What every figure shares: the colour scale, the chosen instances, the figure list and the files written."""

from __future__ import annotations

import pytest
from helpers import PNG_MAGIC, as_model

from toymodels.families import get_family
from toymodels.report.figures import (
    GENERIC_FIGURES,
    ColourScale,
    all_plots,
    choose_instances,
    figure_specs,
    is_log_spaced,
)
from toymodels.plotting.common import SINGLE_COLOUR, instance_title
from toymodels.report.polytope import POLYTOPE_FIGURES


def test_every_figure_is_written_as_a_png(reported):
    results, _ = reported
    files = sorted((results.folder / "figures").glob("*.png"))
    specs = figure_specs(results)
    assert [f.stem for f in files] == sorted(s.name for s in specs) == sorted(
        ["training", "swept", "sfa", "bias", "probe", "mechanism", *(s.name for s in POLYTOPE_FIGURES)])
    for f in files:
        data = f.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000, f.name
        # readable size: at least 600 px wide (width is bytes 16-20 of the IHDR chunk)
        assert int.from_bytes(data[16:20], "big") >= 600, f.name


def test_a_family_adds_its_own_figures_after_the_generic_ones(diverging_results):
    em = figure_specs(diverging_results)
    own = [s.name for s in get_family("em").figures()]
    assert em[:2] == GENERIC_FIGURES and [s.name for s in em[2:2 + len(own)]] == own
    assert em[2 + len(own):] == list(POLYTOPE_FIGURES)  # EM has a ReLU layer: the polytope lens comes last
    tms = as_model(diverging_results, "tms")  # an EM folder relabelled: no TMS tensors, so no TMS figure of its own
    assert figure_specs(tms)[:2] == GENERIC_FIGURES and not set(figure_specs(tms)) & set(POLYTOPE_FIGURES)


def test_all_plots_returns_the_paths_it_writes(diverging_results, tmp_path):
    written = all_plots(diverging_results, out_dir=tmp_path)
    assert list(written) == [s.name for s in figure_specs(diverging_results)]
    assert written["training"] == [tmp_path / "training.png"] and written["swept"] == [tmp_path / "swept.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for ps in written.values() for p in ps)


def test_colour_scale_of_a_sweep_is_log_for_log_spaced_values(diverging_results):
    scale = ColourScale.of(diverging_results)
    assert scale.field == "lr" and scale.values == [0.01, 0.1, 1000.0] and scale.numeric and scale.log
    assert scale.fraction(0.1) == pytest.approx(0.2)  # log10: -1 on [-2, 3]
    assert len({scale.colour(v) for v in scale.values}) == 3
    assert is_log_spaced([0.001, 0.003, 0.03]) and is_log_spaced([16, 64, 2048])
    assert not is_log_spaced([-1.0, 0.0, 0.5]) and not is_log_spaced([16, 32])
    assert not is_log_spaced(["relu", "gelu"])


def test_colour_scale_kinds():
    lr = ColourScale("lr", [0.001, 0.01, 0.1, 0.01])
    assert lr.numeric and lr.log and lr.fraction(0.01) == pytest.approx(0.5) and lr.values == [0.001, 0.01, 0.1]
    bias = ColourScale("bias_offset", [-2.0, 0.0, 1.0])
    assert bias.numeric and not bias.log and bias.fraction(0.0) == pytest.approx(2 / 3)
    assert bias.colour(-2.0) == bias.gradient()[0] and bias.colour(1.0) == bias.gradient()[-1]
    opt = ColourScale("optimizer", ["lamb", "adam"])
    assert opt.categorical and not opt.numeric and opt.colour("adam") != opt.colour("lamb")
    one = ColourScale("lr", [0.1, 0.1])
    assert not one.numeric and not one.categorical and one.colour(0.1) == SINGLE_COLOUR


def test_chosen_instances_span_the_swept_values(diverging_results):
    # lowest, middle, highest lr; first seed of each (lr=1000 only has diverged seeds, so one of those)
    assert choose_instances(diverging_results) == ["r0000", "r0002", "r0004"]
    assert choose_instances(diverging_results, n=2) == ["r0000", "r0004"]
    assert instance_title(diverging_results, "r0002") == ("lr=0.1, seed 0 (r0002)", False)
    title, diverged = instance_title(diverging_results, "r0004")
    assert diverged and title.startswith("lr=1000, seed 0 (r0004)\nDIVERGED at step")
