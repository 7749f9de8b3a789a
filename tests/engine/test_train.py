"""The training loop: batched equals separate, determinism, divergence guard, checkpoints, resumable state."""

import pytest
import torch
from helpers import SMALL_EM, assert_same_instance

from toymodels.engine.train import BLOWUP_FACTOR, checkpoint_steps, logged_steps, train_group

BASE = SMALL_EM


@pytest.mark.parametrize("extra", [{}, {"task": "abs"}, {"task": "reprojector", "nonlinearity": "gelu"},
                                   {"optimizer": "adamw", "schedule": "warmup_cosine", "l1": 1e-3}])
def test_batched_equals_separate(extra):
    cfgs = [
        BASE.replace(lr=0.003, seed=0, **extra),
        BASE.replace(lr=0.03, bias_offset=-1.0, bias_decay=0.03, seed=1, **extra),
        BASE.replace(lr=0.01, bias_offset=0.5, seed=2, **extra),
        BASE.replace(lr=0.005, bias_decay=0.3, seed=3, eps=1 / 4, **extra),
    ]
    together = train_group(cfgs)
    assert together.losses.shape == (4, len(logged_steps(256)))
    for i, cfg in enumerate(cfgs):
        assert_same_instance(together, train_group([cfg]), i, 0)


def test_same_seed_bit_identical_different_seed_differs():
    a = train_group([BASE, BASE.replace(seed=7)])
    b = train_group([BASE, BASE.replace(seed=7)])
    for name in a.final:
        assert torch.equal(a.final[name], b.final[name])
    assert torch.equal(a.losses, b.losses)
    assert not torch.equal(a.final["W1"][0], a.final["W1"][1])
    assert not torch.equal(a.losses[0], a.losses[1])


