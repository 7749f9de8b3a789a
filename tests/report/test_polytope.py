"""The polytope lens in the report (report/polytope.py): the three figures and the report.html section for a ReLU
family; none for a family without ReLU layers; diverged instances do not break it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import PNG_MAGIC

from toymodels.config import ExperimentConfig, SweepConfig
from toymodels.report.figures import figure_specs
from toymodels.report.polytope import (
    density_figure,
    final_lens,
    lens_figure,
    polytope_html,
    polytope_specs,
    slice_figure,
)
from toymodels.running.sweep import run_sweep

NAMES = ["polytope_slice", "polytope_density", "polytope_lens"]


@pytest.fixture(scope="module")
def tms_pentagon(tmp_path_factory):
    """TMS n = 5, m = 2, two sparsities, 256 steps: enough for five columns of W in the hidden plane."""
    base = ExperimentConfig.from_flat({"model": "tms", "N": 5, "m": 2, "batch_size": 256, "steps": 256,
                                       "optimizer": "adamw", "lr": 3e-2, "schedule": "constant", "eps": 0.05})
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run_sweep(SweepConfig(name="pentagon", base=base, grid={"eps": [1.0, 0.05]}),
                         tmp_path_factory.mktemp("runs") / "pentagon", progress=False)
    finally:
        torch.set_num_threads(old)


def test_a_relu_family_gets_the_lens_figures_and_section(tms_pentagon, tmp_path):
    specs = figure_specs(tms_pentagon)
    assert [s.name for s in specs][-3:] == NAMES
    for spec in polytope_specs(tms_pentagon):
        (path,) = spec.plot(tms_pentagon, out_dir=tmp_path)
        assert path.name == f"{spec.name}.png" and path.read_bytes()[:8] == PNG_MAGIC
    section = polytope_html(tms_pentagon)
    assert section.startswith("<h2>Polytope lens</h2>") and section.count("<tr>") == 3  # header + two settings


def test_the_slice_shows_every_feature_of_the_hidden_plane(tms_pentagon):
    fig = slice_figure(tms_pentagon)
    axes = fig.get_axes()
    assert len(axes) == 2  # one per setting
    # m = 2: the plane is the whole hidden space, so every represented feature's arrow is drawn, and the five
    # output units' boundaries are lines
    sparse = axes[1]
    assert len(sparse.lines) == 5
    assert len([t for t in sparse.texts if t.get_text().isdigit()]) >= 3
    assert "polytopes in view" in sparse.get_title()


def test_lens_figure_and_table_follow_the_swept_field(tms_pentagon):
    table, problem = final_lens(tms_pentagon)
    assert problem == ""
    assert sorted(table["eps"]) == [0.05, 1.0] and (table["step"] == tms_pentagon.checkpoint_steps("r0000")[-1]).all()
    assert np.isfinite(table["code_purity"]).all()
    fig = lens_figure(tms_pentagon)
    purity_axis = fig.get_axes()[0]
    assert [line.get_label() for line in purity_axis.lines][:4] == ["code purity", "code completeness",
                                                                    "neuron purity", "neuron completeness"]
    assert len(density_figure(tms_pentagon).get_axes()) == 2


def test_diverged_instances_do_not_break_the_lens(diverging_results, tmp_path):
    for spec in polytope_specs(diverging_results):
        assert spec.plot(diverging_results, out_dir=tmp_path)
    table, _ = final_lens(diverging_results)
    assert len(table) == len(diverging_results.instances)
    ok = table[table["status"] == "ok"]
    assert np.isfinite(ok["code_purity"]).all() and np.isfinite(ok["validity_upper"]).all()
    assert "Polytope lens" in polytope_html(diverging_results)
