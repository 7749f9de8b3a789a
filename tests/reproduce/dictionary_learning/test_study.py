"""The dictionary-learning study end to end at smoke scale, as a user types it: SAE-LR on the EM claims' own LR1
folder and SAE-ABS with its null baseline, registered before they train, written into docs/dictionary_learning.md;
and its registration: a folder without a pre-registration record is post hoc."""

from __future__ import annotations

import functools
import importlib
import subprocess
import sys
from datetime import datetime, timedelta

import pytest
import torch
from typer.testing import CliRunner

from toymodels.cli import app
from toymodels.config import ConfigError
from toymodels.reproduce.confirmation import StudyRun, finalize, note, study_run
from toymodels.reproduce.dictionary_learning import measure, study
from toymodels.reproduce.dictionary_learning.study import run_dictionary_learning
from toymodels.reproduce.registration import status as shared_registration
from toymodels.reproduce.registration import RECORD, RuleSet
from toymodels.reproduce.study import STUDIES
from toymodels.reproduce.verdict import POST_HOC, Verdict
from toymodels.results.safe_io import read_json, write_json


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """``toymodels reproduce SAE-LR SAE-ABS --scale smoke --seeds 2`` once (its absorption gaps on 4096 samples
    instead of the rule's 65536, for time): (output, runs folder, docs folder)."""
    root = tmp_path_factory.mktemp("dictionary")
    old, tables = torch.get_num_threads(), dict(study.TABLES)
    torch.set_num_threads(1)
    study.TABLES["SAE-ABS"] = functools.partial(measure.absorption_table, samples=4096)
    try:
        res = CliRunner().invoke(app, ["reproduce", "SAE-LR", "SAE-ABS", "--scale", "smoke", "--seeds", "2",
                                       "--out", str(root / "runs"), "--docs", str(root / "docs")])
    finally:
        torch.set_num_threads(old)
        study.TABLES.update(tables)
    assert res.exit_code == 0, res.output
    return res.output, root / "runs", root / "docs"


def test_the_study_end_to_end_writes_the_report(smoke_run):
    output, runs, docs = smoke_run
    for claim in ("SAE-LR", "SAE-ABS"):
        line = next(line for line in output.splitlines() if line.startswith(f"{claim} "))
        assert line.startswith(f"{claim} inconclusive (scale) "), output
    # SAE-LR reads the EM claims' primary LR1 folder, trained under the EM claims' rules; its SAEs under this study's
    lr1 = read_json(runs / "LR1-smoke" / RECORD)
    assert lr1["study"] == "em_claims" and (runs / "LR1-smoke" / "sweep.json").exists()
    sae = read_json(runs / "SAE-LR-smoke" / "SAE-LR-smoke-LR1-smoke-h" / RECORD)
    assert sae["study"] == "dictionary_learning"
    assert sae["rules_sha256"] == STUDIES.get("dictionary_learning").rules.fingerprint()
    # SAE-ABS trained the four architectures
    assert {p.name for p in (runs / "SAE-ABS-smoke").iterdir()} == {
        f"SAE-ABS-smoke-{a}" for a in ("relu_l1", "topk", "batchtopk", "jumprelu")}
    doc = (docs / "dictionary_learning.md").read_text()
    assert "toymodels reproduce SAE-LR SAE-ABS --scale smoke --seeds 2" in doc
    assert "The results it reads were trained by git commit" in doc
    assert "**Pre-registration.** SAE-LR: " in doc and "; SAE-ABS: " in doc
    assert doc.count("Thresholds: ") == 2 and doc.count("Registration: ") == 2
    assert "| SAE-L0 |" in doc and "not run yet" in doc
    assert "min(latents, features) matched pairs" in doc and "**mean best" in doc  # the MCC variant is stated
    assert "| lr | seeds | neurons cover | SAE on h covers | SAE - neurons (95% CI) |" in doc
    assert "gap null (independent)" in doc
    for figure in ("sae_lr.png", "sae_lr_cosines.png", "sae_absorption.png"):
        assert f"](figures/{figure})" in doc and (docs / "figures" / figure).exists()


def test_unknown_question_is_refused_first(tmp_path):
    with pytest.raises(ConfigError, match="unknown study 'SAE-X'"):
        run_dictionary_learning(["SAE-X"], scale="smoke", out_dir=tmp_path / "runs", docs_dir=tmp_path / "docs")
    assert not (tmp_path / "runs").exists()


def test_a_folder_without_a_record_is_post_hoc(smoke_run, tmp_path):
    _, runs, _ = smoke_run
    rules = STUDIES.get("dictionary_learning").rules
    folder = runs / "SAE-ABS-smoke" / "SAE-ABS-smoke-topk"
    copy = tmp_path / folder.name  # the same runs, as a folder trained before the rules were recorded
    subprocess.run(["cp", "-r", str(folder), str(copy)], check=True)
    (copy / RECORD).unlink()
    decisive = Verdict("SAE-ABS", "absorption", "answered", "topk: appears")
    with study_run(StudyRun(rules, 0, 2)):
        note(copy)
        (v,) = finalize([decisive])
    assert v.verdict == POST_HOC and v.by_rules == "answered"
    assert "no pre-registration record" in v.details["registration"]
    # LR1, shared with the EM claims: no record there is post hoc for this study too
    lr1 = tmp_path / "LR1-copy"
    lr1.mkdir()
    assert shared_registration(lr1, rules).state == "post hoc"


def git(repo, *args):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                   capture_output=True)


def test_a_shared_folder_counts_when_it_was_recorded_after_the_rules_commit(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    name = f"dl_rules_{abs(hash(str(tmp_path))) % 10**8}"
    (repo / f"{name}.py").write_text("FLOOR = 0.1\n")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "rules")
    monkeypatch.syspath_prepend(str(repo))
    importlib.invalidate_caches()
    importlib.import_module(name)
    try:
        rules = RuleSet("dictionary_learning", (name,))
        _, date, committed = rules.commit()
        assert committed
        folder = tmp_path / "LR1-quick"
        folder.mkdir()
        when = datetime.fromisoformat(date)
        later_record = {"study": "em_claims", "rules_committed": True,
                        "recorded": (when + timedelta(hours=1)).isoformat()}
        write_json(folder / RECORD, later_record)
        assert shared_registration(folder, rules).ok
        write_json(folder / RECORD, {**later_record, "rules_committed": False})  # its own rules were not committed
        assert "under uncommitted rules" in shared_registration(folder, rules).why
        write_json(folder / RECORD, {**later_record, "recorded": (when - timedelta(hours=1)).isoformat()})
        later = shared_registration(folder, rules)
        assert not later.ok and "before the dictionary_learning rules' last commit" in later.why
        (repo / f"{name}.py").write_text("FLOOR = 0.2\n")  # uncommitted: nothing can be pre-registered
        assert "uncommitted" in shared_registration(folder, rules).why
    finally:
        sys.modules.pop(name, None)
