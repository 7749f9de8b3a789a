"""A sweep never counts one instance twice: repeated grid values and seeds that overlap are refused before any
work, in one line naming the field."""

from __future__ import annotations

import pytest
from helpers import SMALL_EM
from typer.testing import CliRunner

from toymodels.cli import app, resolve_sweep
from toymodels.config import ConfigError, SweepConfig


def test_a_grid_value_given_twice_is_refused_even_when_written_differently():
    with pytest.raises(ConfigError, match=r"grid field 'lr': 0.01 is given twice"):
        SweepConfig.from_dict({"base": {"N": 32, "m": 8, "k": 48}, "grid": {"lr": [0.01, 0.003, "1/100"]}})


def test_seeds_that_overlap_the_grid_s_seeds_are_refused():
    with pytest.raises(ConfigError, match=r"field 'seed': instances 1 and 2 are the same run \(seed 2 twice\)"):
        SweepConfig.from_dict({"base": {"N": 32, "m": 8, "k": 48}, "grid": {"seed": [1, 2]}, "seeds": 2})
    assert len(SweepConfig(base=SMALL_EM, grid={"seed": [0, 2]}, seeds=2).instances()) == 4  # 0, 1, 2, 3


@pytest.mark.parametrize("args, said", [
    (["--set", "lr=0.1", "--set", "lr=0.2"], "field 'lr' is given twice (0.1 and 0.2"),
    (["--set", "lr=0.1", "--sweep", "lr=0.2,0.3"], "field 'lr' is given twice (--set and --sweep"),
    (["--sweep", "lr=0.1,0.2", "--sweep", "lr=0.3"], "field 'lr' is given twice (--set and --sweep, or two --sweep"),
    (["--device", "cpu", "--set", "device=cpu"], "field 'device' is given by both --device and --set"),
    (["--sweep", "lr=0.01,1e-2"], "grid field 'lr': 0.01 is given twice"),
])
def test_conflicting_command_line_fields_are_refused_in_one_line(args, said, tmp_path):
    res = CliRunner().invoke(app, ["run", "LR1", "--scale", "smoke", "--out", str(tmp_path / "x"), "--dry-run",
                                   *args])
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert said in res.output
    assert not (tmp_path / "x").exists()


def test_set_still_replaces_a_preset_s_grid_field():
    sweep = resolve_sweep("LR1", "smoke", ["lr=0.01"], [], None, None)
    assert "lr" not in sweep.grid and sweep.base.optim.lr == 0.01
