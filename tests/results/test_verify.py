"""Every reader verifies what it reads (issue 27, items 2 and 5): a group whose files fail DONE's record, a group
copied in from another folder or under another name, one repeating another's instances and one an edited sweep.json
no longer plans are named by tm.load, report, status and the dashboard, and nothing is computed from them; each file
is hashed once per process and state."""

from __future__ import annotations

import json
import shutil

import pytest
from helpers import zero_a_tensor
from typer.testing import CliRunner

import toymodels as tm
from toymodels.app.data import load_or_error
from toymodels.cli import app
from toymodels.config import ExperimentConfig, SweepConfig
from toymodels.report.html import summary_text, write_report
from toymodels.results import store, verify
from toymodels.running.sweep import run_sweep

BASE = ExperimentConfig.from_flat({"N": 16, "m": 4, "k": 8, "batch_size": 16, "steps": 32, "lr": 0.01})


@pytest.fixture(scope="module")
def two_groups(tmp_path_factory):
    """k=8 and k=12 (two groups: g000 holds r0000, r0001; g001 holds r0002, r0003), two seeds each."""
    out = tmp_path_factory.mktemp("verify") / "run"
    run_sweep(SweepConfig(name="two", base=BASE, grid={"k": [8, 12]}, seeds=2), out, progress=False)
    return out


@pytest.fixture(scope="module")
def other_lr(tmp_path_factory):
    """Another folder: the same sweep at lr 0.02 (its g000 holds r0000, r0001 of k=8, as ours does)."""
    out = tmp_path_factory.mktemp("verify") / "other"
    run_sweep(SweepConfig(name="two", base=BASE.replace(lr=0.02), grid={"k": [8, 12]}, seeds=2), out,
              progress=False)
    return out


def _copy(folder, tmp_path, name="copy"):
    return shutil.copytree(folder, tmp_path / name)


def test_a_zeroed_tensor_leaves_its_group_out_of_every_reader(two_groups, tmp_path):
    copy = _copy(two_groups, tmp_path)
    ckpt = copy / "groups" / "g001" / "checkpoints.safetensors"
    size = ckpt.stat().st_size
    zero_a_tensor(ckpt)
    assert ckpt.stat().st_size == size  # only the checksum can tell

    res = tm.load(copy)
    why = "damaged: checkpoints.safetensors does not match the checksum written with it"
    assert res.left_out == {"g001": why}
    assert res.notes == [f"group g001 is {why}; it is left out"]
    assert sorted(res.instances["run_id"]) == ["r0000", "r0001"] and set(res.instances["k"]) == {8}
    assert set(res.metrics["run_id"]) == {"r0000", "r0001"}
    with pytest.raises(KeyError, match="r0002 is in group g001, which is damaged"):
        res.params("r0002")
    with pytest.raises(store.ResultsError, match="group g001 is damaged"):
        res.checkpoint_tensors("g001")

    # report: the note, then a table of k=8 only; the page says it too
    out = CliRunner().invoke(app, ["report", str(copy)])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0] == res.notes[0]
    assert not any(line.split()[:1] == ["12"] for line in lines)  # no row of the damaged group's setting
    assert res.notes[0] in (copy / "report.html").read_text()
    # status: the note, and the merged top-level table leaves the group out
    out = CliRunner().invoke(app, ["status", str(copy)])
    assert out.exit_code == 0 and res.notes[0] in out.output, out.output
    assert sorted(store.read_parquet(copy / "instances.parquet")["run_id"]) == ["r0000", "r0001"]
    # the dashboard's data layer
    shown, err = load_or_error(copy)
    assert err is None and shown.notes == res.notes and len(shown.instances) == 2


