"""`toymodels reproduce`: end to end at smoke scale, and the verdict logic on hand-made results tables."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest
from typer.testing import CliRunner

from toymodels import reproduce as rp
from toymodels.cli import app


def test_reproduce_lr1_smoke_writes_report(tmp_path):
    docs = tmp_path / "docs"
    res = CliRunner().invoke(app, ["reproduce", "LR1", "--scale", "smoke", "--seeds", "1",
                                   "--out", str(tmp_path / "runs"), "--docs", str(docs)])
    assert res.exit_code == 0, res.output
    text = (docs / "reproduction.md").read_text()
    assert "## 1. Learning rate steers monosemanticity" in text
    assert "scale `smoke`" in text and "toymodels 0.1.0" in text and "git commit" in text
    assert any(f"**Verdict: {v}**" in text for v in ("agrees", "partly", "disagrees", "inconclusive"))
    assert (docs / "figures" / "em_lr1.png").stat().st_size < 150_000
    assert "(figures/em_lr1.png)" in text
    assert "LR1" in res.output and "report:" in res.output
    # a second call reuses the finished sweep (no retraining, same folder)
    again = CliRunner().invoke(app, ["reproduce", "LR1", "--scale", "smoke", "--seeds", "1",
                                     "--out", str(tmp_path / "runs"), "--docs", str(docs)])
    assert again.exit_code == 0, again.output


def test_reproduce_needs_names_or_all():
    res = CliRunner().invoke(app, ["reproduce"])
    assert res.exit_code == 2 and "--all" in res.output


def test_unknown_claim_is_a_clear_error(tmp_path):
    res = CliRunner().invoke(app, ["reproduce", "LR9", "--scale", "smoke", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "unknown claim 'LR9'" in res.output


def _fake(field: str, rows: list[tuple[float, float, float, float]], **fixed) -> SimpleNamespace:
    """A stand-in for Results: instances with (value, mono, loss, bias) per seed."""
    df = pd.DataFrame([dict(**{field: v}, seed=s, status="ok", mono_per_feature=m, final_loss=lo, mean_bias=b,
                            mono_per_neuron=m / 2, features_covered=m, dead_neurons=0.0, positive_bias_neurons=0.0,
                            false_mono=0.0, **fixed)
                       for s in (0, 1) for v, m, lo, b in rows])
    return SimpleNamespace(instances=df)


@pytest.mark.parametrize("rows, verdict", [
    ([(0.001, 0.0, 1.0, 0.1), (0.01, 0.5, 0.9, -0.3), (0.03, 1.0, 0.9, -0.8)], "agrees"),
    ([(0.001, 0.0, 1.0, 0.1), (0.01, 0.1, 0.9, -0.3), (0.03, 0.3, 1.5, -0.8)], "partly"),
    ([(0.001, 0.3, 1.0, 0.1), (0.01, 0.2, 0.9, -0.3), (0.03, 0.1, 0.9, -0.8)], "disagrees"),
    ([(0.001, 0.0, 1.0, 0.1), (0.01, 0.0, 0.9, -0.3), (0.03, 0.0, 0.9, -0.8)], "inconclusive"),
])
def test_judge_lr(rows, verdict):
    v = rp.judge_lr(_fake("lr", rows))
    assert v["verdict"] == verdict, v["reason"]
    assert {"claim", "verdict", "reason", "numbers", "table"} <= set(v)


def test_judge_bias_moderate_optimum():
    res = {}
    for eps, best in [(1 / 16, -1.4), (1 / 64, -0.8), (1 / 256, -0.2)]:
        rows = [(b, 1.0 if b == best else 0.2, 1.0, b) for b in rp.B_BIASES]
        r = _fake("bias_offset", rows, eps=eps)
        r.instances.loc[r.instances["bias_offset"] == -2.0, "dead_neurons"] = 100.0
        res[f"B-{eps}"] = r
    v = rp.judge_bias(res)
    assert v["verdict"] == "agrees", v["reason"]
    res_bad = {k: _fake("bias_offset", [(b, 1.0 if b == 1.0 else 0.1, 1.0, b) for b in rp.B_BIASES],
                        eps=float(r.instances["eps"].iloc[0])) for k, r in res.items()}
    assert rp.judge_bias(res_bad)["verdict"] == "disagrees"


def test_judge_l1_and_neurons():
    rg1 = _fake("l1", [(1e-5, 0.1, 1.0, 0.0), (1e-3, 0.3, 1.0, 0.0), (1e-1, 0.6, 1.5, 0.0)], lr=0.005)
    assert rp.judge_l1(rg1)["verdict"] == "agrees"
    k1 = _fake("k", [(16, 0.05, 2.0, 0), (64, 0.2, 1.0, 0), (256, 0.6, 0.5, 0), (512, 0.8, 0.5, 0)], N=128)
    assert rp.judge_neurons(k1)["verdict"] in ("agrees", "partly")


def test_parse_steps():
    assert rp.parse_steps(None) == {}
    assert rp.parse_steps("4096") == {"*": 4096}
    assert rp.parse_steps("4096,B=2048") == {"*": 4096, "B": 2048}
    with pytest.raises(Exception, match="steps"):
        rp.parse_steps("B=x")
    sweeps = rp.claim_sweeps("B", "quick", 2, rp.parse_steps("4096,B=2048"))
    assert {s.base.optim.steps for s in sweeps.values()} == {2048}
    assert rp.claim_sweeps("MECH", "quick", 2, rp.parse_steps("4096,B=2048"))["LR3"].base.optim.steps == 4096


def test_lr3_variants_differ_only_in_decay():
    s = rp.claim_sweeps("LR3", "quick", 2, 4096)
    a, b = s["LR3"].base.flat(), s["LR3-rescaled"].base.flat()
    assert {k for k in a if a[k] != b[k]} == {"bias_decay"}
    assert a["bias_decay"] == pytest.approx(0.03)  # the paper's per-step decay
    assert b["bias_decay"] * 4096 == pytest.approx(0.03 * 2**17)  # the paper's cumulative pull
    assert rp.claim_sweeps("MECH", "quick", 2, 4096) == {"LR3": s["LR3"], "LR3-sqrt": s["LR3-sqrt"]}
    # B, K1 and RG1 with cut steps: decay x sqrt(2^17 / steps)
    k1 = rp.claim_sweeps("K1", "quick", 2, 4096)["K1"].base.optim
    assert k1.steps == 4096 and k1.bias_decay == pytest.approx(0.03 * (2**17 / 4096) ** 0.5)
    assert rp.claim_sweeps("RG1", "quick", 2, None)["RG1"].base.optim.bias_decay == pytest.approx(0.03)


def test_judge_opt_cell():
    def cell(lo, hi):
        return pd.DataFrame([dict(lr=lr, status="ok", mono_per_feature=m, final_loss=lo_, mean_bias=0.0)
                             for lr, m, lo_ in [(0.003, *lo), (0.03, *hi)] for _ in range(2)])
    assert rp.judge_opt_cell(cell((0.0, 1.0), (0.5, 1.0)))["effect"] == "yes"
    assert rp.judge_opt_cell(cell((0.0, 1.0), (0.5, 1.5)))["effect"] == "mono up, loss up"
    assert rp.judge_opt_cell(cell((0.0, 1.0), (0.0, 0.9)))["effect"] == "no mono"
