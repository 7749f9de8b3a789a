"""GroupFill: a group's batches from per-instance generators, computed together, equal to filling instance by
instance to the bit (and leave every generator where the one-instance fills leave it)."""

from __future__ import annotations

import pytest
import torch

from toymodels.engine import data
from toymodels.config import ExperimentConfig
from toymodels.families import get_family
from toymodels.engine.group_sampling import GroupFill

CASES = {
    "quick size": {"N": 128, "m": 16, "k": 256, "batch_size": 128, "eps": 1 / 64},
    "abs task": {"N": 64, "m": 16, "k": 64, "batch_size": 32, "eps": 1 / 16, "task": "abs"},
    "dense eps": {"N": 32, "m": 8, "k": 32, "batch_size": 16, "eps": 0.5},
    "power law": {"N": 64, "m": 8, "k": 32, "batch_size": 32, "eps": 1 / 16, "distribution": "power_law"},
    "every feature": {"N": 16, "m": 4, "k": 8, "batch_size": 8, "eps": 1.0},
}


def _samplers(flat: dict, seeds=range(5)):
    cfgs = [ExperimentConfig.from_flat({**flat, "seed": s}) for s in seeds]
    family = get_family(cfgs[0].model.model)
    return [family.sampler(c, torch.device("cpu")) for c in cfgs], family.input_size(cfgs[0])


@pytest.mark.parametrize("case", CASES)
def test_group_fill_equals_filling_each_instance(case):
    alone, size = _samplers(CASES[case])
    together, _ = _samplers(CASES[case])
    fill = GroupFill(together)
    assert fill.batched == (case in ("quick size", "abs task"))  # the others: dense draws, one by one
    v_alone = torch.zeros(5, alone[0].batch, size)
    v_together = torch.full_like(v_alone, 7.0)  # anything there is overwritten
    for step in range(6):
        for i, s in enumerate(alone):
            s.fill(v_alone[i])
        fill.fill(v_together, step)
        assert torch.equal(v_alone, v_together)
    assert all(torch.equal(a.get_state(), b.get_state()) for a, b in zip(alone, together))


def test_a_draw_that_runs_short_continues_as_alone(monkeypatch):
    monkeypatch.setattr(data, "gap_draws", lambda total, p: 3)  # every draw runs short, many times
    alone, size = _samplers(CASES["quick size"], seeds=range(3))
    together, _ = _samplers(CASES["quick size"], seeds=range(3))
    v_alone, v_together = torch.zeros(3, 128, size), torch.zeros(3, 128, size)
    for i, s in enumerate(alone):
        s.fill(v_alone[i])
    GroupFill(together).fill(v_together, 0)
    assert torch.equal(v_alone, v_together) and v_alone.count_nonzero() > 0
