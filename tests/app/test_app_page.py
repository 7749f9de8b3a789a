"""The streamlit page without a browser (streamlit's AppTest, the `app` extra): each family's panel is drawn under
the keys its DashboardPanel names, the containers the browser test (test_app_browser.py) finds by their CSS class
``st-key-<key>``; no exception on the page."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from helpers import need_extra, sae_config

from toymodels.app import SCRIPT
from toymodels.config import SweepConfig
from toymodels.config.presets import preset
from toymodels.running.sweep import run_sweep

need_extra("streamlit", "app")
need_extra("plotly", "app")
from streamlit.testing.v1 import AppTest  # noqa: E402

PAGE_TIMEOUT_S = 120  # the first run imports torch on a loaded 2-core machine


#: the multi-part preset whose folder the tests read as one study, and the two of its parts they train
STUDY, PARTS = "SAE-ABS", ("SAE-ABS-relu_l1", "SAE-ABS-topk")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A folder of one results folder per family, as in the browser test: runs/LR1-smoke (EM), runs/sae-topk
    (SAE), runs/TMS-intro-smoke (TMS, m = 2), runs/PC-kurtosis-smoke (quadratic), and runs/SAE-ABS-smoke, a
    multi-part preset's folder with two of its parts trained."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("runs")
    try:
        run_sweep(preset("LR1", scale="smoke"), root / "LR1-smoke", progress=False)
        run_sweep(SweepConfig(name="sae-topk", base=sae_config(sae_arch="topk", l1=0.0), grid={"sae_k": [1, 3]}),
                  root / "sae-topk", progress=False)
        for name in ("TMS-intro", "PC-kurtosis"):
            run_sweep(preset(name, scale="smoke"), root / f"{name}-smoke", progress=False)
        for part in PARTS:
            run_sweep(preset(part, scale="smoke"), root / f"{STUDY}-smoke" / part, progress=False)
    finally:
        torch.set_num_threads(old)
    return root


def keyed(at: AppTest, key: str):
    """The page's one container under ``key``."""
    (block,) = [b for b in at.get("flex_container") if b.key == key]
    return block


def chart_title(block) -> str:
    (chart,) = block.get("plotly_chart")
    return json.loads(chart.proto.spec)["layout"]["title"]["text"]


def test_each_family_s_panel_is_drawn_under_its_keys(runs, monkeypatch):
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), "--", str(runs)])  # as `streamlit run main.py -- DIR` passes it
    at = AppTest.from_file(str(SCRIPT), default_timeout=PAGE_TIMEOUT_S).run()
    assert not at.exception
    keys = {b.key for b in at.get("flex_container")}
    assert {"instance-table", "training-figure", "sfa-figure", "mechanism"} <= keys and "sae-figure" not in keys
    assert chart_title(keyed(at, "sfa-figure")).startswith("single-feature activations · r0000")
    (mechanism,) = keyed(at, "mechanism").get("table")
    assert "rank of broad block" in mechanism.value.index
    # the polytope lens of a ReLU family: the slice and the lens against the swept field (tests/app/test_app_browser)
    assert {"polytope-slice", "polytope-lens"} <= keys
    assert chart_title(keyed(at, "polytope-slice")).startswith("polytopes in the plane of features (0, 1) · r0000")

    # another instance redraws the panel with it
    next(s for s in at.selectbox if s.label == "Instance").set_value("r0002").run()
    assert not at.exception and "r0002" in chart_title(keyed(at, "sfa-figure"))

    # an SAE sweep shows its own panel instead
    at.radio(key="sweep").set_value("sae-topk").run()
    assert not at.exception
    keys = {b.key for b in at.get("flex_container")}
    assert {"sae-figure", "sae-metrics"} <= keys and "sfa-figure" not in keys
    assert "polytope-slice" not in keys  # TopK latents are chosen by rank: no polytopes
    assert "r0000" in chart_title(keyed(at, "sae-figure"))
    (metrics,) = keyed(at, "sae-metrics").get("table")
    assert "mcc" in metrics.value.index


@pytest.mark.parametrize(("sweep", "main", "others"), [
    ("TMS-intro-smoke", "tms-figure", {"tms-plane", "tms-dims", "tms-metrics", "tms-features"}),
    ("PC-kurtosis-smoke", "pc-figure", {"pc-gram", "pc-metrics", "pc-features"}),
])
def test_tms_and_the_quadratic_model_bring_their_own_panels(runs, monkeypatch, sweep, main, others):
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), "--", str(runs)])
    at = AppTest.from_file(str(SCRIPT), default_timeout=PAGE_TIMEOUT_S).run()
    at.radio(key="sweep").set_value(sweep).run()
    assert not at.exception
    keys = {b.key for b in at.get("flex_container")}
    assert {main, *others, "instance-table"} <= keys and "sfa-figure" not in keys and "sae-figure" not in keys
    assert "r0000" in chart_title(keyed(at, main))
    assert not [w for w in at.info if "brings no panel" in w.value]


def test_a_multi_part_preset_s_folder_is_one_study_with_its_parts(runs, monkeypatch):
    monkeypatch.setattr(sys, "argv", [str(SCRIPT), "--", str(runs)])
    at = AppTest.from_file(str(SCRIPT), default_timeout=PAGE_TIMEOUT_S).run()
    sweeps = at.radio(key="sweep")
    assert f"{STUDY}-smoke" in sweeps.options and not [o for o in sweeps.options if o.startswith(f"{STUDY}-smoke/")]
    sweeps.set_value(f"{STUDY}-smoke").run()
    assert not at.exception
    keys = {b.key for b in at.get("flex_container")}
    assert {"study-parts", "study-summary", "study-figure", "sae-mcc-l0"} <= keys
    (parts,) = keyed(at, "study-parts").get("dataframe")
    table = parts.value.set_index("part")
    assert list(table.index[:2]) == list(PARTS) and (table["sweeps"].iloc[2:] == "not started").all()
    (summary,) = keyed(at, "study-summary").get("dataframe")
    assert set(summary.value["part"]) == set(PARTS)
    (chart,) = keyed(at, "sae-mcc-l0").get("plotly_chart")
    names = {t["name"].split(",")[0] for t in json.loads(chart.proto.spec)["data"] if "name" in t}
    assert {"relu_l1", "topk"} <= names  # the SAEs of both parts on one figure

    # one part: its own page, as if picked alone
    part_choice = next(r for r in at.radio if r.label == "Show")
    part_choice.set_value(PARTS[1]).run()
    assert not at.exception
    keys = {b.key for b in at.get("flex_container")}
    assert {"instance-table", "sae-figure"} <= keys and "study-summary" not in keys
