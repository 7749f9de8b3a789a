"""The dashboard's SAE panels (toymodels.app.sae): which sweeps get them, one instance's view, the figures."""

from __future__ import annotations

import pytest
import torch
from helpers import SMALL_EM, need_extra, sae_config

from toymodels.config import SweepConfig
from toymodels.running.sweep import run_sweep

need_extra("plotly", "app")
from toymodels.app.sae import cosine_figure, has_dictionary, mcc_l0_figure, metrics_table, sae_view  # noqa: E402


@pytest.fixture(scope="module")
def sae_results(tmp_path_factory):
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    sweep = SweepConfig(name="sae", base=sae_config(sae_arch="batchtopk", l1=0.0), grid={"sae_k": [1, 4]})
    try:
        yield run_sweep(sweep, tmp_path_factory.mktemp("sae") / "run", progress=False)
    finally:
        torch.set_num_threads(old)


def test_sae_sweeps_have_a_dictionary_and_em_sweeps_do_not(sae_results, tmp_path):
    assert has_dictionary(sae_results)
    em = run_sweep(SweepConfig(name="em", base=SMALL_EM.replace(steps=16)), tmp_path / "em", progress=False)
    assert not has_dictionary(em)


def test_one_instances_view_at_a_checkpoint_and_at_the_end(sae_results):
    rid = "r0001"
    steps = sae_results.checkpoint_steps(rid)
    first = sae_view(sae_results, rid, steps[0])
    final = sae_view(sae_results, rid, steps[-1])
    assert first["cos"].shape == (32, 32) and first["arch"] == "batchtopk" and final["width"] == 32
    row = sae_results.row(rid)
    assert final["metrics"]["mcc"] == pytest.approx(row["mcc"])
    curve = sae_results.curve(rid, "mcc")
    assert first["metrics"]["mcc"] == pytest.approx(float(curve["value"].iloc[0]))
    assert list(metrics_table(final)["metric"])[:2] == ["mcc", "features_recovered"]


def test_figures_have_the_heatmap_and_one_line_per_setting(sae_results):
    view = sae_view(sae_results, "r0000")
    fig = cosine_figure(view, "r0000")
    assert fig.data[0].type == "heatmap" and fig.data[0].z.shape == (32, 32)
    fig = mcc_l0_figure(sae_results.instances)
    assert [t.name for t in fig.data] == ["batchtopk, width 32"]
    assert len(fig.data[0].x) == 2
