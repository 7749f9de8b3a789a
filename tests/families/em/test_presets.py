"""EM's presets: each Table 1 batch resolves to the paper's values at paper scale, the quick scale keeps the
ratios and the per-step bias decay, the one bias-decay rule, and OPT1's parts (every preset trains at smoke scale:
tests/config/test_presets.py).

The expected values below are written out from docs/papers.md §1.5 (Table 1) and its sweep values, not read from
families/em/presets.py.
"""

from __future__ import annotations

import math

import pytest

from toymodels.config import ConfigError
from toymodels.config.presets import PRESETS, preset
from toymodels.families.em.presets import scaled_bias_decay, with_steps

LRS = [0.001, 0.003, 0.005, 0.007, 0.01, 0.03]
BIASES = [-2.0, -1.7, -1.4, -1.1, -0.8, -0.5, -0.2, 0.1, 0.4, 0.7, 1.0]
EPSS = [2 ** -(1 + 0.4 * i) for i in range(11)]  # 2**(-linspace(1, 5, 11)) = 1/2 .. 1/32
POW10 = [1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7]
KS = [16, 32, 64, 128, 256, 512, 1024, 2048]

# batch: (task, nonlinearity, distribution, k, eps, lr, decay, bias offset, L1, swept field, swept values)
TABLE1 = {
    "LR1": ("decoder", "relu", "uniform", 1024, 1 / 64, None, 0.0, 0.0, 0.0, "lr", LRS),
    "LR2": ("decoder", "relu", "power_law", 1024, 1 / 64, None, 0.0, 0.0, 0.0, "lr", LRS),
    "LR3": ("decoder", "relu", "uniform", 1024, 1 / 64, None, 0.03, -1.0, 0.0, "lr", LRS),
    "B1": ("decoder", "relu", "uniform", 1024, 1 / 16, 0.003, 0.03, None, 0.0, "bias_offset", BIASES),
    "B2": ("decoder", "relu", "uniform", 1024, 1 / 32, 0.003, 0.003, None, 0.0, "bias_offset", BIASES),
    "B3": ("decoder", "relu", "uniform", 1024, 1 / 64, 0.003, 0.003, None, 0.0, "bias_offset", BIASES),
    "B4": ("decoder", "relu", "uniform", 1024, 1 / 128, 0.003, 0.003, None, 0.0, "bias_offset", BIASES),
    "B5": ("decoder", "relu", "uniform", 1024, 1 / 256, 0.003, 0.003, None, 0.0, "bias_offset", BIASES),
    "LR4": ("decoder", "relu", "power_law", 1024, 1 / 64, None, 0.03, -1.0, 0.0, "lr", LRS),
    "G1": ("decoder", "gelu", "uniform", 1024, 1 / 64, None, 0.03, None, 0.0, ("lr", "bias_offset"), (LRS, BIASES)),
    "E1": ("decoder", "relu", "uniform", 1024, None, 0.003, 0.03, -1.0, 0.0, "eps", EPSS),
    "E2": ("decoder", "relu", "uniform", 1024, None, 0.003, 0.01, -1.0, 0.0, "eps", EPSS),
    "E3": ("decoder", "relu", "uniform", 1024, None, 0.003, 0.003, -1.0, 0.0, "eps", EPSS),
    "E4": ("decoder", "relu", "uniform", 1024, None, 0.003, 0.001, -1.0, 0.0, "eps", EPSS),
    "K0": ("decoder", "relu", "uniform", None, 1 / 64, 0.007, 0.0, 0.0, 0.0, "k", KS[:-1]),
    "K1": ("decoder", "relu", "uniform", None, 1 / 64, 0.007, 0.03, -1.0, 0.0, "k", KS),
    "K2": ("decoder", "relu", "power_law", None, 1 / 64, 0.007, 0.03, -1.0, 0.0, "k", KS),
    "RG1": ("decoder", "relu", "uniform", 1024, 1 / 64, 0.005, 0.03, -1.0, None, "l1", POW10),
    "RP1": ("reprojector", "relu", "uniform", 1024, 1 / 64, None, 0.03, -1.0, 0.0, "lr", LRS),
    "LR5": ("abs", "relu", "uniform", 2048, 1 / 64, None, 0.03, -1.0, 0.0, "lr", LRS),
    "D1": ("abs", "relu", "uniform", 2048, 1 / 64, 0.007, None, -1.0, 0.0, "bias_decay", POW10),
}


@pytest.mark.parametrize("name", list(TABLE1))
def test_table1_batch_at_paper_scale(name):
    task, act, dist, k, eps, lr, decay, bias, l1, swept, values = TABLE1[name]
    sweep = preset(name, scale="paper")
    f = sweep.base.flat()
    assert (f["model"], f["task"], f["nonlinearity"], f["distribution"]) == ("em", task, act, dist)
    assert (f["N"], f["m"], f["batch_size"], f["steps"]) == (512, 64, 8192, 2**17)
    assert (f["optimizer"], f["schedule"]) == ("lamb", "paper_cosine")
    for field, expected in [("k", k), ("eps", eps), ("lr", lr), ("bias_decay", decay), ("bias_offset", bias),
                            ("l1", l1)]:
        if expected is not None:  # None = the swept field
            assert f[field] == pytest.approx(expected), field
    fields, vals = (swept, values) if isinstance(swept, tuple) else ((swept,), (values,))
    assert list(sweep.grid) == list(fields)
    for field, expected in zip(fields, vals):
        assert sweep.grid[field] == pytest.approx(expected), field


