"""Presets, the generic part: the registry (one preset per name, unknown names listed), a preset's default scaling,
one part of a multi-part preset by name, and every registered preset trains at smoke scale. Each family's own
presets are tested with the family (tests/families/em/test_presets.py for Table 1 and OPT1)."""

from __future__ import annotations

import pytest

from toymodels.config import ConfigError, SweepConfig
from toymodels.config.presets import PRESETS, SCALES, Preset, preset, presets, register_preset, scaled, thin_grid
from toymodels.running.sweep import run_sweep


@pytest.fixture
def toy_preset():
    p = register_preset(Preset(name="TOY-test", summary="a preset defined in a test", grid={"lr": [1, 2, 3, 4, 5]},
                               base=dict(model="tms", N=4, m=2, k=1, steps=8, batch_size=8)))
    yield p
    PRESETS.unregister(p.name)


def test_registry_refuses_a_second_preset_and_lists_the_known_ones(toy_preset):
    with pytest.raises(ConfigError, match="preset 'TOY-test' is already registered"):
        register_preset(toy_preset)
    with pytest.raises(ConfigError, match=r"unknown preset 'nope'; available: LR1, .*, TOY-test$"):
        preset("nope")
    assert presets()[-1] is toy_preset and PRESETS["TOY-test"] is toy_preset
    assert list(PRESETS)[:3] == ["LR1", "LR2", "LR3"]  # families register theirs in the families' order


def test_a_preset_without_a_scale_fn_keeps_base_and_grid_and_thins_the_grid_at_smoke_scale(toy_preset):
    assert toy_preset.family == "tms"  # the family is the base's model
    quick, smoke = preset("TOY-test", "quick", seeds=2), preset("TOY-test", "smoke")
    assert quick.name == "TOY-test-quick" and quick.seeds == 2 and quick.grid == {"lr": [1, 2, 3, 4, 5]}
    assert smoke.grid == {"lr": thin_grid([1, 2, 3, 4, 5])} == {"lr": [1, 3, 5]}
    assert (quick.base.data.N, quick.base.optim.steps) == (4, 8)
    with pytest.raises(ConfigError, match="field 'scale'"):
        preset("TOY-test", "huge")


def test_scaled_updates_the_base_and_replaces_the_grid_per_scale():
    fn = scaled({"smoke": dict(steps=2)}, grids={"quick": {"lr": [9]}})
    p = Preset(name="P", summary="", base=dict(model="tms", steps=8), grid={"lr": [1, 2, 3, 4]})
    assert fn(p, "smoke") == (dict(model="tms", steps=2), {"lr": [1, 3, 4]})
    assert fn(p, "quick") == (dict(model="tms", steps=8), {"lr": [9]})
    assert fn(p, "paper") == (dict(model="tms", steps=8), {"lr": [1, 2, 3, 4]})


def test_one_part_of_a_multi_part_preset_by_name():
    p = PRESETS["OPT1"]
    with pytest.raises(ConfigError, match="study of 8 sweeps"):
        p.config("quick")
    assert preset("OPT1-LR3-adam", "quick").name == "OPT1-LR3-adam-quick"
    assert [s.name for s in p.sweeps("smoke")] == [f"{n}-smoke" for n in p.part_names()]


def _all_smoke_sweeps() -> list[SweepConfig]:
    out = []
    for p in PRESETS.values():
        for s in p.sweeps("smoke"):
            # a few steps are enough to show that the preset resolves, trains and evaluates
            out.append(SweepConfig(name=s.name, base=s.base.replace(steps=min(s.base.optim.steps, 16)),
                                   grid=s.grid, seeds=1))
    return out


def test_every_preset_resolves_at_every_scale():
    for p in presets():
        for scale in SCALES:
            assert all(isinstance(s, SweepConfig) for s in p.sweeps(scale)), (p.name, scale)


@pytest.mark.parametrize("chunk", range(3))
def test_every_preset_runs_at_smoke_scale(tmp_path, chunk):
    sweeps = _all_smoke_sweeps()[chunk::3]
    for s in sweeps:
        res = run_sweep(s, tmp_path / s.name, progress=False)
        assert len(res.instances) == len(s.instances()), s.name
        assert res.instances["final_loss"].notna().any(), s.name
