"""The polytope study end to end at smoke scale, as a user types it (``toymodels reproduce POLY``): its three
sources trained under their owners' rules into the folders the owning studies use, three verdicts, the document
with its figures; and its registration: a source folder without a pre-registration record is post hoc, one recorded
after the study's rules were committed is pre-registered."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import torch
from typer.testing import CliRunner

from toymodels.cli import app
from toymodels.config import ConfigError
from toymodels.reproduce import reproduce
from toymodels.reproduce.confirmation import StudyRun, finalize, study_run
from toymodels.reproduce.polytope.rules import PREDICTIONS, RULE_MODULES
from toymodels.reproduce.polytope.study import run_claims
from toymodels.reproduce.polytope.sweeps import shared_source, sources
from toymodels.reproduce.registration import RECORD, RuleSet
from toymodels.reproduce.study import STUDIES, StudyOptions, train_sweep
from toymodels.reproduce.verdict import POST_HOC, SCALE_VERDICT, Verdict
from toymodels.results.safe_io import read_json


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """``reproduce(["POLY"], scale="smoke", seeds=2)`` once: (verdicts, runs folder, docs folder)."""
    root = tmp_path_factory.mktemp("polytope")
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        verdicts = reproduce(["POLY"], scale="smoke", seeds=2, out_dir=root / "runs", docs_dir=root / "docs",
                             progress=False)
    finally:
        torch.set_num_threads(old)
    return verdicts, root / "runs", root / "docs"


def test_the_study_end_to_end_writes_three_verdicts_and_the_document(smoke_run):
    verdicts, runs, docs = smoke_run
    assert [v.claim for v in verdicts] == list(PREDICTIONS)
    for v in verdicts:
        assert v.verdict == SCALE_VERDICT and v.by_rules == "inconclusive"  # 2 seeds: fewer than the rules' 3
        assert "Thresholds: " in v.reason and v.details["role"] == "exploratory"
        assert set(v.table["family"]) == {"EM", "TMS", "SAE"}
    # each source in the folder its owning study uses, recorded under that study's rules
    owners = {"LR1-smoke": "em_claims", "SAE-TMS-smoke/sources/TMS-relu-smoke": "dictionary_learning",
              "SAE-L0-smoke/SAE-L0-smoke-relu_l1": "dictionary_learning"}
    for folder, owner in owners.items():
        record = read_json(runs / folder / RECORD)
        assert record["study"] == owner and record["rules_sha256"] == STUDIES.get(owner).rules.fingerprint()
    doc = (docs / "polytope_lens.md").read_text()
    assert "toymodels reproduce POLY --scale smoke --seeds 2" in doc and "**Pre-registration.**" in doc
    for v in verdicts:
        assert f"## {v.claim}: {v.title}" in doc
    assert doc.count("**Our criterion.**") == 3 and doc.count("**Where toy models cannot answer.**") == 3
    assert doc.count("**Thresholds halved / doubled:**") == 3 and doc.count("**EM**") == 3
    assert "| setting | seeds | mono_per_feature | code purity |" in doc
    for figure in ("poly_purity.png", "poly_slice.png", "poly_density.png", "poly_validity.png"):
        assert f"](figures/{figure})" in doc and (docs / "figures" / figure).stat().st_size > 0


def test_the_cli_prints_one_line_per_prediction(smoke_run):
    _, runs, docs = smoke_run
    res = CliRunner().invoke(app, ["reproduce", "POLY", "--scale", "smoke", "--seeds", "2", "--out", str(runs),
                                   "--docs", str(docs), "--no-train"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert [line.split()[0] for line in lines[:3]] == list(PREDICTIONS)
    assert lines[-1] == f"report: {docs / 'polytope_lens.md'}"
    res = CliRunner().invoke(app, ["reproduce", "POLY-1", "--scale", "smoke", "--docs", str(docs / "x")])
    assert res.exit_code == 2 and "unknown claim 'POLY-1'" in res.output and not (docs / "x").exists()


def test_without_training_a_missing_source_is_not_run(tmp_path):
    options = StudyOptions(scale="smoke", seeds=3, out_dir=tmp_path / "runs", docs_dir=tmp_path / "docs",
                           command="test", steps={}, train=False)
    verdicts = run_claims(["POLY"], options)
    assert [v.verdict for v in verdicts] == [SCALE_VERDICT] * 3
    assert all(v.numbers.count("not run") == 3 for v in verdicts)
    assert not (tmp_path / "runs").exists() and (tmp_path / "docs" / "polytope_lens.md").exists()
    with pytest.raises(ConfigError, match="unknown claim 'POLY-9'"):
        run_claims(["POLY-9"], options)


def test_a_source_folder_without_a_record_is_post_hoc(tmp_path):
    rules = RuleSet("polytope", RULE_MODULES)
    em = sources("smoke", 2, tmp_path)[0]
    train_sweep(em.sweep, em.folder, progress=False)  # outside reproduce: no pre-registration record
    assert not (em.folder / RECORD).exists()
    decisive = Verdict("POLY-1", "codes", "agrees", "codes better")
    with study_run(StudyRun(rules, 0, 2)):
        assert shared_source(em, train=False, progress=False) is not None
        (v,) = finalize([decisive])
    assert v.verdict == POST_HOC and v.by_rules == "agrees"
    assert "no pre-registration record" in v.details["registration"]


def test_a_source_recorded_after_the_rules_commit_is_pre_registered(tmp_path, monkeypatch):
    """Every rule module as if committed an hour ago: a source the EM claims train now counts for this study."""
    an_hour_ago = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat(timespec="seconds")
    monkeypatch.setattr(RuleSet, "commit", lambda self: ("0" * 40, an_hour_ago, True))
    rules = RuleSet("polytope", RULE_MODULES)
    em = sources("smoke", 2, tmp_path)[0]
    with study_run(StudyRun(rules, 0, 2)) as run:
        shared_source(em, train=True, progress=False)
        (v,) = finalize([Verdict("POLY-1", "codes", "agrees", "codes better")])
    assert read_json(em.folder / RECORD)["study"] == "em_claims"
    assert run.ledger.entries[str(em.folder)].ok and v.verdict == "agrees"
    assert "trained by em_claims" in v.details["registration"]
