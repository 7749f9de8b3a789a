"""The dictionary-learning studies: each judge's rule on hand-built tables, and one study end to end at smoke
scale writing docs/dictionary_learning.md."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from toymodels.cli import app
from toymodels.config import ConfigError
from toymodels.reproduce.dictionary_learning.study import run_dictionary_learning
from toymodels.reproduce.dictionary_learning.judges import (
    judge_absorption,
    judge_l0,
    judge_lr,
    judge_tms,
)


def lr_rows(covered, rec_h, mcc_h=0.9):
    return pd.DataFrame([dict(setting="LR1", lr=lr, features_covered=c, recovered_h=r, recovered_x=0.1,
                              mcc_h=mcc_h, mcc_x=0.5) for lr, c, r in zip([1e-3, 1e-2, 3e-2], covered, rec_h)])


def test_judge_lr_counts_where_the_sae_recovers_more():
    v = judge_lr(lr_rows([0.0, 0.1, 0.6], [0.5, 0.5, 0.62]))
    assert v.verdict == "answered" and "more at 2/3 lrs, fewer at 0" in v.numbers
    assert judge_lr(lr_rows([0, 0, 0], [0, 0, 0], mcc_h=0.2)).verdict == "inconclusive"
    assert judge_lr(pd.DataFrame()).verdict == "inconclusive"


def l0_rows(best_l0_per_arch, true_l0=4.0, mcc=0.9):
    rows = []
    for arch, best in best_l0_per_arch.items():
        for l0 in (1.0, 4.0, 16.0):
            rows.append(dict(sae_arch=arch, sae_width=128, N=128, l0=l0, true_l0=true_l0, status="ok",
                             mcc=mcc if l0 == best else mcc - 0.2))
    return pd.DataFrame(rows)


def test_judge_l0_asks_whether_mcc_peaks_near_the_true_l0():
    assert judge_l0(l0_rows({"topk": 4.0, "relu_l1": 4.0})).verdict == "agrees"
    assert judge_l0(l0_rows({"topk": 4.0, "relu_l1": 16.0})).verdict == "partly"
    assert judge_l0(l0_rows({"topk": 1.0, "relu_l1": 16.0})).verdict == "disagrees"
    assert judge_l0(l0_rows({"topk": 4.0}, mcc=0.3)).verdict == "inconclusive"


def test_judge_absorption_uses_the_mean_gap_of_hierarchical_saes():
    rows = [dict(sae_arch=a, firing=f, mcc=0.8, status="ok", absorption_gap=(g if f == "hierarchical" else math.nan))
            for a, g in (("relu_l1", 0.02), ("topk", 0.3)) for f in ("independent", "hierarchical")]
    v = judge_absorption(pd.DataFrame(rows))
    assert v.verdict == "answered" and v.reason.startswith("Absorption appears for topk")
    low = pd.DataFrame(rows).assign(mcc=0.1)
    assert judge_absorption(low).verdict == "inconclusive"


def test_judge_tms_needs_a_clear_rank_correlation():
    eps = [1.0, 0.1, 0.01, 0.001]
    df = pd.DataFrame(dict(eps=eps, sparsity=[1 - e for e in eps], features_recovered=[0.1, 0.3, 0.6, 0.9],
                           represented=[5, 8, 15, 20], mcc=0.5, status="ok"))
    v = judge_tms(df)
    assert v.verdict == "answered" and "rises" in v.reason
    flat = df.assign(features_recovered=[0.5, 0.2, 0.6, 0.3])
    assert judge_tms(flat).verdict == "inconclusive"


def test_a_study_end_to_end_writes_the_report(tmp_path):
    with pytest.raises(ConfigError, match="unknown study 'SAE-X'"):
        run_dictionary_learning(["SAE-X"], scale="smoke", out_dir=tmp_path / "runs", docs_dir=tmp_path / "docs")
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:  # one command, as a user types it
        res = CliRunner().invoke(app, ["reproduce", "SAE-ABS", "--scale", "smoke", "--seeds", "1",
                                       "--out", str(tmp_path / "runs"), "--docs", str(tmp_path / "docs")])
    finally:
        torch.set_num_threads(old)
    assert res.exit_code == 0, res.output
    verdict = next(line for line in res.output.splitlines() if line.startswith("SAE-ABS "))  # after the sweeps'
    assert verdict.startswith("SAE-ABS inconclusive (scale) smoke-scale runs are too small to judge the claim; "
                              "its rules alone say "), res.output
    assert f"report: {tmp_path / 'docs' / 'dictionary_learning.md'}" in res.output
    doc = (tmp_path / "docs" / "dictionary_learning.md").read_text()
    assert "toymodels reproduce SAE-ABS --scale smoke" in doc
    assert "| SAE-ABS |" in doc and "| SAE-L0 |" in doc and "not run yet" in doc
    assert "![SAE-ABS](figures/sae_absorption.png)" in doc
    assert (tmp_path / "docs" / "figures" / "sae_absorption.png").exists()
