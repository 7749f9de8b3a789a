"""The family interface: the registry refuses a double registration and unknown names, and a family defined here,
inside the test, trains end to end (CLI -> results folder -> report) without editing any package module."""

from __future__ import annotations

import json
from typing import Sequence

import pytest
import torch
from torch import Tensor, nn
from typer.testing import CliRunner

from toymodels.results import store
from toymodels.cli import app
from toymodels.config import ConfigError, ExperimentConfig
from toymodels.engine.data import (
    DATA_STREAM,
    INIT_STREAM,
    FeatureSampler,
    feature_probs,
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


class LinearFamily:
    name = "linear_ae_test"
    summary = "a linear autoencoder defined in a test"
    tasks = ("decoder",)
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

    def sampler(self, cfg, device):
        probs = feature_probs(cfg.data.N, cfg.data.eps, "uniform")
        return FeatureSampler(probs, cfg.optim.batch_size, generator(cfg.run.seed, DATA_STREAM, device), device)

    def input_size(self, cfg) -> int:
        return cfg.data.N

    def flops_per_step(self, cfg) -> float:
        return 12.0 * cfg.optim.batch_size * cfg.data.N * cfg.model.m

    def instance_bytes(self, cfg) -> int:
        return 16 * cfg.optim.batch_size * (cfg.data.N + cfg.model.m)

    def evaluate(self, cfgs, tensors):
        return {"weight_norm": tensors["W"].double().pow(2).sum(dim=(1, 2))}

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
