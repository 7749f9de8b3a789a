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


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """runs/LR1-smoke (an EM sweep) and runs/sae-topk (an SAE sweep), as in the browser test."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("runs")
    try:
        run_sweep(preset("LR1", scale="smoke"), root / "LR1-smoke", progress=False)
        run_sweep(SweepConfig(name="sae-topk", base=sae_config(sae_arch="topk", l1=0.0), grid={"sae_k": [1, 3]}),
                  root / "sae-topk", progress=False)
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

    # another instance redraws the panel with it
    next(s for s in at.selectbox if s.label == "Instance").set_value("r0002").run()
    assert not at.exception and "r0002" in chart_title(keyed(at, "sfa-figure"))

    # an SAE sweep shows its own panel instead
    at.radio(key="sweep").set_value("sae-topk").run()
    assert not at.exception
    keys = {b.key for b in at.get("flex_container")}
    assert {"sae-figure", "sae-metrics"} <= keys and "sfa-figure" not in keys
    assert "r0000" in chart_title(keyed(at, "sae-figure"))
    (metrics,) = keyed(at, "sae-metrics").get("table")
    assert "mcc" in metrics.value.index
