"""The family interface: the registry refuses a double registration and unknown names, and a family defined here,
inside the test, trains end to end (CLI -> results folder -> report) and brings its own extras (report section,
swept line, SAE layers, dashboard panel) without editing any package module."""

from __future__ import annotations

import json
from typing import Sequence

import numpy as np
import pandas as pd
import pytest
import torch
from torch import Tensor, nn
from helpers import FeatureMatrixFamily, as_model, need_extra
from typer.testing import CliRunner

from toymodels.results import store
from toymodels.app.data import dashboard_panel, instance_heading, panel_parts
from toymodels.cli import app
from toymodels.config import ConfigError, ExperimentConfig, SweepConfig
from toymodels.engine.data import (
    INIT_STREAM,
    generator,
)
from toymodels.families import (
    FamilyError,
    ModelFamily,
    Presentation,
    get_family,
    register,
    unregister,
)
from toymodels.families.base import ActivationLayer, DashboardPanel, PanelFigure, PanelTable, SweptOverlay, family_hook
from toymodels.running.sweep import run_sweep
from toymodels.families.sae.sources import layers_text, source_layers


class LinearAutoencoder(nn.Module):
    """x -> W^T W x with W (instances, m, N): the simplest model with features in superposition."""

    param_names = ("W",)

    def __init__(self, W: Tensor):
        super().__init__()
        self.W = nn.Parameter(W)

    @property
    def n_instances(self) -> int:
        return self.W.shape[0]

    def losses(self, x, task="decoder", with_l1=True):
        h = torch.bmm(x, self.W.transpose(1, 2))
        out = torch.bmm(h, self.W)
        l1 = h.abs().sum(dim=(1, 2)) / x.shape[1] if with_l1 else None
        return (out - x).pow(2).mean(dim=(1, 2)), l1

    def decayed_params(self) -> list[Tensor]:
        return []

    def state_tensors(self) -> dict[str, Tensor]:
        return {"W": self.W.detach()}


class LinearFamily(FeatureMatrixFamily):
    name = "linear_ae_test"
    summary = "a linear autoencoder defined in a test"
    fields = ("N", "eps", "m")
    presentation = Presentation(labels={"weight_norm": "||W||_F^2"}, summary_metrics=("final_loss", "weight_norm"),
                                training_metrics=("loss", "weight_norm"), swept_metrics=("weight_norm", "final_loss"),
                                table_metrics=("weight_norm",))

    def check(self, cfg: ExperimentConfig) -> str | None:
        return "field 'm': must be at most N for this family" if cfg.model.m > cfg.data.N else None

    def build(self, cfgs: Sequence[ExperimentConfig]) -> LinearAutoencoder:
        Ws = [torch.randn(c.model.m, c.data.N, generator=generator(c.run.seed, INIT_STREAM)) * 0.1 for c in cfgs]
        return LinearAutoencoder(torch.stack(Ws))

    def from_tensors(self, tensors, cfg):
        return LinearAutoencoder(tensors["W"].clone())

    def figures(self):
        return []


@pytest.fixture
def linear_family():
    family = register(LinearFamily())
    yield family
    unregister(family.name)


def test_builtin_families_satisfy_the_protocol():
    for name in ("em", "tms", "quadratic"):
        assert isinstance(get_family(name), ModelFamily)
    assert isinstance(LinearFamily(), ModelFamily)


def test_registry_refuses_a_second_family_of_the_same_name_and_names_unknown_ones(linear_family):
    with pytest.raises(FamilyError, match="already registered"):
        register(LinearFamily())
    with pytest.raises(FamilyError, match=r"field 'model': must be one of em, tms, quadratic, .*linear_ae_test"):
        get_family("nope")


def test_family_check_refuses_a_config_before_any_work(linear_family):
    with pytest.raises(ConfigError, match="field 'm': must be at most N"):
        ExperimentConfig.from_flat({"model": "linear_ae_test", "N": 4, "m": 8})


