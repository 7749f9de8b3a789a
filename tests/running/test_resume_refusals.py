"""--resume never builds on groups that are not what the sweep plans (issue 27, item 5): a group copied in from another
folder or under another name, and groups an edited sweep.json no longer plans, are refused in one line naming the
group, before anything is trained or written."""

from __future__ import annotations

import json
import shutil

import pytest

from toymodels.config import ConfigError, ExperimentConfig, SweepConfig
from toymodels.results import store
from toymodels.running.sweep import run_sweep

BASE = ExperimentConfig.from_flat({"N": 16, "m": 4, "k": 8, "batch_size": 16, "steps": 32, "lr": 0.01})
SWEEP = SweepConfig(name="two", base=BASE, grid={"k": [8, 12]})  # g000: r0000 (k=8); g001: r0001 (k=12)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    root = tmp_path_factory.mktemp("refuse")
    run_sweep(SWEEP, root / "run", progress=False)
    run_sweep(SWEEP.model_copy(update={"base": BASE.replace(lr=0.02)}), root / "other", progress=False)
    return root


def _refused(sweep, out, match):
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != ".lock"}
    with pytest.raises(ConfigError, match=match) as err:
        run_sweep(sweep, out, resume=True, progress=False)
    assert "\n" not in str(err.value)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != ".lock"} == before


def test_a_resume_onto_a_group_copied_from_another_folder_is_refused(finished, tmp_path):
    out = shutil.copytree(finished / "run", tmp_path / "run")
    shutil.rmtree(out / "groups" / "g001")
    shutil.copytree(finished / "other" / "groups" / "g001", out / "groups" / "g001")
    _refused(SWEEP, out, r"group g001 is not what sweep.json plans: r0001 was trained with lr=0.02.*move groups/g001 "
                         r"out of the folder")


def test_a_resume_onto_a_copy_under_another_name_is_refused(finished, tmp_path):
    out = shutil.copytree(finished / "run", tmp_path / "run")
    shutil.copytree(out / "groups" / "g000", out / "groups" / "g000-copy")
    _refused(SWEEP, out, r"group g000-copy is a copy of group g000")


def test_a_resume_after_sweep_json_was_edited_is_refused(finished, tmp_path):
    out = shutil.copytree(finished / "run", tmp_path / "run")
    # the grid's order reversed: r0000 is now planned with k=12, and the finished groups hold the old plan
    edited = SWEEP.model_copy(update={"grid": {"k": [12, 8]}})
    meta = json.loads((out / "sweep.json").read_text())
    meta["sweep"] = json.loads(edited.to_json())
    (out / "sweep.json").write_text(json.dumps(meta))
    _refused(edited, out, r"group g000 is not what sweep.json plans: r0000 was trained with k=8, sweep.json plans k=12")


def test_a_group_the_plan_does_not_hold_is_refused_even_when_its_rows_fit(finished, tmp_path):
    out = shutil.copytree(finished / "run", tmp_path / "run")
    gdir = out / "groups" / "g000"
    gdir.rename(out / "groups" / "g007")  # r0000 planned with these values, in a group the plan does not have
    rows = store.read_parquet(out / "groups" / "g007" / "instances.parquet")
    store.write_parquet(out / "groups" / "g007" / "instances.parquet", rows.assign(group="g007"))
    store.write_done(out, "g007", ["r0000"])
    _refused(SWEEP, out, r"group g007 is not what sweep.json plans: it holds r0000, and the sweep has no group g007")


def test_an_intact_folder_resumes_with_nothing_to_do(finished, tmp_path):
    out = shutil.copytree(finished / "run", tmp_path / "run")
    notes: list[str] = []
    res = run_sweep(SWEEP, out, resume=True, progress=False, say=notes.append)
    assert res.complete and res.left_out == {} and notes == []
