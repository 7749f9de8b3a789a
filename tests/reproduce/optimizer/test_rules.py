"""OPT1's rules (issue 26): the cell rule reads 95% intervals (a gain whose interval straddles the floor cannot tell,
a clear one agrees), the answer's wording says what the cells show, the annealed-schedule finding is computed from
the cells, every answer states its threshold sensitivity, and the registration path (a folder trained under the
rules in force keeps its decisive answer; one without a record is post hoc)."""

from __future__ import annotations

import pandas as pd
import pytest

from toymodels.config.presets import preset
from toymodels.reproduce import STUDIES
from toymodels.reproduce.confirmation import StudyRun, finalize, study_run
from toymodels.reproduce.optimizer.answer import (
    annealed_finding,
    answer,
    derive,
    final_lr_factors,
    sensitivity,
)
from toymodels.reproduce.optimizer.judges import judge_cells, judge_opt_cell
from toymodels.reproduce.optimizer.rules import THRESHOLDS
from toymodels.reproduce.optimizer.study import run_optimizer_study
from toymodels.reproduce.registration import RECORD, RuleSet, record
from toymodels.reproduce.study import load_for_study
from toymodels.reproduce.verdict import Verdict
from toymodels.running.sweep import run_sweep

N = 128


def cell(gains: list[float], low: float = 10.0, loss_hi: float = 1.0, setting: str = "LR1", optimizer: str = "lamb",
         schedule: str = "paper_cosine") -> pd.DataFrame:
    """One cell with one seed per gain: ``low`` mono neurons at lr 0.003 (loss 1.0), ``low + gain`` at lr 0.03
    (loss ``loss_hi``)."""
    rows = [{"setting": setting, "optimizer": optimizer, "schedule": schedule, "lr": lr, "seed": seed, "N": N,
             "status": "ok", "mono_neurons": n, "mono_per_feature": n / N, "loss": loss,
             "lr_level": "low" if lr == 0.003 else "high"}
            for seed, gain in enumerate(gains) for lr, n, loss in ((0.003, low, 1.0), (0.03, low + gain, loss_hi))]
    return pd.DataFrame(rows)


def cells_of(*parts: pd.DataFrame) -> dict:
    return judge_cells(pd.concat(parts, ignore_index=True))


def test_an_interval_straddling_the_floor_cannot_tell_and_a_clear_gain_is_yes():
    straddle = judge_opt_cell(cell([6, 7, 8]))  # every seed gains >= 5, the mean's interval is [4.5, 9.5]
    assert straddle["effect"] == "unclear"
    assert straddle["d"].low < THRESHOLDS.mono_floor < straddle["d"].high
    assert straddle["d"].estimate == pytest.approx(7.0) and straddle["d"].n == 3
    clear = judge_opt_cell(cell([10, 11, 10]))
    assert clear["effect"] == "yes" and clear["d"].low >= THRESHOLDS.mono_floor
    assert clear["mono"]["high"][0] == "yes" and clear["mono"]["low"][0] == "yes"
    # the loss ratio reads an interval too: a cost that might be inside the tolerance is not "no cost"
    noisy_loss = cell([10, 11, 10])
    noisy_loss.loc[noisy_loss["lr"] == 0.03, "loss"] = [0.9, 1.0, 1.3]
    assert judge_opt_cell(noisy_loss)["effect"] == "mono up, loss unclear"
    # an answer resting only on straddling cells is inconclusive; a clear cell answers
    verdict, short, _ = answer(cells_of(cell([6, 7, 8]), cell([6, 7, 8], optimizer="sgd")), {}, {})
    assert verdict == "inconclusive" and short == "effect in no cell (2 unclear)"
    verdict, short, _ = answer(cells_of(cell([6, 7, 8]), cell([10, 11, 10], optimizer="sgd")), {}, {})
    assert verdict == "answered" and short == "needs LAMB: no; yes per optimizer lamb 0/1, sgd 1/1"


def test_the_wording_says_what_the_cells_show():
    """The referee's case: the effect holds in SGD cells only while LAMB has 0 of 3; never 'as well'."""
    lamb = [cell([30, 31, 30], loss_hi=1.5, schedule=s) for s in ("paper_cosine", "constant", "cosine")]
    sgd = [cell([10, 11, 10], optimizer="sgd", schedule=s) for s in ("paper_cosine", "constant")]
    verdict, short, text = answer(cells_of(*lamb, *sgd), {}, {})
    assert verdict == "answered" and short.startswith("needs LAMB: no; yes per optimizer lamb 0/3, sgd 2/2")
    assert "as well" not in text and "in none of LAMB's 3 judged cell(s)" in text
    assert "lamb 0/3 (3 mono up, loss up)" in text and "LR1 sgd paper_cosine, LR1 sgd constant" in text
    both = answer(cells_of(cell([10, 11, 10]), *sgd), {}, {})[2]
    assert "in 1 LAMB cell(s) and in cells of sgd" in both


