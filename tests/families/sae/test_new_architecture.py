"""The proof that an SAE architecture is one class: one defined here, inside the test, trains from the CLI to a
results folder scored against the true features and a report, without editing any package module."""

from __future__ import annotations

import json

import pytest
import torch
from jaxtyping import Float
from torch import Tensor
from typer.testing import CliRunner

from toymodels.cli import app
from toymodels.families.sae import SAE, register_architecture
from toymodels.families.sae.architecture import unregister_architecture
from toymodels.results import store


class SquaredPenaltySAE(SAE):
    """ReLU latents with a squared-activation penalty (an L2 on f, weighted by ``l1``): sparsity it does not force."""

    name = "squared_penalty_test"
    summary = "ReLU latents, squared-activation penalty (a test's architecture)"
    fields = ("l1",)

    def activate(self, pre: Float[Tensor, "instances batch latents"]) -> Float[Tensor, "instances batch latents"]:
        return torch.relu(pre)

    def penalty(self, pre: Float[Tensor, "instances batch latents"], f: Float[Tensor, "instances batch latents"]
                ) -> Float[Tensor, " instances"]:
        return f.pow(2).sum(dim=(1, 2)) / f.shape[1]


@pytest.fixture
def squared_penalty():
    yield register_architecture(SquaredPenaltySAE)
    unregister_architecture(SquaredPenaltySAE.name)


def test_an_architecture_defined_in_a_test_trains_from_the_cli(squared_penalty, tmp_path):
    sweep_file = tmp_path / "sq.json"
    sweep_file.write_text(json.dumps({
        "model": "sae", "sae_arch": SquaredPenaltySAE.name, "N": 16, "m": 8, "eps": 0.1, "sae_width": 24,
        "optimizer": "adam", "lr": 3e-3, "schedule": "constant", "batch_size": 64, "steps": 128,
        "grid": {"l1": [0.0, 0.1]}}))
    out = tmp_path / "run"
    runner = CliRunner()
    res = runner.invoke(app, ["run", str(sweep_file), "--out", str(out), "--no-progress", "--no-report"])
    assert res.exit_code == 0, res.output
    results = store.load(out)
    inst = results.instances
    assert list(inst["sae_arch"]) == [SquaredPenaltySAE.name] * 2 and (inst["status"] == "ok").all()
    # scored against the true features like every architecture
    assert inst["mcc"].between(0, 1).all()
    assert set(results.metrics["name"]) >= {"loss", "mcc"}
    rep = runner.invoke(app, ["report", str(out)])
    assert rep.exit_code == 0, rep.output
    assert (out / "report.html").exists()


def test_an_unregistered_architecture_is_refused_in_one_line(tmp_path):
    res = CliRunner().invoke(app, ["run", "SAE-L0", "--scale", "smoke", "--set", "sae_arch=squared_penalty_test",
                                   "--out", str(tmp_path / "x"), "--dry-run"])
    assert res.exit_code == 2
    assert res.output.strip().splitlines()[-1].startswith("error: field 'sae_arch': must be one of relu_l1")
    assert not (tmp_path / "x").exists()
