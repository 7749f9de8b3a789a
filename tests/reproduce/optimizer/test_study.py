"""The optimizer study (OPT1): the cell rule and the answer on hand-made tables (gains inside the floor, gains whose
interval straddles it and too few seeds are never an effect), the last lr peak and trough of a real run with
``checkpoint_every``, and the document written end to end from the smoke preset. (The intervals, the threshold
sensitivity and the registration path: test_rules.py.)"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from helpers import PNG_MAGIC

from toymodels.config import SweepConfig
from toymodels.config.presets import preset
from toymodels.engine.optim import schedule_factors
from toymodels.reproduce import STUDIES, judge_opt_cell, run_optimizer_study
from toymodels.reproduce.confirmation import StudyRun, note, study_run
from toymodels.reproduce.optimizer.answer import (
    answer,
    oscillation,
    oscillation_summary,
)
from toymodels.reproduce.optimizer.judges import (
    checkpoint_tables,
    judge_cells,
    last_trough_step,
    peak_vs_trough,
    spread,
)
from toymodels.reproduce.optimizer.study import optimizer_study
from toymodels.reproduce.optimizer.tables import oscillation_text
from toymodels.running.sweep import run_sweep

N = 128


def cell(gains: list[float], low: float = 10.0, loss_hi: float = 1.0, setting: str = "LR1", optimizer: str = "lamb",
         schedule: str = "paper_cosine", diverged_seed: int | None = None) -> pd.DataFrame:
    """One cell with one seed per gain: ``low`` mono neurons at lr 0.003 (loss 1.0), ``low + gain`` at lr 0.03
    (loss ``loss_hi``); the seed ``diverged_seed`` diverged at the high lr."""
    rows = []
    for seed, gain in enumerate(gains):
        for lr, neurons, loss in ((0.003, low, 1.0), (0.03, low + gain, loss_hi)):
            bad = seed == diverged_seed and lr == 0.03
            rows.append({"setting": setting, "optimizer": optimizer, "schedule": schedule, "lr": lr, "seed": seed,
                         "N": N,
                             "status": "diverged" if bad else "ok", "mono_neurons": math.nan if bad else neurons,
                             "mono_per_feature": math.nan if bad else neurons / N, "loss": math.nan if bad else loss})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("gains, kwargs, effect", [
    ([10, 10, 10], {}, "yes"),
    ([4, 4, 4], {}, "no effect"),               # a 4-neuron gain on N=128 is inside the floor, not "yes"
    ([10, 10, 10], {"loss_hi": 1.2}, "mono up, loss up"),
    ([-10, -9, -10], {}, "reversed"),
    ([-10, -8, -6], {}, "unclear"),             # every seed <= -5, but the interval reaches -3.0: cannot tell
    ([20, 1, -3], {}, "unclear"),               # the mean passes the floor, the interval does not
    ([6, 7, 8], {}, "unclear"),                 # every seed >= 5, the interval [4.5, 9.5] straddles the floor
    ([2, 2, 2], {"low": 1.0}, "no mono"),      # neither lr reaches the floor: outside the regime
    ([10, 10], {}, "too few seeds"),
    ([10, 10, 10], {"diverged_seed": 0}, "diverged"),
])
def test_judge_opt_cell(gains, kwargs, effect):
    j = judge_opt_cell(cell(gains, **kwargs))
    assert j["effect"] == effect
    if effect not in ("diverged",):
        assert j["d_neurons"]["mean"] == pytest.approx(sum(gains) / len(gains))
        assert j["d_mono"]["mean"] == pytest.approx(sum(gains) / len(gains) / N)


def test_spread_gives_the_t_interval_and_the_range():
    s = spread([1.0, 2.0, 3.0])
    assert (s["mean"], s["sd"], s["min"], s["max"]) == (2.0, 1.0, 1.0, 3.0)
    t = 4.302652729749464  # Student's t, 2 degrees of freedom, two-sided 95%
    assert s["lo95"] == pytest.approx(2 - t / math.sqrt(3)) and s["hi95"] == pytest.approx(2 + t / 3**0.5)


def test_last_trough_step_is_511_mod_1024():
    assert last_trough_step(2**15) == 2**15 - 513 and last_trough_step(2**17) == 2**17 - 513
    assert last_trough_step(1024) == 511 and last_trough_step(511) is None and last_trough_step(512) == 511
    factors = schedule_factors("paper_cosine", 2048)
    assert factors[511] < 1e-4 and factors[1535] < 1e-4 and factors[2047] > 0.999


def cells_of(*parts: pd.DataFrame) -> dict:
    return judge_cells(pd.concat(parts, ignore_index=True).assign(lr_level="?"))


def test_answer_never_counts_noise_level_gains():
    noise = cells_of(*(cell([4, 4, 4], optimizer=o, schedule=s) for o in ("lamb", "adam")
                       for s in ("paper_cosine", "cosine")))
    verdict, short, text = answer(noise, {}, {})
    assert verdict == "inconclusive" and short == "effect in no cell (4 no effect)"
    outside = cells_of(cell([0, 0, 0], low=0.0), cell([10, 10], optimizer="adam"))
    verdict, short, text = answer(outside, {}, {})
    assert verdict == "inconclusive" and short == "no cell can be judged (1 too few seeds, 1 no mono)"
    assert "outside the regime" in text


def test_answer_from_the_cells():
    only_lamb = cells_of(cell([10, 12, 9]), cell([10, 12, 9], schedule="cosine"),
                         cell([4, 3, 4], optimizer="adam"), cell([-1, 2, 0], optimizer="adam", schedule="cosine"))
    trough = cells_of(cell([1, 2, 0]), cell([10, 12, 9], schedule="cosine"))
    verdict, short, text = answer(only_lamb, trough, {})
    assert verdict == "answered" and short == "needs LAMB: yes; yes per optimizer lamb 2/2, adam 0/2"
    assert "Per schedule, at the final step: paper_cosine 1/2, cosine 1/2." in text
    assert "the effect holds in 0 of these 2 paper_cosine cells (at the peak: 1)" in text
    with_adam = cells_of(cell([10, 12, 9]), cell([8, 9, 8], optimizer="adam"))
    verdict, short, text = answer(with_adam, {}, {})
    assert short.startswith("needs LAMB: no") and text.startswith("**Answer: the effect does not need LAMB")


def test_answer_cannot_tell_lamb_from_others_without_another_judged_optimizer():
    cells = cells_of(cell([10, 12, 9]), cell([0, 0, 0], low=0.0, optimizer="adam"))
    verdict, short, text = answer(cells, {}, {})
    assert verdict == "answered" and short.startswith("needs LAMB: cannot tell")
    assert "no other optimizer's cell can be judged" in text


def test_the_oscillation_in_numbers():
    """High lr: 40 mono neurons at the peak and 10 at the trough in every seed, loss 1.2 at the peak, 1.0 at the
    trough; the low lr does not move."""
    def at(where: str) -> pd.DataFrame:
        df = cell([30, 30, 30]) if where == "peak" else cell([0, 0, 0])
        df.loc[df["lr"] == 0.03, "loss"] = 1.2 if where == "peak" else 1.0
        return df.assign(lr_level=df["lr"].map({0.003: "low", 0.03: "high"}))

    pvt = peak_vs_trough(at("peak"), at("trough"))
    osc = oscillation(pvt, "paper_cosine")
    assert (osc["n"], len(osc["regime"]), len(osc["up"]), len(osc["down"]), len(osc["loss_up"])) == (1, 1, 1, 0, 1)
    text = oscillation_text(pvt)
    assert text.startswith("The oscillation of paper_cosine's lr changes the model")
    assert "paper_cosine LAMB (LR1) has 0.312 mono/feature at the last peak and 0.0781 at the last trough" in text
    assert "its loss is 1.2 at the peak and 1 at the trough" in text
    assert oscillation_summary(pvt).endswith("in 1 of 1 (setting, optimizer) pairs and fewer in 0, while its loss "
                                             "is higher at the peak in 1 of them (section 'Peak vs trough').")


@pytest.fixture(scope="module")
def peak_trough_run(tmp_path_factory):
    """A tiny OPT1-like part: smoke sizes, 1024 steps (one lr trough at 511, the peak at 1023), 3 seeds."""
    sw = preset("OPT1-LR1-lamb", "smoke")
    sw = SweepConfig(name=sw.name, base=sw.base.replace(steps=1024),
                     grid={"schedule": ["paper_cosine", "constant"], "lr": [0.003, 0.03]}, seeds=3)
    root = tmp_path_factory.mktemp("opt1")
    return {"OPT1-LR1-lamb": run_sweep(sw, root / "OPT1-LR1-lamb", progress=False)}


def test_peak_and_trough_of_a_run_with_checkpoint_every(peak_trough_run):
    res = peak_trough_run["OPT1-LR1-lamb"]
    assert res.sweep.base.run.checkpoint_every == 512
    peak, trough = checkpoint_tables(peak_trough_run)
    assert set(peak["step"]) == {1023} and set(trough["step"]) == {511} and len(peak) == len(trough) == 12
    assert set(peak["lr_level"]) == {"low", "high"} and (peak["status"] == "ok").all()
    # the loss at the peak is final_loss; at the trough the mean of the 8 logs at steps 384..496
    assert peak.set_index("run_id")["loss"].to_dict() == pytest.approx(
        res.instances.set_index("run_id")["final_loss"].to_dict())
    logs = res.metrics[(res.metrics["name"] == "loss") & res.metrics["step"].between(384, 511)]
    assert sorted(logs["step"].unique()) == list(range(384, 512, 16))
    assert trough.set_index("run_id")["loss"].to_dict() == pytest.approx(
        logs.groupby("run_id")["value"].mean().to_dict())
    m = res.metrics[(res.metrics["name"] == "mono_per_feature") & (res.metrics["step"] == 511)]
    assert trough.set_index("run_id")["mono_per_feature"].to_dict() == m.set_index("run_id")["value"].to_dict()
    pvt = peak_vs_trough(peak, trough)
    assert set(pvt) == {("LR1", "lamb", s, lv) for s in ("paper_cosine", "constant") for lv in ("low", "high")}
    assert all(v["n"] == 3 for v in pvt.values())


def test_optimizer_study_reports_the_peak_and_the_trough(peak_trough_run, tmp_path):
    # inside a study run (as reproduce() runs it) with the folder read: the registration line heads the document
    with study_run(StudyRun(STUDIES.get("optimizer").rules, 0, 3)):
        note(peak_trough_run["OPT1-LR1-lamb"].folder)
        v = optimizer_study(peak_trough_run, tmp_path / "docs", "toymodels reproduce OPT1 --scale smoke", "smoke", 3)
    assert set(v.details["trough_cells"]) == set(v.details["cells"]) and "effect (trough)" in v.table.columns
    text = (tmp_path / "docs" / "optimizer_study.md").read_text()
    assert "**Pre-registration.** 1 of 1 results folders are post hoc" in text
    assert "exploratory runs (seeds 0-2)" in text
    assert "Threshold sensitivity (the floor 5 neurons and the loss tolerance 0.05, halved or doubled)" in v.reason
    assert "after each of the first 512 steps, none in the second half" in text  # the decay as the engine applies it
    assert "cosine (final lr" in text and "mono neurons high lr: mono?" in v.table.columns
    assert "step 1023 is at an lr **peak**, step 511 (511 mod 1024) at the last **trough**" in text
    assert "At the high lr, paper_cosine LAMB (LR1) has" in text and "With constant (whose lr" in text
    assert "(figures/opt_peak_trough.png)" in text
    assert (tmp_path / "docs" / "figures" / "opt_peak_trough.png").read_bytes()[:8] == PNG_MAGIC


@pytest.mark.slow
def test_the_smoke_study_end_to_end(tmp_path):
    """``toymodels reproduce OPT1 --scale smoke --seeds 3``: every part trained, the document with its provenance
    header and its figures. (About 1.5 min on 2 busy cores: 216 instances of 256 steps.)"""
    command = "toymodels reproduce OPT1 --scale smoke --seeds 3"
    v = run_optimizer_study("smoke", 3, tmp_path / "runs", tmp_path / "docs", command=command)
    text = (tmp_path / "docs" / "optimizer_study.md").read_text()
    assert text.startswith("# Optimizer x schedule study (OPT1)") and v.reason in text
    assert f"Generated by `{command}` with toymodels" in text and "git commit `" in text
    assert "(216/216 instances finished)" in text and "seeds per lr: 3" in text
    assert v.verdict == "inconclusive (scale)" and v.by_rules in ("answered", "inconclusive") and len(v.table) == 24
    assert "| lamb | 0.03 | 0.03 | 0.0009 |" in text  # LR3's pull decay x lr is LAMB's for every optimizer
    assert "| sgd | 0.003 | 0.3 | 0.0009 |" in text
    for name in ("opt_effect", "opt_matched", "opt_curves"):
        assert (tmp_path / "docs" / "figures" / f"{name}.png").read_bytes()[:8] == PNG_MAGIC
        assert f"(figures/{name}.png)" in text
