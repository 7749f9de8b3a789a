"""Pre-registration and fresh-seed confirmation (issue 26): a study's rules are hashed and recorded before its runs
train; a verdict of data trained under other or uncommitted rules is "post hoc"; ``reproduce(confirm=N)`` trains N
fresh seeds from 1000 whose verdicts decide, with the exploratory verdicts beside them.

The study of these tests is defined here: its rules are a module in a throwaway git repository, so the tests can
commit, change and un-commit them."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from toymodels.config import ConfigError, SweepConfig
from toymodels.config.presets import preset
from toymodels.reproduce import STUDIES, Study, StudyOptions, register, reproduce
from toymodels.reproduce.confirmation import FIRST_FRESH_SEED, finalize, side_by_side
from toymodels.reproduce.registration import RECORD, Registration, RuleSet, enforce, record, status
from toymodels.reproduce.study import train_sweep
from toymodels.reproduce.verdict import POST_HOC, Verdict
from toymodels.results.safe_io import read_json


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True,
                   capture_output=True)


@pytest.fixture
def rules(tmp_path, monkeypatch):
    """A rule module ``toy_rules_<n>`` in a git repository of its own, committed; yields (RuleSet, its file)."""
    repo = tmp_path / "rules_repo"
    repo.mkdir()
    name = f"toy_rules_{abs(hash(str(tmp_path))) % 10**8}"
    path = repo / f"{name}.py"
    path.write_text("FLOOR = 5\n")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "rules")
    monkeypatch.syspath_prepend(str(repo))
    importlib.invalidate_caches()
    importlib.import_module(name)
    yield RuleSet("toy", (name,)), path
    sys.modules.pop(name, None)


def tiny_sweep(seeds: int = 2) -> SweepConfig:
    base = preset("LR1", "smoke", seeds).base
    return SweepConfig(name="toy-sweep", base=base.replace(steps=16, checkpoint_every=0), grid={"lr": [0.01]},
                       seeds=seeds)


def test_the_rules_fingerprint_follows_their_source(rules):
    ruleset, path = rules
    before = ruleset.fingerprint()
    commit, date, committed = ruleset.commit()
    assert len(before) == 64 and commit and date and committed
    path.write_text("FLOOR = 10\n")
    assert ruleset.fingerprint() != before and ruleset.commit()[2] is False  # changed and not committed


def test_a_folder_trained_under_committed_rules_is_pre_registered(rules, tmp_path):
    ruleset, path = rules
    folder = tmp_path / "runs" / "toy-sweep"
    entry = record(folder, ruleset)
    assert entry is not None and read_json(folder / RECORD)["rules_sha256"] == ruleset.fingerprint()
    train_sweep(tiny_sweep(), folder, progress=False)  # the record does not stop the folder from training
    assert status(folder, ruleset).ok
    assert record(folder, ruleset) is None  # a folder holding runs keeps its first record
    # the rules change after the data: post hoc, whatever the verdict
    path.write_text("FLOOR = 2\n")
    later = status(folder, ruleset)
    assert later.state == "post hoc" and "changed after training started" in later.why


def test_uncommitted_rules_or_no_record_are_post_hoc(rules, tmp_path):
    ruleset, path = rules
    path.write_text("FLOOR = 7\n")  # edited, not committed, when training starts
    folder = tmp_path / "a"
    record(folder, ruleset)
    assert status(folder, ruleset).why == "the rules were not committed when training started"
    bare = tmp_path / "b"
    train_sweep(tiny_sweep(), bare, progress=False)  # outside a study run: no record
    assert not (bare / RECORD).exists() and "no pre-registration record" in status(bare, ruleset).why


def test_post_hoc_data_cannot_agree_or_disagree():
    verdicts = [Verdict("A", "a", "agrees", "x"), Verdict("B", "b", "disagrees", "y"),
                Verdict("C", "c", "inconclusive", "z")]
    late = Registration("f", "post hoc", "no record")
    out = enforce(verdicts, [late])
    assert [(v.verdict, v.by_rules) for v in out] == [(POST_HOC, "agrees"), (POST_HOC, "disagrees"),
                                                      ("inconclusive", "")]
    assert out[0].reason.startswith("post hoc (f: no record)")
    assert enforce(verdicts, [Registration("f", "pre-registered", "ok")]) == verdicts


class TrainingStudy:
    """A study that trains one tiny sweep through ``train_sweep`` and agrees when it finished."""

    def __init__(self, ruleset: RuleSet):
        self.seen: list[list[int]] = []
        self.study = Study("toy_registered", "toy_registered.md", ("TOYREG",), self.run, rank=2000, rules=ruleset)

    def run(self, claims, options: StudyOptions) -> list[Verdict]:
        res = (train_sweep(tiny_sweep(options.seeds), options.out_dir / "toy-sweep", progress=False)
               if options.train else None)
        if res is not None:
            self.seen.append(sorted(int(s) for s in res.instances["seed"]))
        verdicts = finalize([Verdict("TOYREG", "toy", "agrees" if res is not None else "inconclusive", "ran")])
        options.docs_dir.mkdir(parents=True, exist_ok=True)
        (options.docs_dir / self.study.document).write_text("\n".join(side_by_side(verdicts)))
        return verdicts


@pytest.fixture
def registered(rules):
    toy = TrainingStudy(rules[0])
    register(toy.study)
    try:
        yield toy, rules[1]
    finally:
        STUDIES.unregister(toy.study.name)


def test_confirmation_trains_fresh_seeds_and_decides(registered, tmp_path):
    toy, _ = registered
    (v,) = reproduce(["TOYREG"], scale="smoke", seeds=2, out_dir=tmp_path / "runs", docs_dir=tmp_path / "docs",
                     confirm=3, progress=False)
    # exploratory seeds 0-1, then 3 fresh seeds from 1000, into their own folders
    assert toy.seen == [[0, 1], [FIRST_FRESH_SEED, FIRST_FRESH_SEED + 1, FIRST_FRESH_SEED + 2]]
    assert (tmp_path / "runs" / "toy-sweep" / RECORD).exists()
    assert (tmp_path / "runs" / "confirm" / "toy-sweep" / RECORD).exists()
    assert v.verdict == "agrees" and v.details["role"] == "confirmatory"
    assert v.details["exploratory"].verdict == "agrees" and v.details["seeds"] == "seeds 1000-1002"
    doc = (tmp_path / "docs" / "toy_registered.md").read_text()
    assert "| TOYREG | agrees (seeds 0-1) | **agrees** (seeds 1000-1002) |" in doc
    assert (tmp_path / "docs" / "exploratory" / "toy_registered.md").exists()


def test_rules_changed_after_training_make_the_verdict_post_hoc(registered, tmp_path):
    toy, path = registered
    kw = dict(scale="smoke", seeds=2, out_dir=tmp_path / "runs", docs_dir=tmp_path / "docs", progress=False)
    assert reproduce(["TOYREG"], **kw)[0].verdict == "agrees"
    path.write_text("FLOOR = 3\n")  # the rules move after the data exists
    (v,) = reproduce(["TOYREG"], **kw)  # the finished folder is reloaded, not retrained
    assert v.verdict == POST_HOC and v.by_rules == "agrees" and "rules changed after training" in v.reason
    assert "1 of 1 results folders are post hoc" in (tmp_path / "docs" / "toy_registered.md").read_text()


def test_exploratory_seeds_may_not_reach_the_fresh_ones(registered, tmp_path):
    with pytest.raises(ConfigError, match="field 'seeds'"):
        reproduce(["TOYREG"], scale="smoke", seeds=FIRST_FRESH_SEED + 1, confirm=2, out_dir=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()
