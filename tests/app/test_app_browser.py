"""The dashboard (``toymodels app``), end to end in a real browser, plus its CLI command.

The browser test builds a smoke results folder, a damaged copy and a copy whose sweep is "still running", starts
the streamlit app on a free localhost port, drives it with Playwright in Debian's headless chromium and saves
screenshots under ``ci-artifacts/app/`` (printed). It needs ``playwright`` and ``/usr/bin/chromium``
(``.ci/install-browser.sh`` installs both); without them it is skipped, unless TOYMODELS_REQUIRE_BROWSER=1 (then it
fails, so CI cannot pass by skipping it).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import need_extra, sae_config
from typer.testing import CliRunner

import toymodels.cli as cli
from toymodels.app import SCRIPT
from toymodels.config import SweepConfig
from toymodels.running.lock import FolderLock
from toymodels.config.presets import preset
from toymodels.running.sweep import run_sweep

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "ci-artifacts" / "app"
START_TIMEOUT_S = 60  # server up (imports torch on a loaded 2-core machine)
FIRST_RENDER_TIMEOUT_MS = 90_000  # the first script run imports torch and reads the results
STEP_TIMEOUT_MS = 30_000  # each later interaction
STUDY_PARTS = ("SAE-ABS-relu_l1", "SAE-ABS-topk")  # the parts of the study folder the test trains


def _need_browser() -> None:
    """Skip (or fail, under TOYMODELS_REQUIRE_BROWSER=1) naming what is missing, before any fixture does work."""
    problems = [f"{module} (the '{extra}' extra)" for module, extra in
                (("streamlit", "app"), ("plotly", "app"), ("playwright", "browser"))
                if importlib.util.find_spec(module) is None]
    if not os.access(CHROMIUM, os.X_OK):
        problems.append(f"Debian's chromium ({CHROMIUM})")
    if problems:
        msg = "needs " + ", ".join(problems) + ": run .ci/install-browser.sh"
        if os.environ.get("TOYMODELS_REQUIRE_BROWSER"):
            pytest.fail(msg)
        pytest.skip(msg)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def results_root(tmp_path_factory) -> Path:
    """runs/LR1-smoke (trained), runs/damaged (a group table overwritten: the group is left out), runs/running (no
    group finished, a live process holds its lock: this test) and runs/stopped (no group finished, nobody writing
    it); one folder of each other family (runs/sae-topk, runs/TMS-intro-smoke, runs/PC-kurtosis-smoke) and a
    multi-part preset's folder (runs/SAE-ABS-smoke, two parts)."""
    _need_browser()
    root = tmp_path_factory.mktemp("runs")
    run_sweep(preset("LR1", scale="smoke"), root / "LR1-smoke", progress=False)
    shutil.copytree(root / "LR1-smoke", root / "damaged")
    (root / "damaged" / "groups" / "g000" / "instances.parquet").write_bytes(b"PAR1 this is not a parquet file")
    sae = sae_config(sae_arch="topk", l1=0.0)
    run_sweep(SweepConfig(name="sae-topk", base=sae, grid={"sae_k": [1, 3]}), root / "sae-topk", progress=False)
    for name in ("TMS-intro", "PC-kurtosis"):  # one folder of each family
        run_sweep(preset(name, scale="smoke"), root / f"{name}-smoke", progress=False)
    for part in STUDY_PARTS:  # a multi-part preset's folder, two of its parts trained
        run_sweep(preset(part, scale="smoke"), root / "SAE-ABS-smoke" / part, progress=False)
    for name in ("running", "stopped"):
        (root / name).mkdir()
        shutil.copy(root / "LR1-smoke" / "sweep.json", root / name / "sweep.json")
    with FolderLock(root / "running"):
        yield root


@pytest.fixture
def app_url(results_root):
    """Start the app on a free port; stop it by its process id (terminate, then kill) afterwards."""
    _need_browser()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    log = open(ARTIFACTS / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(SCRIPT), "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
         "--client.toolbarMode", "viewer", "--", str(results_root)],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"streamlit exited with {proc.returncode}:\n{(ARTIFACTS / 'server.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit did not answer in {START_TIMEOUT_S} s; log in {ARTIFACTS / 'server.log'}")
            time.sleep(0.25)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


