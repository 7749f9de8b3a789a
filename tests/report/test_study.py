"""A multi-part preset's folder as one study (report/parts.py, report/study.py): ``toymodels run SAE-ABS`` writes
one folder per part, and ``run``, ``report`` and ``status`` treat the folder above them as one study."""

from __future__ import annotations

import re
import shutil

import pytest
from helpers import PNG_MAGIC
from typer.testing import CliRunner

import toymodels as tm
from toymodels.cli import app
from toymodels.config.presets import PRESETS, preset
from toymodels.report.html import summary_table
from toymodels.report.parts import PART, combined_instances, combined_summary, find_study
from toymodels.running.sweep import run_sweep

PARTS = PRESETS["SAE-ABS"].part_names()  # SAE-ABS-relu_l1, SAE-ABS-topk, ...


@pytest.fixture(scope="module")
def study_folder(tmp_path_factory):
    """``toymodels run SAE-ABS --scale smoke --out DIR``: (DIR, the command's output)."""
    folder = tmp_path_factory.mktemp("study") / "SAE-ABS-smoke"
    res = CliRunner().invoke(app, ["run", "SAE-ABS", "--scale", "smoke", "--out", str(folder), "--no-progress"])
    assert res.exit_code == 0, res.output
    return folder, res.output


def test_the_run_writes_each_part_and_a_report_of_the_study(study_folder):
    folder, output = study_folder
    assert sorted(p.name for p in folder.iterdir() if (p / "sweep.json").exists()) == sorted(PARTS)
    assert f"study report: {folder / 'report.html'}" in output
    assert (folder / "figures" / "parts.png").read_bytes()[:8] == PNG_MAGIC


def test_the_folder_is_found_as_one_study_with_its_parts_in_order(study_folder, tmp_path):
    folder, _ = study_folder
    study = find_study(folder)
    assert study.preset == "SAE-ABS" and [p.name for p in study.parts] == PARTS and study.missing == ()
    assert find_study(folder / PARTS[0]) is None  # a part is a results folder, not a study
    # a part not started yet is named apart
    partial = tmp_path / "partial"
    shutil.copytree(folder / PARTS[1], partial / PARTS[1])
    study = find_study(partial)
    others = tuple(p for p in PARTS if p != PARTS[1])
    assert [p.name for p in study.parts] == [PARTS[1]] and study.missing == others
    assert study.heading().endswith(f"1 of {len(PARTS)} parts of SAE-ABS started; not started: {', '.join(others)}")


def test_a_folder_of_unrelated_sweeps_is_no_study(tmp_path):
    run_sweep(preset("PC-kurtosis", scale="smoke").replace(grid={"kurtosis": [3.0]}), tmp_path / "a", progress=False)
    assert find_study(tmp_path) is None and find_study(tmp_path / "nothing") is None


def test_the_combined_tables_hold_every_part_s_rows(study_folder):
    folder, _ = study_folder
    parts = {p: tm.load(folder / p) for p in PARTS}
    table = combined_summary(parts)
    assert list(table.columns[:1]) == [PART]
    assert [len(table[table[PART] == p]) for p in PARTS] == [len(summary_table(r)) for r in parts.values()]
    # each part's own swept fields come before the shared columns; a field a part does not sweep is blank there
    assert list(table.columns).index("sae_k") < list(table.columns).index("seeds")
    assert set(table.loc[table[PART] == PARTS[0], "sae_k"]) == {""}
    inst = combined_instances(parts)
    assert len(inst) == sum(len(r.instances) for r in parts.values()) and inst.columns[0] == PART


def test_the_study_report_links_every_part_and_explains_its_columns(study_folder):
    folder, _ = study_folder
    res = CliRunner().invoke(app, ["report", str(folder)])
    assert res.exit_code == 0, res.output
    assert [line for line in res.output.splitlines() if line.startswith("== ")] == [f"== {p}" for p in PARTS]
    assert res.output.strip().splitlines()[-1] == f"report: {folder / 'report.html'}"
    page = (folder / "report.html").read_text()
    assert re.findall(r"<a href='([^']*)'>", page)[:len(PARTS)] == [f"{p}/report.html" for p in PARTS]
    assert all((folder / p / "report.html").is_file() for p in PARTS)
    assert "<dt><code>part</code></dt>" in page and "<dt><code>mcc</code></dt>" in page
    assert page.count("<img src='data:image/png;base64,") == 1 + len(PARTS)  # the comparison, each part's swept


def test_status_of_the_study_reports_each_part(study_folder):
    folder, _ = study_folder
    res = CliRunner().invoke(app, ["status", str(folder)])
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert lines[0] == f"{folder.name} ({folder}): {len(PARTS)} of {len(PARTS)} parts of SAE-ABS started"
    for part in PARTS:
        assert any(line.startswith(f"{part}-smoke ({folder / part}):") and "groups done" in line for line in lines)


def test_a_damaged_part_is_one_line_naming_it(study_folder, tmp_path):
    folder, _ = study_folder
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    (copy / PARTS[1] / "sweep.json").write_text("{not json")
    res = CliRunner().invoke(app, ["report", str(copy)])
    assert res.exit_code == 2
    (line,) = res.output.strip().splitlines()
    assert str(copy / PARTS[1] / "sweep.json") in line


def test_an_empty_folder_named_like_a_part_is_not_mistaken_for_one(tmp_path):
    """Only folders holding a sweep count as parts."""
    (tmp_path / PARTS[0]).mkdir()
    assert find_study(tmp_path) is None


def test_tm_load_names_the_parts_and_load_parts_reads_them(study_folder):
    folder, _ = study_folder
    with pytest.raises(tm.ResultsError, match=r"the folder of SAE-ABS's parts .* tm.load_parts\("):
        tm.load(folder)
    parts = tm.load_parts(folder)
    assert list(parts) == [p.name for p in find_study(folder).parts]
    assert all(len(r.instances) for r in parts.values())
    with pytest.raises(tm.ResultsError, match="not the folder of a multi-part preset"):
        tm.load_parts(find_study(folder).parts[0])
