"""checkpoints.safetensors written while training (``toymodels.results.checkpoint_stream``): the file equals safetensors' own,
a group's checkpoints never pile up in memory, and an interrupted group resumes from its partial file."""

from __future__ import annotations

import pytest
import torch
from helpers import SMALL_EM
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from toymodels.results import store
from toymodels.results.store import iter_checkpoints
from toymodels.results.checkpoint_stream import PARTIAL_NAME, CheckpointStream
from toymodels.config import SweepConfig
from toymodels.running.plan import plan
from toymodels.running.runner import run_group, state_step
from toymodels.engine.train import TrainingInterrupted, checkpoint_steps, train_group

STEPS = [0, 1, 3, 7]


def _checkpoint(step: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(step)
    return {"W1": torch.randn(2, 5, 3, generator=g), "b1": torch.randn(2, 5, generator=g).double(),
            "alive": torch.rand(2, generator=g) > 0.5, "half": torch.randn(3, generator=g).bfloat16(),
            "count": torch.randint(0, 9, (2,), generator=g)}


def _flat(steps) -> dict[str, torch.Tensor]:
    return {f"{s}/{k}": v for s in steps for k, v in _checkpoint(s).items()}


def test_streamed_file_holds_what_save_file_writes(tmp_path):
    final = tmp_path / "checkpoints.safetensors"
    stream = CheckpointStream(final, STEPS, metadata={"run_ids": "r0000,r0001"})
    for step in [3, 0, 7, 1]:  # any order
        stream.write(step, _checkpoint(step))
        assert (tmp_path / PARTIAL_NAME).exists() and not final.exists()
    stream.finish()
    assert not (tmp_path / PARTIAL_NAME).exists()
    save_file(_flat(STEPS), str(tmp_path / "reference.safetensors"), metadata={"run_ids": "r0000,r0001"})
    got, want = load_file(str(final)), load_file(str(tmp_path / "reference.safetensors"))
    assert got.keys() == want.keys()
    for key in want:
        assert got[key].dtype == want[key].dtype and torch.equal(got[key], want[key]), key
    with safe_open(str(final), framework="pt") as f:
        assert f.metadata() == {"run_ids": "r0000,r0001"}
    assert [step for step, _ in iter_checkpoints(final)] == STEPS
    assert all(torch.equal(t["W1"], _checkpoint(s)["W1"]) for s, t in iter_checkpoints(final))


def test_a_missing_step_or_a_changed_shape_is_refused(tmp_path):
    stream = CheckpointStream(tmp_path / "checkpoints.safetensors", STEPS)
    stream.write(0, _checkpoint(0))
    with pytest.raises(ValueError, match="step 2 is not a checkpoint step"):
        stream.write(2, _checkpoint(2))
    wrong = _checkpoint(1) | {"W1": torch.zeros(2, 5, 4)}
    with pytest.raises(ValueError, match="'W1' at step 1: shape"):
        stream.write(1, wrong)
    with pytest.raises(RuntimeError, match=r"steps \[1, 3, 7\] were never written"):
        stream.finish()
    stream.close()
    assert not (tmp_path / "checkpoints.safetensors").exists()


def test_a_resumed_stream_keeps_what_was_written_before(tmp_path):
    final = tmp_path / "checkpoints.safetensors"
    first = CheckpointStream(final, STEPS)
    for step in [0, 1]:
        first.write(step, _checkpoint(step))
    first.sync()
    first.close()  # interrupted after step 2
    second = CheckpointStream(final, STEPS, resume_step=2)
    for step in [3, 7]:
        second.write(step, _checkpoint(step))
    second.finish()
    got = load_file(str(final))
    assert all(torch.equal(got[k], v) for k, v in _flat(STEPS).items())


def test_resuming_without_the_partial_file_or_with_another_layout_is_refused(tmp_path):
    final = tmp_path / "checkpoints.safetensors"
    with pytest.raises(RuntimeError, match="missing, so the checkpoints before step 2 are lost"):
        CheckpointStream(final, STEPS, resume_step=2).write(3, _checkpoint(3))
    first = CheckpointStream(final, STEPS)
    first.write(0, _checkpoint(0))
    first.close()
    with pytest.raises(RuntimeError, match="laid out for other checkpoints"):
        CheckpointStream(final, [0, 1, 3, 7, 15], resume_step=2).write(3, _checkpoint(3))


def test_train_group_hands_checkpoints_on_and_keeps_none():
    cfg = SMALL_EM.replace(steps=64)
    got: dict[int, dict[str, torch.Tensor]] = {}
    states = []
    res = train_group([cfg], on_checkpoint=lambda s, t: got.setdefault(s, {k: v.clone() for k, v in t.items()}),
                      on_state=states.append, state_every_s=0.0)
    assert res.checkpoints == {} and states and all(st.checkpoints == {} for st in states)
    kept = train_group([cfg]).checkpoints
    assert sorted(got) == sorted(kept) == checkpoint_steps(64)
    assert all(torch.equal(got[s][k], kept[s][k]) for s in kept for k in kept[s])


SWEEP = SweepConfig(name="stream", base=SMALL_EM.replace(steps=128, checkpoint_every=32), grid={"lr": [0.01, 0.03]})


def _interrupted(folder, at: int):
    """Run the sweep's one group until step ``at``, where it is interrupted (its state saved)."""
    gid, insts = next(iter(plan(SWEEP).items()))
    store.write_json(folder / "sweep.json", store.sweep_meta(SWEEP))
    left = iter(range(at, 0, -1))
    with pytest.raises(TrainingInterrupted):
        run_group(folder, gid, insts, should_stop=lambda: next(left) <= 1)
    assert state_step(folder, gid) == at
    return gid, insts


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("stream") / "reference"
    gid, insts = next(iter(plan(SWEEP).items()))
    run_group(folder, gid, insts)
    return store.read_tensors(store.group_dir(folder, gid) / "checkpoints.safetensors")


@pytest.mark.parametrize("how", ["as left", "partial file gone", "state of an earlier version"])
def test_an_interrupted_group_finishes_with_the_uninterrupted_checkpoints(how, tmp_path, uninterrupted):
    folder = tmp_path / "run"
    gid, insts = _interrupted(folder, at=40)  # after checkpoints 0, 1, 3, 7, 15, 31
    gdir = store.group_dir(folder, gid)
    if how == "partial file gone":  # its checkpoints are lost: the group trains again from step 0
        (gdir / PARTIAL_NAME).unlink()
        assert state_step(folder, gid) is None
    if how == "state of an earlier version":  # it carried the checkpoints itself, and there was no partial file
        state = store.read_tensors(gdir / "state.safetensors")
        for step, tensors in iter_checkpoints(gdir / PARTIAL_NAME):
            if step < 40:
                state.update({f"ckpt/{step}/{k}": v for k, v in tensors.items()})
        (gdir / PARTIAL_NAME).unlink()
        store.write_tensors(gdir / "state.safetensors", state)
        assert state_step(folder, gid) == 40
    run_group(folder, gid, insts)
    got = store.read_tensors(gdir / "checkpoints.safetensors")
    assert got.keys() == uninterrupted.keys()
    assert all(torch.equal(got[k], uninterrupted[k]) for k in got)
    assert not (gdir / PARTIAL_NAME).exists() and not (gdir / "state.safetensors").exists()


def test_state_files_no_longer_carry_checkpoints(tmp_path):
    folder = tmp_path / "run"
    gid, _ = _interrupted(folder, at=40)
    state = store.read_tensors(store.group_dir(folder, gid) / "state.safetensors")
    assert not [k for k in state if k.startswith("ckpt/")]