@pytest.mark.browser
def test_dashboard_in_browser(app_url, results_root, capsys):
    from playwright.sync_api import (  # optional: the `browser` extra
        expect,
        sync_playwright,
    )

    with capsys.disabled():
        print(f"\nscreenshots: {ARTIFACTS}")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(STEP_TIMEOUT_MS)
            expect.set_options(timeout=STEP_TIMEOUT_MS)
            page.goto(app_url)
            sidebar = page.get_by_test_id("stSidebar")
            sweeps = sidebar.get_by_test_id("stRadio")
            main = page.get_by_test_id("stMain")

            # Opens on the first sweep, with no clicks: the sweep list, the instance table and the figures.
            heatmap = page.locator(".st-key-sfa-figure .js-plotly-plot")
            expect(heatmap).to_be_visible(timeout=FIRST_RENDER_TIMEOUT_MS)
            for name in ("LR1-smoke", "damaged", "running", "stopped"):
                expect(sweeps).to_contain_text(name)
            expect(sweeps.get_by_role("radio", name="LR1-smoke")).to_be_checked()
            expect(main.get_by_role("heading", name="LR1-smoke")).to_be_visible()
            table = page.locator(".st-key-instance-table [data-testid=stDataFrame]")
            expect(table).to_be_visible()
            for run_id in ("r0000", "r0001", "r0002"):
                expect(table).to_contain_text(run_id)
            training = page.locator(".st-key-training-figure .js-plotly-plot")
            expect(training).to_be_visible()
            # one line per instance and metric (3 x 3) plus the colour-bar trace
            expect(training.locator(".scatterlayer .trace")).to_have_count(10)
            title = page.locator(".st-key-sfa-figure .gtitle")
            expect(title).to_contain_text("r0000")
            expect(page.locator(".st-key-mechanism")).to_contain_text("rank of broad block")
            assert main.get_by_test_id("stException").count() == 0
            page.screenshot(path=ARTIFACTS / "01-overview.png")
            # the polytope lens: one instance's slice through two features' plane, and the lens against lr
            lens_slice = page.locator(".st-key-polytope-slice .js-plotly-plot")
            expect(lens_slice).to_be_visible()
            expect(page.locator(".st-key-polytope-lens .js-plotly-plot")).to_be_visible()
            lens_slice.screenshot(path=ARTIFACTS / "01b-polytope-slice.png")
            training.screenshot(path=ARTIFACTS / "02-training.png")

            # Choosing another instance redraws the heatmap with that instance's activations.
            image = heatmap.locator(".heatmaplayer image")
            expect(image).to_have_count(1)
            before = image.get_attribute("href")
            heatmap.screenshot(path=ARTIFACTS / "03-heatmap-r0000.png")
            page.get_by_test_id("stSelectbox").filter(has_text="Instance").click()
            page.get_by_role("option", name=re.compile(r"^r0002")).click()
            # (while the script reruns the old figure may still be on the page next to the new one)
            expect(title.filter(has_text="r0002")).to_be_visible()
            expect(heatmap).to_have_count(1)
            expect(title).to_contain_text("r0002")
            expect(image).to_have_count(1)
            assert image.get_attribute("href") != before
            heatmap.screenshot(path=ARTIFACTS / "04-heatmap-r0002.png")

            # An SAE sweep shows its dictionary against the true features where a neuron model shows its neurons.
            sweeps.get_by_text("sae-topk", exact=True).click()
            expect(main.get_by_role("heading", name="sae-topk")).to_be_visible()
            # (while the script reruns, the old page's elements may still sit next to the new ones)
            sae_figure = page.locator(".st-key-sae-figure .js-plotly-plot")
            sae_metrics = page.locator(".st-key-sae-metrics")
            expect(sae_figure.first).to_be_visible()
            expect(sae_metrics.first).to_contain_text("mcc")
            expect(sae_figure).to_have_count(1)  # the page settles to one figure
            expect(sae_metrics).to_have_count(1)
            assert page.locator(".st-key-sfa-figure").count() == 0
            assert main.get_by_test_id("stException").count() == 0
            page.screenshot(path=ARTIFACTS / "05-sae.png")

            # TMS and the quadratic model show their own panels: the feature geometry, the capacity view.
            for name, key, text in (("TMS-intro-smoke", "tms", "represented features"),
                                    ("PC-kurtosis-smoke", "pc", "kurtosis K")):
                sweeps.get_by_text(name, exact=True).click()
                expect(main.get_by_role("heading", name=name)).to_be_visible()
                figure = page.locator(f".st-key-{key}-figure .js-plotly-plot")
                expect(figure.first).to_be_visible()
                expect(figure).to_have_count(1)
                expect(page.locator(f".st-key-{key}-figure .gtitle")).to_contain_text("r0000")
                expect(page.locator(f".st-key-{key}-metrics")).to_contain_text(text)
                assert page.locator(".st-key-sfa-figure").count() == 0
                assert page.locator(".st-key-sae-figure").count() == 0
                assert main.get_by_test_id("stException").count() == 0
                page.screenshot(path=ARTIFACTS / f"05-{key}.png")
            expect(page.locator(".st-key-tms-plane .js-plotly-plot")).to_have_count(0)  # (the quadratic page now)

            # A multi-part preset's folder is one entry: its parts as one study, and each part on request.
            expect(sweeps).not_to_contain_text("SAE-ABS-smoke/")
            sweeps.get_by_text("SAE-ABS-smoke", exact=True).click()
            expect(main.get_by_role("heading", name="SAE-ABS-smoke")).to_be_visible()
            for part in STUDY_PARTS:
                expect(page.locator(".st-key-study-parts")).to_contain_text(part)
            expect(page.locator(".st-key-study-figure .js-plotly-plot")).to_be_visible()
            expect(page.locator(".st-key-sae-mcc-l0 .js-plotly-plot")).to_be_visible()
            expect(page.locator(".st-key-study-summary [data-testid=stDataFrame]")).to_be_visible()
            assert main.get_by_test_id("stException").count() == 0
            page.screenshot(path=ARTIFACTS / "05-study.png")
            main.get_by_test_id("stRadio").filter(has_text="all parts").get_by_text(STUDY_PARTS[1], exact=True).click()
            expect(page.locator(".st-key-sae-figure .js-plotly-plot").first).to_be_visible()
            expect(page.locator(".st-key-study-summary")).to_have_count(0)
            assert main.get_by_test_id("stException").count() == 0

            # A damaged group is named with its file and left out (its table fails DONE's record), not a traceback.
            sweeps.get_by_text("damaged", exact=True).click()
            expect(main.get_by_role("heading", name="damaged")).to_be_visible()
            alert = main.get_by_test_id("stAlert").filter(has_text="group g000 is damaged")
            expect(alert).to_contain_text(re.compile(r"instances\.parquet has \d+ bytes, \d+ were written; it is "
                                                     r"left out"))
            assert main.get_by_test_id("stException").count() == 0
            page.screenshot(path=ARTIFACTS / "05b-damaged.png")

            # An unfinished sweep that nobody writes (killed, interrupted) says so, and how to continue it.
            sweeps.get_by_text("stopped", exact=True).click()
            expect(main.get_by_test_id("stAlert").filter(has_text="Sweep stopped before it finished: 0 of 3 "
                                                                  "instances")).to_be_visible()
            assert main.get_by_test_id("stAlert").filter(has_text="still running").count() == 0

            # A sweep with unfinished groups and a live writer shows the running notice.
            sweeps.get_by_text("running", exact=True).click()
            notice = main.get_by_test_id("stAlert").filter(has_text="Sweep still running: 0 of 3 instances finished")
            expect(notice).to_be_visible()
            expect(main.get_by_test_id("stAlert")).to_have_count(2)  # the notice and "No finished instances yet."
            page.screenshot(path=ARTIFACTS / "06-running.png")
            # ... and shows the instances once its groups are done, without a click (groups/ appears atomically).
            shutil.copytree(results_root / "LR1-smoke" / "groups", results_root / "running" / "groups.tmp")
            (results_root / "running" / "groups.tmp").rename(results_root / "running" / "groups")
            expect(notice).to_have_count(0)
            expect(page.locator(".st-key-instance-table [data-testid=stDataFrame]")).to_contain_text("r0002")
        finally:
            browser.close()