def test_a_family_defined_in_a_test_runs_end_to_end(linear_family, tmp_path):
    sweep_file = tmp_path / "lin.json"
    sweep_file.write_text(json.dumps({"model": "linear_ae_test", "N": 12, "m": 3, "eps": 0.25, "optimizer": "adam",
                                      "schedule": "constant", "batch_size": 32, "steps": 64,
                                      "grid": {"lr": [0.001, 0.03]}}))
    out = tmp_path / "run"
    runner = CliRunner()
    res = runner.invoke(app, ["run", str(sweep_file), "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "weight_norm" in res.output  # the family's summary metric is in the printed table
    results = store.load(out)
    inst = results.instances
    assert list(inst["model"]) == ["linear_ae_test"] * 2 and (inst["status"] == "ok").all()
    # the evaluator ran on the final model: its value is the saved W's squared norm
    W = results.params(inst["run_id"].iloc[1])["W"]
    assert inst["weight_norm"].iloc[1] == pytest.approx(float(W.double().pow(2).sum()), rel=1e-6)
    assert set(results.metrics["name"]) >= {"loss", "weight_norm"}
    rep = runner.invoke(app, ["report", str(out)])
    assert rep.exit_code == 0, rep.output
    html = (out / "report.html").read_text()
    assert "weight_norm" in html or "||W||_F^2" in html
    assert (out / "figures" / "training.png").exists() and (out / "figures" / "swept.png").exists()


# ---- a dashboard panel of W: one instance at a checkpoint, its column norms, the final norms over the sweep -------
def weights_view(results, run_id: str, step: int) -> dict:
    W = results.params(run_id, step)["W"].double().numpy()
    return {"W": W, "norms": np.linalg.norm(W, axis=0)}


def weights_figures(view: dict, heading: str) -> list[PanelFigure]:
    import plotly.graph_objects as go  # the `app` extra: the panel's test asks for it (need_extra)

    return [PanelFigure("weights-figure", go.Figure(go.Heatmap(z=view["W"]), layout={"title": f"W · {heading}"})),
            PanelFigure("norms-figure", go.Figure(go.Bar(y=view["norms"])), caption="||W_i|| per feature")]


def weights_tables(view: dict) -> list[PanelTable]:
    norms = pd.DataFrame({"feature": range(len(view["norms"])), "norm": view["norms"]})
    return [PanelTable("norms-table", "column norms", norms, index="feature"),
            PanelTable("weights-table", "all of W", pd.DataFrame(view["W"]), folded=True)]


def sweep_norms(instances: pd.DataFrame) -> list[PanelFigure]:
    import plotly.graph_objects as go  # the `app` extra, as above

    return [PanelFigure("sweep-norms", go.Figure(go.Scatter(x=instances["lr"], y=instances["weight_norm"])))]


WEIGHTS_PANEL = DashboardPanel(view=weights_view, figures=weights_figures, tables=weights_tables,
                               sweep_figures=sweep_norms)


class ExtrasFamily(LinearFamily):
    """The same model with every optional extra: a swept-figure line, a report section, a layer an SAE reads and a
    dashboard panel."""

    name = "linear_ae_extras_test"
    presentation = Presentation(
        summary_metrics=("final_loss", "weight_norm"), swept_metrics=("weight_norm",),
        swept_overlays=(SweptOverlay("weight_norm", "half the norm", ("weight_norm",),
                                     lambda rows: rows["weight_norm"].to_numpy(dtype=float) / 2),))

    def report_html(self, results) -> str:
        return f"<h2>Extras of {len(results.instances)} instances</h2>"

    def activation_layers(self) -> dict[str, ActivationLayer]:
        return {"h": ActivationLayer(lambda c: c.model.m, lambda model, v: torch.bmm(v, model.W.transpose(1, 2)),
                                     lambda t, c: t["W"][0].T)}

    def dashboard_panel(self) -> DashboardPanel:
        return WEIGHTS_PANEL


def test_a_minimal_family_gets_the_default_of_every_optional_hook():
    family = LinearFamily()
    assert family_hook(family, "activation_layers")() == {}
    assert family_hook(family, "report_html")(None) == ""
    assert family.presentation.swept_overlays == () and family_hook(family, "dashboard_panel")() is None
    with pytest.raises(KeyError):
        family_hook(family, "no_such_hook")
    assert layers_text() == "em: x, h; tms: h"  # the built-in families' own layers


def test_a_family_brings_its_own_report_section_swept_line_and_sae_layers(tmp_path):
    from toymodels.report.swept import swept_figure  # matplotlib, as in the report

    family = register(ExtrasFamily())
    try:
        assert list(source_layers(family.name)) == ["h"] and layers_text().endswith("linear_ae_extras_test: h")
        sweep_file = tmp_path / "lin.json"
        sweep_file.write_text(json.dumps({"model": family.name, "N": 8, "m": 2, "optimizer": "adam", "steps": 16,
                                          "schedule": "constant", "batch_size": 16, "grid": {"lr": [0.001, 0.03]}}))
        res = CliRunner().invoke(app, ["run", str(sweep_file), "--out", str(tmp_path / "run"), "--no-progress"])
        assert res.exit_code == 0, res.output
        assert "<h2>Extras of 2 instances</h2>" in (tmp_path / "run" / "report.html").read_text()
        fig = swept_figure(store.load(tmp_path / "run"))
        assert "half the norm" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    finally:
        unregister(family.name)


def test_a_family_brings_its_own_dashboard_panel_and_the_app_lays_it_out(linear_family, tmp_path):
    """The app's data layer finds the family's panel through its hook and lays out its figures and tables (the page
    draws each under its key); a family without the hook gets none."""
    need_extra("plotly", "app")
    family = register(ExtrasFamily())
    try:
        base = ExperimentConfig.from_flat({"model": family.name, "N": 6, "m": 2, "eps": 0.25, "optimizer": "adam",
                                           "schedule": "constant", "batch_size": 16, "steps": 32})
        results = run_sweep(SweepConfig(name="panel", base=base, grid={"lr": [0.001, 0.03]}), tmp_path / "run",
                            progress=False)
        panel = dashboard_panel(results)
        assert dashboard_panel(as_model(results, linear_family.name)) is None
    finally:
        unregister(family.name)
    assert panel is WEIGHTS_PANEL and panel.checkpoints
    step = results.checkpoint_steps("r0001")[-1]
    view = panel.view(results, "r0001", step)
    parts = panel_parts(panel, view, instance_heading("r0001", step), results.instances)
    (main,) = parts.main  # the first figure spans the page, titled with the instance and step
    assert main.key == "weights-figure" and main.figure.layout.title.text == f"W · r0001 · step {step}"
    np.testing.assert_allclose(main.figure.data[0].z, results.params("r0001", step)["W"].double().numpy())
    assert [f.key for f in parts.figures] == ["norms-figure", "sweep-norms"]  # the instance's, then the sweep's
    assert list(parts.figures[1].figure.data[0].x) == list(results.instances["lr"])
    assert [t.key for t in parts.tables] == ["norms-table"] and [t.key for t in parts.folded] == ["weights-table"]
    twice = DashboardPanel(view=weights_view, figures=weights_figures,
                           tables=lambda v: [PanelTable("norms-figure", "", pd.DataFrame())])
    with pytest.raises(ValueError, match="repeated: norms-figure"):
        panel_parts(twice, view, "r0001", results.instances)
