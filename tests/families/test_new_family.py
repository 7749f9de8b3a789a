"""The proof that a family is a self-contained slice: one defined entirely here, with config fields of its own that
no package module knows, a figure and a preset, runs from the CLI to a results folder, a report, the dashboard's
data layer and a resume, without editing any package module."""

from __future__ import annotations

import shutil
from typing import Sequence

import pytest
import torch
from pydantic import Field
from torch import Tensor, nn
from helpers import FeatureMatrixFamily
from typer.testing import CliRunner

from toymodels.app import data as app_data
from toymodels.cli import app
from toymodels.config import ConfigError, ExperimentConfig, register_section
from toymodels.config.experiment import unregister_section
from toymodels.config.presets import Preset, preset
from toymodels.config.sections import Frozen
from toymodels.engine.data import INIT_STREAM, generator
from toymodels.families import FigureSpec, Presentation, register, unregister
from toymodels.plotting.common import write_figure
from toymodels.plotting.save import new_figure
from toymodels.results import store


class ScaledAEConfig(Frozen):
    """The family's own section: fields no package module knows."""

    ae_init_scale: float = Field(0.1, gt=0, description="std of W's normal init")
    ae_tied: bool = Field(True, description="decode with W^T (tied) or with a second matrix V")


class ScaledAutoencoder(nn.Module):
    """x -> V^T W x (V = W when tied), W and V (instances, m, N)."""

    def __init__(self, W: Tensor, V: Tensor | None):
        super().__init__()
        self.W = nn.Parameter(W)
        self.V = None if V is None else nn.Parameter(V)
        self.param_names = ("W",) if V is None else ("W", "V")

    @property
    def n_instances(self) -> int:
        return self.W.shape[0]

    def losses(self, x, task="decoder", with_l1=True):
        h = torch.bmm(x, self.W.transpose(1, 2))
        out = torch.bmm(h, self.W if self.V is None else self.V)
        return (out - x).pow(2).mean(dim=(1, 2)), None

    def decayed_params(self) -> list[Tensor]:
        return []

    def state_tensors(self) -> dict[str, Tensor]:
        return {name: getattr(self, name).detach() for name in self.param_names}


def weights_plot(results, out_dir=None):
    """The family's own figure: ||W||_F of every instance."""
    fig = new_figure(4, 3)
    ax = fig.subplots()
    norms = [float(results.params(run_id)["W"].norm()) for run_id in results.instances["run_id"]]
    ax.bar(range(len(norms)), norms)
    return write_figure(results, fig, "weights", out_dir)


class ScaledAEFamily(FeatureMatrixFamily):
    name = "scaled_ae_test"
    summary = "a linear autoencoder with its own config section, defined in a test"
    fields = ("N", "eps", "m", *ScaledAEConfig.model_fields)
    presentation = Presentation(labels={"weight_norm": "||W||_F^2"}, summary_metrics=("final_loss", "weight_norm"),
                                training_metrics=("loss", "weight_norm"), swept_metrics=("weight_norm",),
                                table_metrics=("weight_norm",))

    def check(self, cfg: ExperimentConfig) -> str | None:
        own = cfg.section("scaled_ae")
        return "field 'ae_init_scale': must be at most 1" if own.ae_init_scale > 1 else None

    def build(self, cfgs: Sequence[ExperimentConfig]) -> ScaledAutoencoder:
        def init(c, stream_offset):
            gen = generator(c.run.seed + stream_offset, INIT_STREAM)
            return torch.randn(c.model.m, c.data.N, generator=gen) * c.section("scaled_ae").ae_init_scale

        W = torch.stack([init(c, 0) for c in cfgs])
        tied = cfgs[0].section("scaled_ae").ae_tied
        return ScaledAutoencoder(W, None if tied else torch.stack([init(c, 1) for c in cfgs]))

    def from_tensors(self, tensors, cfg):
        return ScaledAutoencoder(tensors["W"].clone(), tensors["V"].clone() if "V" in tensors else None)

    def figures(self):
        return [FigureSpec("weights", weights_plot, "||W||_F of each instance (the test family's own figure).")]


PRESET = Preset(name="SCALED-AE-TEST", summary="the test family's init-scale sweep", family="scaled_ae_test",
                base={"model": "scaled_ae_test", "N": 12, "m": 3, "eps": 0.25, "optimizer": "adam",
                      "schedule": "constant", "batch_size": 32, "steps": 64, "lr": 0.01},
                grid={"ae_init_scale": [0.05, 0.3], "m": [3, 4]})


@pytest.fixture
def scaled_family():
    """The family, its config section and its preset, registered for one test and removed after."""
    from toymodels.config.presets import PRESETS  # the preset registry, read at the time of the test

    register_section("scaled_ae", ScaledAEConfig)
    family = register(ScaledAEFamily())
    PRESETS.register(PRESET.name, PRESET)
    yield family
    PRESETS.unregister(PRESET.name)
    unregister(family.name)
    unregister_section("scaled_ae")


def test_the_family_s_own_fields_are_config_fields(scaled_family):
    cfg = ExperimentConfig.from_flat({"model": "scaled_ae_test", "ae_init_scale": "1/8", "ae_tied": False})
    assert cfg.section("scaled_ae").ae_init_scale == 0.125 and cfg.flat()["ae_tied"] is False
    assert ExperimentConfig.model_validate_json(cfg.model_dump_json()) == cfg  # round-trips through JSON
    with pytest.raises(ConfigError, match="field 'ae_init_scale': must be at most 1"):
        cfg.replace(ae_init_scale=2.0)
    with pytest.raises(ConfigError, match="ae_init_scale"):
        cfg.replace(ae_init_scale=-1)
    with pytest.raises(ConfigError, match="field 'ae_init_scale' belongs to section 'scaled_ae'"):
        register_section("other", ScaledAEConfig)
    assert preset(PRESET.name, scale="smoke").base.section("scaled_ae").ae_init_scale == 0.1


def test_the_family_runs_from_its_preset_to_a_report_the_dashboard_and_a_resume(scaled_family, tmp_path):
    out = tmp_path / "runs" / "scaled"
    runner = CliRunner()
    res = runner.invoke(app, ["run", PRESET.name, "--scale", "smoke", "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    results = store.load(out)
    inst = results.instances
    assert sorted(inst["ae_init_scale"].unique()) == [0.05, 0.3] and (inst["status"] == "ok").all()
    assert (out / "figures" / "weights.png").exists()  # the family's figure, drawn by `run`'s report
    assert "||W||_F of each instance" in (out / "report.html").read_text()

    # the dashboard's data layer finds the folder and reads the family's metrics and columns
    (folder,) = app_data.find_results(tmp_path / "runs")
    loaded, error = app_data.load_or_error(folder)
    assert error is None and "weight_norm" in app_data.family_metrics(loaded)[0]
    assert "ae_init_scale" in app_data.swept_fields(loaded)

    # resume: a group that never finished (its folder gone) is trained again, to the same numbers
    groups = sorted((out / "groups").iterdir())
    assert len(groups) == 2  # m differs: two groups of two instances
    before = results.instances.set_index("run_id")
    shutil.rmtree(groups[1])
    res = runner.invoke(app, ["run", PRESET.name, "--scale", "smoke", "--out", str(out), "--resume",
                              "--no-progress", "--no-report"])
    assert res.exit_code == 0, res.output
    after = store.load(out).instances.set_index("run_id")
    assert after["final_loss"].to_dict() == before["final_loss"].to_dict()
    assert store.load(out).sweep.base.section("scaled_ae") == ScaledAEConfig()  # the section is in sweep.json
