"""export-sae: one trained SAE written in SAELens' layout; sae-lens loads it and encodes and decodes a batch as we
do."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import need_extra, sae_config
from typer.testing import CliRunner

from toymodels.cli import app
from toymodels.config import SweepConfig
from toymodels.families import get_family
from toymodels.results.store import load
from toymodels.running.sweep import run_sweep

ARCHS = {"relu_l1": {}, "topk": dict(l1=0.0, sae_k=3), "jumprelu": dict(sae_threshold=0.05, sae_bandwidth=0.05)}


@pytest.fixture(scope="module")
def sae_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    for arch, fields in [*ARCHS.items(), ("batchtopk", dict(l1=0.0, sae_k=3))]:
        run_sweep(SweepConfig(name=arch, base=sae_config(sae_arch=arch, steps=48, **fields)), root / arch,
                  progress=False)
    return root


@pytest.mark.parametrize("arch", list(ARCHS))
def test_sae_lens_loads_the_export_and_encodes_and_decodes_as_we_do(arch, sae_runs, tmp_path):
    sae_lens = need_extra("sae_lens", "test")
    out = tmp_path / arch
    res = CliRunner().invoke(app, ["export-sae", str(sae_runs / arch), "r0000", str(out)])
    assert res.exit_code == 0, res.output
    assert json.loads((out / "cfg.json").read_text())["architecture"] == {"relu_l1": "standard"}.get(arch, arch)
    theirs = sae_lens.SAE.load_from_disk(out)

    results = load(sae_runs / arch)
    cfg = sae_config(sae_arch=arch, steps=48, **ARCHS[arch])
    ours = get_family("sae").from_tensors({k: v[None] for k, v in results.params("r0000").items()}, cfg)
    x = torch.randn(1, 64, cfg.model.m, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        f_ours = ours.encode(x)[0]
        f_theirs = theirs.encode(x[0])
        torch.testing.assert_close(f_theirs, f_ours, rtol=1e-5, atol=1e-6)
        assert (f_ours != 0).any()  # a real comparison, not of two zero matrices
        torch.testing.assert_close(theirs.decode(f_theirs), ours.decode(f_ours[None])[0], rtol=1e-5, atol=1e-6)


def test_what_cannot_be_exported_fails_in_one_line(sae_runs, tmp_path):
    runner = CliRunner()
    cases = [
        (["export-sae", str(sae_runs / "batchtopk"), "r0000", str(tmp_path / "a")], "field 'sae_arch'"),
        (["export-sae", str(sae_runs / "topk"), "r0099", str(tmp_path / "b")], "run id 'r0099': no such instance"),
        (["export-sae", str(tmp_path / "nowhere"), "r0000", str(tmp_path / "c")], "no such results folder"),
    ]
    for args, words in cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 2 and words in res.output, res.output
        assert len(res.output.strip().splitlines()) == 1
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    res = runner.invoke(app, ["export-sae", str(sae_runs / "topk"), "r0000", str(tmp_path / "full")])
    assert res.exit_code == 2 and "not an empty folder" in res.output
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