def test_the_annealed_finding_is_computed_from_the_cells():
    final_lr = final_lr_factors(["paper_cosine", "constant", "cosine"], 2048)
    assert final_lr["cosine"] < 0.01 and final_lr["constant"] == 1.0 and final_lr["paper_cosine"] > 0.99
    peak = cells_of(cell([30, 31, 30]), cell([20, 21, 20], schedule="constant"),
                    cell([0, 1, 0], low=0.0, schedule="cosine"), cell([1, 0, 1], low=1.0, optimizer="sgd",
                                                                      schedule="cosine"))
    trough = cells_of(cell([0, 1, 0], low=0.0), cell([20, 21, 20], schedule="constant"))
    text = annealed_finding(peak, trough, final_lr)
    assert "cosine: final lr" in text and ": 0 of 2 cells become monosemantic at the high lr" in text
    assert "2 do not" in text and "(paper_cosine, constant): 2 of 2 cells do" in text
    assert "at its last trough (lr ~0): 0 of 1 cells monosemantic at the high lr, against 1 at its final peak" in text
    assert text.endswith("the effect seems to need a high final lr.")
    # one annealed cell that becomes monosemantic: the finding says so, and no longer claims the need
    text = annealed_finding(cells_of(cell([30, 31, 30]), cell([30, 31, 30], schedule="cosine")), {}, final_lr)
    assert ": 1 of 1 cells become monosemantic" in text and "seems to need" not in text
    assert annealed_finding(peak, {}, {"constant": 1.0}) == ""  # no annealed schedule: nothing to say
    _verdict, _short, text = answer(peak, trough, {}, final_lr)
    assert "seems to need a high final lr" in text


def test_the_answer_states_its_threshold_sensitivity():
    peak = pd.concat([cell([7, 7, 7]), cell([7, 7, 7], optimizer="sgd")], ignore_index=True)
    final_lr = {"paper_cosine": 1.0}
    got = derive(peak, pd.DataFrame(), final_lr)
    assert got["short"] == "needs LAMB: no; yes per optimizer lamb 1/1, sgd 1/1"
    moved = sensitivity(peak, pd.DataFrame(), final_lr, got["short"])
    # halving the floor keeps a 7-neuron gain; doubling it (10 neurons) leaves it inside the floor
    assert moved == ("thresholds halved: needs LAMB: no; yes per optimizer lamb 1/1, sgd 1/1; doubled: effect in no "
                     "cell (2 no effect)")
    big = pd.concat([cell([30, 30, 30]), cell([30, 31, 30], optimizer="sgd")], ignore_index=True)
    assert sensitivity(big, pd.DataFrame(), final_lr, derive(big, pd.DataFrame(), final_lr)["short"]) == \
        "unchanged with thresholds halved or doubled"


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """Two tiny results folders: ``recorded`` got the study's pre-registration record before training,
    ``bare`` was trained without one."""
    root = tmp_path_factory.mktemp("registration")
    with pytest.MonkeyPatch.context() as mp:
        # the rules as committed: the checkout's rule files may carry uncommitted edits while they are developed
        mp.setattr(RuleSet, "commit", lambda self: ("0" * 40, "2026-12-07T00:00:00+00:00", True))
        record(root / "recorded", STUDIES.get("optimizer").rules)
    for name in ("recorded", "bare"):
        run_sweep(preset("TMS-intro", "smoke", seeds=1), root / name, progress=False)
    return root


def test_registration_keeps_a_pre_registered_answer_and_marks_a_bare_folder_post_hoc(folders):
    root = folders
    rules = STUDIES.get("optimizer").rules
    assert rules.modules[0] == "toymodels.reproduce.optimizer.rules"
    assert {"toymodels.reproduce.intervals", "toymodels.reproduce.verdict"} <= set(rules.modules)
    assert (root / "recorded" / RECORD).exists() and not (root / "bare" / RECORD).exists()
    v = Verdict("OPT1", "OPT1", "answered", "needs LAMB: no")
    with study_run(StudyRun(rules, 0, 1)):
        load_for_study(root / "recorded")
        (kept,) = finalize([v])
    assert kept.verdict == "answered" and kept.details["registration"].startswith("all 1 results folders")
    with study_run(StudyRun(rules, 0, 1)):
        load_for_study(root / "bare")
        (late,) = finalize([v])
    assert late.verdict == "post hoc" and late.by_rules == "answered"
    assert "no pre-registration record" in late.reason
    assert late.details["seeds"] == "seed 0" and late.details["role"] == "exploratory"


def test_without_training_and_without_folders_opt1_is_not_run(tmp_path):
    v = run_optimizer_study("smoke", 3, tmp_path / "runs", tmp_path / "docs", progress=False, train=False)
    assert v.verdict == "inconclusive" and v.reason.startswith("not run: no OPT1 results folder")
    assert not (tmp_path / "runs").exists() and "not run" in (tmp_path / "docs" / "optimizer_study.md").read_text()
