"""Configs in a notebook: ``SweepConfig.replace`` as ``ExperimentConfig.replace`` works, and every config shows
itself as HTML (the changed values first, every field folded below)."""

from __future__ import annotations

import re

import pytest

import toymodels as tm
from toymodels.config import ConfigError, ExperimentConfig, SweepConfig
from toymodels.config.display import rows


def test_sweep_replace_sets_base_fields_and_its_own():
    sweep = tm.preset("LR1", scale="smoke")
    again = sweep.replace(steps=64, seeds=2, name="LR1-short")
    assert (again.name, again.seeds, again.base.optim.steps, again.grid) == ("LR1-short", 2, 64, sweep.grid)
    assert sweep.base.optim.steps != 64 and sweep.seeds == 1  # frozen: the original is unchanged
    fixed = sweep.replace(lr=0.01)  # a swept field set on the base leaves the grid, as --set does
    assert fixed.grid == {} and fixed.base.optim.lr == 0.01 and fixed.size() == 1
    assert sweep.replace(grid={"k": [8, 16]}).swept_fields() == ["k"]
    with pytest.raises(ConfigError, match=r"^field 'lr': .*\(got -1\)$"):
        sweep.replace(lr=-1)
    with pytest.raises(ConfigError, match=r"^field 'seeds'"):
        sweep.replace(seeds=0)
    with pytest.raises(ConfigError, match="unknown field 'lrr'"):
        sweep.replace(lrr=0.1)


def changed(page: str) -> list[tuple[str, str]]:
    """(section, field) of the bold rows above the folded table."""
    return re.findall(r"<tr><td>([^<]*)</td><td><b>([^<]*)</b>", page.split("<details>")[0])


def test_every_config_shows_its_changed_values_then_every_field():
    cfg = ExperimentConfig.from_flat({"model": "sae", "N": 10, "m": 4, "sae_arch": "topk", "sae_width": 12,
                                      "sae_k": 2, "optimizer": "adam", "schedule": "constant", "lr": 0.25})
    page = cfg._repr_html_()
    assert changed(page) == [("data", "N"), ("model", "model"), ("model", "m"), ("optim", "optimizer"),
                             ("optim", "lr"), ("optim", "schedule"), ("sae", "sae_arch"), ("sae", "sae_width"),
                             ("sae", "sae_k")]
    every = rows(cfg)
    assert f"all {len(every)} fields" in page and len(every) == len(cfg.flat())  # every flat field, once
    assert {name for _, name, _, _ in every} == set(cfg.flat())
    sweep = SweepConfig(name="s", base=cfg, grid={"lr": [0.1, 0.2]}, seeds=3)
    page = sweep._repr_html_()
    assert page.startswith("<div><b>SweepConfig</b>: 6 instances")
    assert ("", "grid") in changed(page) and ("base.optim", "lr") in changed(page) and "lr: [0.1, 0.2]" in page
    assert "every field at its default" in ExperimentConfig()._repr_html_()