# ---- the CLI command (no browser) ---------------------------------------------------------------------------------
def test_app_command_starts_streamlit_on_the_folder(tmp_path, monkeypatch):
    """`toymodels app DIR --port P --headless` runs `python -m streamlit run app/main.py ... -- DIR`."""
    need_extra("streamlit", "app")
    need_extra("plotly", "app")
    calls = []

    class FakePopen:
        def __init__(self, cmd):
            calls.append(cmd)

        def wait(self, timeout=None):
            return 0

        def poll(self):
            return 0

    monkeypatch.setattr(subprocess, "Popen", FakePopen)
    result = CliRunner().invoke(cli.app, ["app", str(tmp_path), "--port", "8765", "--headless"])
    assert result.exit_code == 0, result.output
    (cmd,) = calls
    assert cmd[:4] == [sys.executable, "-m", "streamlit", "run"]
    assert Path(cmd[4]) == SCRIPT == Path(cli.__file__).parent / "app" / "main.py"
    assert cmd[cmd.index("--server.port") + 1] == "8765"
    assert cmd[cmd.index("--server.headless") + 1] == "true"
    assert cmd[-2:] == ["--", str(tmp_path.resolve())]


def test_app_command_rejects_a_missing_folder(tmp_path):
    """The folder the user typed is checked first, with or without the app extra."""
    result = CliRunner().invoke(cli.app, ["app", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "no folder" in result.output


def test_app_command_without_the_extra_names_it(tmp_path, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *rest: None if name == "streamlit" else real_find_spec(name, *rest))
    result = CliRunner().invoke(cli.app, ["app", str(tmp_path)])
    assert result.exit_code == 2
    assert result.output.strip() == "error: the dashboard needs streamlit: pip install 'toymodels[app]'"