def test_each_file_is_hashed_once_per_state(two_groups, tmp_path, monkeypatch):
    copy = _copy(two_groups, tmp_path)  # new inodes: nothing of it is remembered yet
    hashed = []
    real = verify.hash_file
    monkeypatch.setattr(verify, "hash_file", lambda path: hashed.append(path.name) or real(path))
    tm.load(copy)
    assert sorted(hashed) == sorted(store.GROUP_FILES * 2)  # three files, two groups
    hashed.clear()
    res = tm.load(copy)
    res.params("r0003")
    summary_text(res)
    assert hashed == []  # remembered: neither a second load nor a read hashes again
    ckpt = copy / "groups" / "g000" / "checkpoints.safetensors"
    ckpt.write_bytes(ckpt.read_bytes())  # the same bytes, written again: its state changed, so it is checked again
    assert tm.load(copy).left_out == {} and hashed == ["checkpoints.safetensors"]
    zero_a_tensor(ckpt)  # changed after the load: a read of the loaded results notices it
    with pytest.raises(store.ResultsError, match="group g000 is damaged since it was read"):
        res.params("r0000")


def test_a_group_copied_from_another_folder_is_named_and_left_out(two_groups, other_lr, tmp_path):
    copy = _copy(two_groups, tmp_path)
    shutil.rmtree(copy / "groups" / "g000")
    shutil.copytree(other_lr / "groups" / "g000", copy / "groups" / "g000")  # intact files, another sweep's
    res = tm.load(copy)
    assert res.left_out["g000"].startswith("not what sweep.json plans: r0000 was trained with lr=0.02, sweep.json "
                                           "plans lr=0.01")
    assert sorted(res.instances["run_id"]) == ["r0002", "r0003"]
    with pytest.raises(KeyError, match="r0000 is in group g000, which is not what sweep.json plans"):
        res.row("r0000")


def test_a_copy_of_a_group_under_another_name_is_not_a_second_seed(two_groups, tmp_path):
    copy = _copy(two_groups, tmp_path)
    shutil.copytree(copy / "groups" / "g000", copy / "groups" / "g002")
    res = tm.load(copy)
    assert list(res.left_out) == ["g002"] and res.left_out["g002"].startswith("a copy of group g000")
    assert len(res.instances) == 4 and res.complete  # the four planned instances, once each
    assert "4 ok" not in summary_text(res) and summary_text(res).count("2 ok") == 2


def test_a_group_repeating_another_groups_instances_is_left_out(two_groups, tmp_path):
    copy = _copy(two_groups, tmp_path)
    shutil.copytree(copy / "groups" / "g000", copy / "groups" / "g002")
    rows = store.read_parquet(copy / "groups" / "g002" / "instances.parquet")
    store.write_parquet(copy / "groups" / "g002" / "instances.parquet", rows.assign(group="g002"))
    store.write_done(copy, "g002", list(rows["run_id"]))  # intact by its own record: a repeat all the same
    res = tm.load(copy)
    assert res.left_out == {"g002": "a repeat: r0000 is already in group g000 (one instance twice is not two seeds)"}
    assert len(res.instances) == 4


def test_an_edited_sweep_json_does_not_turn_two_lrs_into_two_seeds(tmp_path):
    out = tmp_path / "run"
    run_sweep(SweepConfig(name="lrs", base=BASE, grid={"lr": [0.01, 0.02]}), out, progress=False)
    assert set(tm.load(out).instances["lr"]) == {0.01, 0.02}
    meta = json.loads((out / "sweep.json").read_text())
    meta["sweep"].update(grid={}, seeds=2)  # one lr (the base's 0.01), two seeds
    (out / "sweep.json").write_text(json.dumps(meta))
    res = tm.load(out)
    assert res.instances.empty
    assert res.left_out["g000"].startswith("not what sweep.json plans: r0001 was trained with lr=0.02, seed=0, "
                                           "sweep.json plans lr=0.01, seed=1")
    text = summary_text(res)
    assert text.splitlines()[0] == res.notes[0] and "2 ok" not in text
    assert res.notes[0] in write_report(res).read_text()


def test_a_sweep_hashes_each_file_it_writes_once(tmp_path, monkeypatch):
    hashed = []
    real = verify.hash_file
    monkeypatch.setattr(verify, "hash_file", lambda path: hashed.append(path) or real(path))
    res = run_sweep(SweepConfig(name="two", base=BASE, grid={"k": [8, 12]}), tmp_path / "run", progress=False)
    summary_text(res)
    # DONE is written with the digests, which every merge and the final load then remember
    assert sorted(p.name for p in hashed) == sorted(store.GROUP_FILES * 2) and len(set(hashed)) == 6