def test_diverging_instance_is_recorded_and_spoils_nothing():
    sgd = BASE.replace(optimizer="sgd")
    good = [sgd.replace(lr=0.01), sgd.replace(lr=0.02, seed=1)]
    bad = sgd.replace(lr=1e3, seed=2)
    mixed = train_group([good[0], bad, good[1]])
    alone = train_group(good)
    assert mixed.status == ["ok", "diverged", "ok"]
    step = int(mixed.diverged_at[1])
    assert 0 <= step < 256
    # frozen from then on: finite parameters, NaN loss log after the divergence
    assert all(bool(torch.isfinite(t[1]).all()) for t in mixed.final.values())
    assert torch.isnan(mixed.losses[1, step // 16 + 1:]).all()
    # the other instances are exactly what a sweep without it gives
    for i, j in ((0, 0), (2, 1)):
        for name in mixed.final:
            assert torch.equal(mixed.final[name][i], alone.final[name][j])
        assert torch.equal(mixed.losses[i], alone.losses[j])


def test_a_finite_blow_up_is_caught_and_spoils_nothing():
    # LAMB's steps are bounded relative to the weights, so lr=1e6 keeps every number finite while the loss explodes
    good = [BASE.replace(lr=0.01), BASE.replace(lr=0.03, seed=1)]
    blow_up = BASE.replace(lr=1e6, seed=2)
    mixed = train_group([good[0], blow_up, good[1]])
    alone = train_group(good)
    assert mixed.status == ["ok", "diverged", "ok"]
    assert all(bool(torch.isfinite(t[1]).all()) for t in mixed.final.values())
    step = int(mixed.diverged_at[1])
    logged = mixed.losses[1, : step // 16 + 1]
    assert (logged[torch.isfinite(logged)] <= BLOWUP_FACTOR * mixed.losses[1, 0]).all()  # step 0 is positive here
    for i, j in ((0, 0), (2, 1)):
        assert torch.equal(mixed.losses[i], alone.losses[j])
        for name in mixed.final:
            assert torch.equal(mixed.final[name][i], alone.final[name][j])


def test_healthy_runs_at_batch_size_one_are_not_frozen():
    """Seeds whose first sample with a feature is tiny: the rule on one step's loss against the first batch's froze
    these five healthy runs (TMS, adam, lr 1e-3, batch size 1); the window against the initial model's largest
    single-sample loss keeps them."""
    from toymodels.config import ExperimentConfig

    cfgs = [ExperimentConfig.from_flat({"model": "tms", "N": 5, "m": 2, "k": 1, "eps": 0.05, "batch_size": 1,
                                        "steps": 300, "optimizer": "adam", "lr": 1e-3, "schedule": "constant",
                                        "seed": s}) for s in (9, 107, 194, 215, 278)]
    assert train_group(cfgs).status == ["ok"] * 5


def test_a_blow_up_caught_mid_window_resumes_to_the_same_bits():
    cfgs = [BASE.replace(steps=96), BASE.replace(lr=1e6, seed=2, steps=96)]
    full = train_group(cfgs)
    assert full.status == ["ok", "diverged"] and int(full.diverged_at[1]) % 16 == 15  # at a window's end
    states = []
    train_group(cfgs, on_state=states.append, state_every_s=-1)
    mid = states[8]  # step 9: inside the first window
    assert mid.step % 16 and mid.blowup_window is not None
    resumed = train_group(cfgs, resume=mid)
    assert torch.equal(full.diverged_at, resumed.diverged_at)
    torch.testing.assert_close(full.losses, resumed.losses, rtol=0, atol=0, equal_nan=True)  # frozen: NaN logs
    for name in full.final:
        assert torch.equal(full.final[name], resumed.final[name])


def test_checkpoints_at_powers_of_two_and_final():
    assert checkpoint_steps(256) == [0, 1, 3, 7, 15, 31, 63, 127, 255]
    assert checkpoint_steps(100) == [0, 1, 3, 7, 15, 31, 63, 99]
    res = train_group([BASE.replace(steps=100)])
    assert sorted(res.checkpoints) == checkpoint_steps(100)
    assert torch.equal(res.checkpoints[99]["W1"], res.final["W1"])


def test_checkpoint_every_adds_peaks_and_troughs_without_changing_training():
    # paper_cosine has its lr peaks at t = 1023 mod 1024 and troughs at 511 mod 1024: checkpoint_every=512 keeps both
    assert checkpoint_steps(3072, every=512) == [0, 1, 3, 7, 15, 31, 63, 127, 255, 511, 1023, 1535, 2047, 2559, 3071]
    plain = train_group([BASE.replace(steps=96)])
    extra = train_group([BASE.replace(steps=96, checkpoint_every=40)])
    assert sorted(extra.checkpoints) == [0, 1, 3, 7, 15, 31, 39, 63, 79, 95]
    assert torch.equal(plain.losses, extra.losses)
    for step in plain.checkpoints:
        assert torch.equal(plain.checkpoints[step]["W1"], extra.checkpoints[step]["W1"])


def test_bias_decay_only_in_first_half():
    # lr tiny so the gradient barely moves b; decay is large and visible
    cfg = BASE.replace(lr=1e-6, bias_decay=5e4, bias_offset=1.0, schedule="constant", steps=64)
    res = train_group([cfg])
    b = {s: res.checkpoints[s]["b1"][0] for s in res.checkpoints}
    # factor (1 - 5e4 * 1e-6) = 0.95 per step for steps 0..31, then none
    ratio = b[31].mean() / b[15].mean()
    assert float(ratio) == pytest.approx(0.95 ** 16, rel=1e-3)
    assert float(b[63].mean() / b[31].mean()) == pytest.approx(1.0, abs=1e-3)


def test_resume_from_state_is_bit_identical():
    cfgs = [BASE, BASE.replace(lr=0.01, seed=1, bias_decay=0.03)]
    full = train_group(cfgs)
    states = []
    train_group(cfgs, on_state=states.append, state_every_s=-1)  # a state after every step
    mid = states[100]
    assert mid.step == 101
    resumed = train_group(cfgs, resume=mid)
    for name in full.final:
        assert torch.equal(full.final[name], resumed.final[name])
    assert torch.equal(full.losses, resumed.losses)
    assert sorted(resumed.checkpoints) == sorted(full.checkpoints)


@pytest.mark.parametrize("extra", [{}, {"task": "abs"}, {"model": "tms", "N": 8, "m": 3, "k": 1}])
def test_counter_sampler_keeps_group_equal_to_alone_and_resumes_from_the_step(extra):
    cfgs = [BASE.replace(sampler="counter", steps=96, **extra),
            BASE.replace(sampler="counter", steps=96, seed=1, lr=0.01, eps=1 / 4, **extra)]
    full = train_group(cfgs)
    for i, cfg in enumerate(cfgs):
        alone = train_group([cfg])
        assert all(torch.equal(full.final[n][i], alone.final[n][0]) for n in full.final)
    states = []
    train_group(cfgs, on_state=states.append, state_every_s=-1)
    assert states[40].rng == []  # nothing but the step to carry
    resumed = train_group(cfgs, resume=states[40])
    assert all(torch.equal(full.final[n], resumed.final[n]) for n in full.final)
    assert torch.equal(full.losses, resumed.losses)
    generator = train_group([c.replace(sampler="generator") for c in cfgs])
    assert any(not torch.equal(generator.final[n], full.final[n]) for n in full.final)  # other batches


def test_counter_sampler_is_refused_where_it_cannot_draw_the_inputs():
    from toymodels.config import ConfigError, ExperimentConfig

    with pytest.raises((ConfigError, ValueError), match="field 'sampler'"):
        ExperimentConfig.from_flat({"model": "quadratic", "sampler": "counter"})
    with pytest.raises((ConfigError, ValueError), match="field 'sampler'"):
        BASE.replace(sampler="counter", firing="exclusive", feature_group_size=2)


def test_bfloat16_matmuls_keep_float32_weights_and_the_group_equal_to_alone():
    cfgs = [BASE.replace(dtype="bfloat16", steps=128), BASE.replace(dtype="bfloat16", steps=128, seed=1, lr=0.01)]
    bf16 = train_group(cfgs)
    f32 = train_group([c.replace(dtype="float32") for c in cfgs])
    assert all(v.dtype == torch.float32 for v in bf16.final.values())
    assert not torch.equal(bf16.final["W1"], f32.final["W1"])  # the products really ran in bf16
    # bf16 keeps 8 bits of mantissa: the same training to a few percent of the loss
    torch.testing.assert_close(bf16.losses[:, -4:], f32.losses[:, -4:], rtol=0.05, atol=1e-3)
    alone = train_group(cfgs[1:])
    assert all(torch.equal(bf16.final[n][1], alone.final[n][0]) for n in bf16.final)


def test_tf32_is_refused_off_cuda():
    with pytest.raises(ValueError, match="field 'dtype'"):
        BASE.replace(dtype="tf32")
