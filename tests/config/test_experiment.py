"""Configs: flat names, JSON round trip, sweeps, and one-line errors naming the field."""

import json

import pytest
from pydantic import ValidationError

from toymodels.config import FIELDS, ConfigError, ExperimentConfig, SweepConfig, parse_assignment


def test_flat_names_match_design():
    design = ["model", "task", "N", "m", "k", "eps", "distribution", "nonlinearity", "bias_offset", "bias_decay",
              "l1", "optimizer", "lr", "schedule", "batch_size", "steps", "seed", "device"]
    assert set(design) <= set(FIELDS)


def test_json_round_trip_and_frozen():
    sweep = SweepConfig(name="s", base=ExperimentConfig.from_flat({"N": 64, "eps": "1/32"}),
                        grid={"lr": ["0.001", 0.01]}, seeds=2)
    again = SweepConfig.from_json(sweep.to_json())
    assert again == sweep
    assert again.base.data.eps == 1 / 32
    assert again.grid["lr"] == [0.001, 0.01]
    with pytest.raises(ValidationError, match="frozen"):
        sweep.base.data.N = 3


def test_sweep_expansion_order_and_seeds():
    sweep = SweepConfig(base=ExperimentConfig(), grid={"lr": [0.1, 0.2], "k": [4, 8]}, seeds=3)
    inst = sweep.instances()
    assert len(inst) == 12
    assert [(c.optim.lr, c.model.k, c.run.seed) for c in inst[:4]] == [(0.1, 4, 0), (0.1, 4, 1), (0.1, 4, 2),
                                                                      (0.1, 8, 0)]
    assert sweep.swept_fields() == ["lr", "k", "seed"]


@pytest.mark.parametrize("values, field, words", [
    ({"foo": 1}, "foo", ["unknown field", "lr"]),
    ({"lr": "abc"}, "lr", ["valid number"]),
    ({"eps": 0}, "eps", ["greater than 0"]),
    ({"eps": 1.5}, "eps", ["less than or equal to 1"]),
    ({"k": 0}, "k", ["greater than or equal to 1"]),
    ({"optimizer": "rmsprop"}, "optimizer", ["'lamb'", "'adam'", "'adamw'", "'sgd'"]),
    ({"schedule": "step"}, "schedule", ["'paper_cosine'", "'warmup_cosine'"]),
    ({"task": "sort"}, "task", ["'decoder'", "'reprojector'", "'abs'"]),
    ({"device": "tpu"}, "device", ["cpu", "cuda"]),
])
def test_errors_name_field_and_allowed_values(values, field, words):
    with pytest.raises(ConfigError) as err:
        ExperimentConfig.from_flat(values)
    msg = str(err.value)
    assert "\n" not in msg
    assert f"'{field}'" in msg
    for w in words:
        assert w in msg


def test_grid_values_validated_up_front():
    with pytest.raises(ValueError, match="'eps'"):
        SweepConfig(grid={"eps": [0.1, 2.0]})
    with pytest.raises(ValueError, match="unknown field 'nope'"):
        SweepConfig(grid={"nope": [1]})


def test_config_file_toml(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('seeds = 2\nN = 64\neps = "1/16"\n[grid]\nlr = [0.001, 0.01]\n')
    sweep = SweepConfig.from_file(path)
    assert sweep.name == "mine" and sweep.seeds == 2 and sweep.base.data.eps == 1 / 16
    assert len(sweep.instances()) == 4
    path.write_text("colour = 3\n")
    with pytest.raises(ConfigError, match="unknown field 'colour'"):
        SweepConfig.from_file(path)


def test_parse_assignment():
    assert parse_assignment("lr=0.1") == ("lr", "0.1")
    with pytest.raises(ConfigError, match="unknown field 'lrr'"):
        parse_assignment("lrr=0.1")


def test_flat_dump_round_trips_through_json():
    cfg = ExperimentConfig.from_flat({"N": 64, "eps": "1/32", "model": "tms", "importance_decay": 0.9})
    flat = json.loads(json.dumps(cfg.flat()))
    assert set(flat) == set(FIELDS)
    assert ExperimentConfig.from_flat(flat) == cfg


def test_model_must_be_a_registered_family():
    with pytest.raises(ConfigError, match=r"field 'model': must be one of em, tms, quadratic\b.* \(got 'mlp'\)"):
        ExperimentConfig.from_flat({"model": "mlp"})


def test_a_sweep_json_of_the_earlier_layout_reads_back_with_each_field_in_its_family_section():
    """Before the families owned their sections, TMS's fields sat under ``model`` and the quadratic model's under
    ``data``; such a stored config reads back with the same flat values."""
    cfg = ExperimentConfig.from_flat({"model": "tms", "N": 5, "m": 2, "k": 1, "tms_variant": "hidden_relu",
                                      "init_std": 0.05})
    stored = cfg.model_dump()
    tms = stored.pop("tms")
    stored["model"].update(tms)
    stored["data"].update(stored.pop("quadratic"))
    again = ExperimentConfig.model_validate(stored)
    assert again == cfg and again.flat() == cfg.flat()


def test_an_unknown_config_section_is_refused_in_one_line():
    with pytest.raises(ConfigError, match=r"unknown config section 'nope'; sections: data, model, task"):
        SweepConfig.from_dict({"base": {"data": {"N": 8}, "nope": {}}})