def test_table1_covers_every_em_batch():
    em = {n for n, p in PRESETS.items() if p.family == "em" and not p.parts}
    assert em == set(TABLE1)
    # each EM preset carries its own scaling rule: the generic Preset knows none
    assert all(p.scale_fn is not None for p in PRESETS.values() if p.family == "em")


def test_quick_scale_keeps_ratios_and_per_step_decay():
    q, p = preset("LR3", "quick"), preset("LR3", "paper")
    fq, fp = q.base.flat(), p.base.flat()
    assert (fq["N"], fq["m"], fq["k"]) == (128, 16, 256)
    assert fq["N"] / fq["m"] == fp["N"] / fp["m"] and fq["k"] / fq["N"] == fp["k"] / fp["N"]
    assert fq["eps"] == fp["eps"] and fq["bias_offset"] == fp["bias_offset"]
    # Lamb: the per-step ratio decay : 1 decides the bias balance, so the decay is not rescaled (presets docstring)
    assert fq["bias_decay"] == fp["bias_decay"]
    assert preset("D1", "quick").grid["bias_decay"] == pytest.approx(POW10)
    assert preset("K1", "quick").grid["k"] == [k // 4 for k in KS]


def test_with_steps_decay_per_step_or_cumulative():
    q = preset("LR3", "quick")
    for rule in ("per_step", "cumulative"):
        s = with_steps(q, 4096, rule)
        assert s.base.optim.steps == 4096 and s.grid == q.grid and s.name == q.name + "-s4096"
        want = q.base.optim.bias_decay * (q.base.optim.steps / 4096 if rule == "cumulative" else 1)
        assert s.base.optim.bias_decay == pytest.approx(want)
        lr = 0.01
        pull = (1 - s.base.optim.bias_decay * lr) ** (4096 / 2)
        before = (1 - q.base.optim.bias_decay * lr) ** (q.base.optim.steps / 2)  # the quick sweep's pull
        assert math.isclose(pull, before, rel_tol=0.05) == (rule == "cumulative")
    # a swept decay is scaled like the base one, from the reference given
    d1 = with_steps(preset("D1", "quick"), 2**13, "sqrt", reference_steps=2**17)
    assert d1.grid["bias_decay"] == pytest.approx([v * 4 for v in POW10])


def test_scaled_bias_decay_is_the_one_rule():
    assert scaled_bias_decay(0.03, 2**17, 2**13, "per_step") == 0.03
    assert scaled_bias_decay(0.03, 2**17, 2**13, "sqrt") == pytest.approx(0.03 * 4)
    assert scaled_bias_decay(0.03, 2**17, 2**13, "cumulative") == pytest.approx(0.03 * 16)
    assert scaled_bias_decay(0.0, 2**17, 2**13, "cumulative") == 0.0
    assert scaled_bias_decay(0.1 / 3, 2**17, 2**17, "sqrt") == 0.1 / 3  # factor 1: the value itself, unrounded
    with pytest.raises(ConfigError, match="bias decay rule"):
        scaled_bias_decay(0.03, 2**17, 2**13, "linear")


def test_opt1_parts():
    p = PRESETS["OPT1"]
    with pytest.raises(ConfigError, match="study of 8 sweeps"):
        p.config("quick")
    parts = p.sweeps("quick", seeds=2)
    assert [s.name for s in parts] == [f"{n}-quick" for n in p.part_names()]
    assert {s.base.optim.optimizer for s in parts} == {"lamb", "adam", "adamw", "sgd"}
    for s in parts:
        assert s.grid["schedule"] == ["paper_cosine", "cosine", "constant"]
        assert len(s.grid["lr"]) == 2 and s.seeds == 2 and s.base.optim.steps == 2**15
        assert s.base.run.checkpoint_every == 512
        lr3 = "-LR3-" in s.name
        assert s.base.model.bias_offset == (-1.0 if lr3 else 0.0)
        # LR3: the same per-step pull decay*lr at each lr level for every optimizer
        pulls = [s.base.optim.bias_decay * lr for lr in s.grid["lr"]]
        assert pulls == (pytest.approx([0.03 * 0.003, 0.03 * 0.03]) if lr3 else [0.0, 0.0])
        assert (s.base.data.N, s.base.model.k) == (128, 256)
    assert preset("OPT1-LR3-sgd", "paper").grid["schedule"][-1] == "warmup_cosine"
    # each optimizer its own lr range; one part by name
    adam = preset("OPT1-LR1-adam", "paper")
    assert adam.base.optim.optimizer == "adam" and max(adam.grid["lr"]) <= 1e-2
    assert preset("OPT1-LR3-lamb", "paper").grid["lr"] == [0.001, 0.003, 0.01, 0.03]

