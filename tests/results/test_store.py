"""The results folder is read safely: damaged files are named, nothing is ever unpickled."""

import pickle

import pytest
import torch

import toymodels as tm
from toymodels.config import ExperimentConfig, SweepConfig
from toymodels.results.store import ResultsError
from toymodels.running.sweep import run_sweep


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("store") / "r"
    base = ExperimentConfig.from_flat({"N": 16, "m": 4, "k": 8, "batch_size": 16, "steps": 32})
    run_sweep(SweepConfig(name="s", base=base, grid={"lr": [0.01, 0.02]}), out, progress=False)
    return out


def _copy(folder, tmp_path):
    import shutil

    dst = tmp_path / "copy"
    shutil.copytree(folder, dst)
    return dst


def test_loading_never_unpickles(folder, monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("unpickling attempted")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    res = tm.load(folder)
    assert len(res.instances) == 2
    assert res.params("r0001")["W1"].shape == (8, 4)
    assert len(res.curve("r0000", "loss")) == 2


def test_damaged_sweep_json_is_named(folder, tmp_path):
    copy = _copy(folder, tmp_path)
    target = copy / "sweep.json"
    target.write_bytes(target.read_bytes()[: len(target.read_bytes()) // 2] + b"\x00garbage")
    with pytest.raises(ResultsError) as err:
        tm.load(copy)
    assert str(target) in str(err.value)


@pytest.mark.parametrize("name", ["instances.parquet", "metrics.parquet", "checkpoints.safetensors"])
def test_a_damaged_group_file_leaves_its_group_out_named(folder, tmp_path, name):
    copy = _copy(folder, tmp_path)
    target = copy / "groups" / "g000" / name
    target.write_bytes(target.read_bytes()[: len(target.read_bytes()) // 2] + b"\x00garbage")
    res = tm.load(copy)  # the folder still reads; the damaged group is named and nothing is taken from it
    assert res.instances.empty and res.metrics.empty and not res.complete
    assert res.left_out == {"g000": f"damaged: {name} has {target.stat().st_size} bytes, "
                                    f"{(folder / 'groups' / 'g000' / name).stat().st_size} were written"}
    with pytest.raises(KeyError, match="r0000 is in group g000, which is damaged"):
        res.params("r0000")
    with pytest.raises(ResultsError, match="group g000 is damaged"):
        res.checkpoint_tensors("g000")


def test_other_format_version_is_refused(folder, tmp_path):
    import json

    copy = _copy(folder, tmp_path)
    meta = json.loads((copy / "sweep.json").read_text())
    meta["format_version"] = 99
    (copy / "sweep.json").write_text(json.dumps(meta))
    with pytest.raises(ResultsError, match="format 99"):
        tm.load(copy)


def test_sweep_json_records_versions(folder):
    res = tm.load(folder)
    assert res.meta["torch_version"] == torch.__version__
    assert res.meta["toymodels_version"] == tm.__version__
    assert res.sweep.grid == {"lr": [0.01, 0.02]}
