"""An SAE reads only verified models (issue 27, items 2 and 3): a source group whose files fail DONE's record, or
that has not finished, is refused in one line naming it; export-sae refuses a damaged SAE group; a sweep records its
source's fingerprint and --resume refuses, naming it, once the source was retrained in place; a relative source in a
sweep file is beside the file, whatever the working directory."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from helpers import SMALL_EM, sae_config, trained_source, zero_a_tensor
from typer.testing import CliRunner

from toymodels.cli import app, resolve_sweep
from toymodels.config import ConfigError, SweepConfig
from toymodels.families.sae import source_for
from toymodels.results import store
from toymodels.running.sweep import run_sweep

ON_X = dict(source_run="r0000", source_layer="x", N=32, m=8, steps=32)  # EM's embedding: 8 dims


@pytest.fixture(scope="module")
def em_source(tmp_path_factory):
    return trained_source(tmp_path_factory.mktemp("em") / "src", "em", seeds=1)


def test_a_damaged_or_unfinished_source_group_is_refused_naming_it(em_source, tmp_path):
    src = shutil.copytree(em_source, tmp_path / "src")
    zero_a_tensor(src / "groups" / "g000" / "checkpoints.safetensors")
    with pytest.raises(ConfigError, match=r"^field 'source_run': instance r0000 is in group g000, which is damaged: "
                                          r"checkpoints.safetensors does not match") as err:
        sae_config(source=str(src), **ON_X)
    assert "\n" not in str(err.value)
    (src / "groups" / "g000" / "DONE").unlink()  # as while it trains
    with pytest.raises(ConfigError, match=r"^field 'source_run': instance r0000 of .* has not finished training"):
        sae_config(source=str(src), **ON_X)


def test_export_refuses_a_damaged_sae_group_in_one_line(tmp_path):
    out = tmp_path / "sae"
    run_sweep(SweepConfig(name="sae", base=sae_config(steps=32)), out, progress=False)
    zero_a_tensor(out / "groups" / "g000" / "checkpoints.safetensors", "W_dec")
    res = CliRunner().invoke(app, ["export-sae", str(out), "r0000", str(tmp_path / "export")])
    assert res.exit_code == 2, res.output
    assert res.output.strip() == ("error: run id 'r0000': instance r0000 is in group g000, which is damaged: "
                                  "checkpoints.safetensors does not match the checksum written with it; it is left out")
    assert not (tmp_path / "export").exists()


def test_a_retrained_source_makes_resume_refuse_naming_it(em_source, tmp_path):
    src = shutil.copytree(em_source, tmp_path / "src")
    sweep = SweepConfig(name="on-x", base=sae_config(source=str(src), **ON_X), grid={"sae_width": [16, 32]})
    out = tmp_path / "sae"
    run_sweep(sweep, out, progress=False)
    recorded = json.loads((out / "sweep.json").read_text())["inputs"]
    assert list(recorded) == [f"source {src} r0000"] and recorded[f"source {src} r0000"].startswith("group g000 #0")
    assert run_sweep(sweep, out, resume=True, progress=False).complete  # the same source: resumes
    shutil.rmtree(out / "groups" / "g001")  # one group left to train...
    shutil.rmtree(src)
    run_sweep(SweepConfig(name="src-em", base=SMALL_EM.replace(steps=32)), src, progress=False)  # ...on a new model
    with pytest.raises(ConfigError, match=rf"input source {src} r0000 has changed since this sweep started \("
                                          r"recorded group g000 #0, checkpoints sha256 \w+, now .*retrained or "
                                          r"replaced\); resuming would mix") as err:
        run_sweep(sweep, out, resume=True, progress=False)
    assert "\n" not in str(err.value) and not (out / "groups" / "g001").exists()
    # a new sweep in this process reads the new model, not the one cached for the old
    assert not store.load(src).instances.empty
    new = source_for(sae_config(source=str(src), **ON_X)).model.state_dict()
    old = source_for(sae_config(source=str(em_source), **ON_X)).model.state_dict()
    assert new.keys() == old.keys() and any(not torch.equal(new[k], old[k]) for k in new)


def test_a_relative_source_in_a_sweep_file_is_beside_the_file(em_source, tmp_path, monkeypatch):
    shutil.copytree(em_source, tmp_path / "project" / "src")
    fields = {**sae_config().flat(), **ON_X, "source": "src"}
    fields = {k: v for k, v in fields.items() if v is not None}
    path = tmp_path / "project" / "sae.json"
    path.write_text(json.dumps({"name": "rel", **fields}))
    monkeypatch.chdir(tmp_path)
    first = resolve_sweep(str(path), "quick", [], [], None, None)
    assert first.base.sae.source == str((tmp_path / "project" / "src").resolve())
    run_sweep(first, tmp_path / "out", progress=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    again = resolve_sweep(str(path), "quick", [], [], None, None)
    assert again == first  # so --resume from here continues it
    assert run_sweep(again, tmp_path / "out", resume=True, progress=False).complete


def test_an_sae_folder_reads_back_after_its_source_was_moved_behind_a_link(em_source, tmp_path):
    src = shutil.copytree(em_source, tmp_path / "src")
    out = tmp_path / "sae"
    run_sweep(SweepConfig(name="on-x", base=sae_config(source=str(src), **ON_X)), out, progress=False)
    src.rename(tmp_path / "moved")
    src.symlink_to(tmp_path / "moved")  # the stored path now resolves elsewhere: it is read as written all the same
    res = store.load(out)
    assert res.left_out == {} and res.complete and res.sweep.base.sae.source == str(src)
