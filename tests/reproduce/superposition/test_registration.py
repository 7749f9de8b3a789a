"""The superposition study's pre-registration path (issue 26): its rules are registered with the study; a folder
trained under the rules in force keeps a decisive verdict, one without a record makes it post hoc; the document
carries the registration line, inside ``reproduce``'s study run as outside."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import polygon, weights_table

from toymodels.config.presets import preset
from toymodels.reproduce import STUDIES
from toymodels.reproduce.confirmation import StudyRun, finalize, study_run
from toymodels.reproduce.registration import RECORD, RuleSet, record
from toymodels.reproduce.study import load_for_study
from toymodels.reproduce.superposition.checks import check_intro
from toymodels.reproduce.superposition.study import reproduce_superposition
from toymodels.running.sweep import run_sweep

RULES = STUDIES.get("superposition").rules


def committed(mp: pytest.MonkeyPatch) -> None:
    """The rules as committed: while they are developed the checkout's rule files may carry uncommitted edits,
    which (rightly) make every record post hoc."""
    mp.setattr(RuleSet, "commit", lambda self: ("0" * 40, "2026-12-07T00:00:00+00:00", True))


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """``recorded/`` got the study's pre-registration record before training; ``bare/<preset folder>`` none."""
    root = tmp_path_factory.mktemp("registration")
    sweep = preset("TMS-intro", "smoke", seeds=3)
    with pytest.MonkeyPatch.context() as mp:
        committed(mp)
        record(root / "recorded", RULES)
    run_sweep(sweep, root / "recorded", progress=False)
    run_sweep(sweep, root / "bare" / sweep.name, progress=False)
    return root, sweep.name


def test_the_rules_are_registered_with_the_study():
    assert RULES.study == "superposition" and RULES.modules[0] == "toymodels.reproduce.superposition.rules"
    assert {"toymodels.reproduce.superposition.checks", "toymodels.reproduce.superposition.seed_checks",
            "toymodels.reproduce.intervals", "toymodels.reproduce.verdict"} <= set(RULES.modules)
    assert len(RULES.fingerprint()) == 64


def ideal_intro():
    dense = np.c_[np.eye(2), np.zeros((2, 3))]
    return weights_table(eps=[1.0, 0.05], seed=[0, 0], final_loss=[0.1, 0.01], W=[dense, polygon(5)],
                         b=[np.zeros(5), -0.05 * np.ones(5)])


def test_a_recorded_folder_keeps_its_decisive_verdict_and_a_bare_one_is_post_hoc(folders):
    root, name = folders
    v = check_intro(ideal_intro())
    assert v.verdict == "agrees"
    with study_run(StudyRun(RULES, 0, 3)):
        load_for_study(root / "recorded")
        (kept,) = finalize([v])
    assert kept.verdict == "agrees" and "all 1 results folders were trained under the rules" in \
        kept.details["registration"]
    with study_run(StudyRun(RULES, 0, 3)):
        load_for_study(root / "bare" / name)
        (late,) = finalize([v])
    assert late.verdict == "post hoc" and late.by_rules == "agrees" and "no pre-registration record" in late.reason


def test_the_document_says_how_its_folders_were_registered(folders, tmp_path, monkeypatch):
    root, name = folders
    docs = tmp_path / "docs"
    # a folder trained before the rules were recorded, reloaded without training: post hoc
    with study_run(StudyRun(RULES, 0, 3)):
        (v,) = reproduce_superposition(["TMS-intro"], scale="smoke", seeds=3, out_dir=root / "bare", docs_dir=docs,
                                       progress=False, train=False)
    text = (docs / "superposition.md").read_text()
    assert "**Pre-registration.** 1 of 1 results folders are post hoc" in text
    assert "These are exploratory runs (seeds 0-2)" in text and v.verdict == "inconclusive (scale)"
    records = json.loads((root / "bare" / "superposition-smoke-verdicts.json").read_text())
    assert records[0]["registration"].startswith("1 of 1 results folders are post hoc")
    # a folder trained inside the study run records the rules in force before it trains
    committed(monkeypatch)
    with study_run(StudyRun(RULES, 0, 3)):
        reproduce_superposition(["TMS-intro"], scale="smoke", seeds=3, out_dir=tmp_path / "runs", docs_dir=docs,
                                progress=False)
    assert json.loads((tmp_path / "runs" / name / RECORD).read_text())["rules_sha256"] == RULES.fingerprint()
    assert "all 1 results folders were trained under the rules in force" in (docs / "superposition.md").read_text()
    # without training and without a folder, the claim is reported as not run
    (tmp_path / "none").mkdir()
    assert reproduce_superposition(["TMS-intro"], scale="smoke", out_dir=tmp_path / "none", docs_dir=docs,
                                   progress=False, train=False) == []
    assert "## TMS-intro: not run" in (docs / "superposition.md").read_text()
