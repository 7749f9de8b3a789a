"""The CLI: bad input fails in one line before any work, without touching an existing folder; dry run; presets."""

import json

import pytest
import torch
from typer.testing import CliRunner

from toymodels.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def existing(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "r"
    r = runner.invoke(app, ["run", "LR1", "--scale", "smoke", "--set", "steps=32", "--out", str(out),
                            "--no-progress", "--no-report"])
    assert r.exit_code == 0, r.output
    return out


def _snapshot(folder):
    return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("args, words", [
    (["--set", "colour=red"], ["unknown field 'colour'", "lr"]),
    (["--set", "lr=fast"], ["'lr'", "number"]),
    (["--set", "eps=0"], ["'eps'", "greater than 0"]),
    (["--set", "eps=1.5"], ["'eps'", "less than or equal to 1"]),
    (["--sweep", "k=16,0"], ["'k'", "greater than or equal to 1"]),
    (["--set", "optimizer=rmsprop"], ["'optimizer'", "'lamb'", "'sgd'"]),
    (["--set", "schedule=step"], ["'schedule'", "'paper_cosine'", "'constant'"]),
    (["--set", "task=sort"], ["'task'", "'decoder'", "'abs'"]),
    (["--scale", "huge"], ["'scale'", "smoke", "paper"]),
])
def test_bad_input_one_line_no_work(existing, args, words):
    before = _snapshot(existing)
    r = runner.invoke(app, ["run", "LR1", "--scale", "smoke", "--out", str(existing), "--resume", *args])
    assert r.exit_code != 0
    lines = [ln for ln in r.output.strip().splitlines() if ln]
    assert len(lines) == 1, r.output
    for w in words:
        assert w in lines[0]
    assert _snapshot(existing) == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_fails_before_any_work(existing, tmp_path):
    before = _snapshot(existing)
    for out, extra in ((existing, ["--resume"]), (tmp_path / "new", [])):
        r = runner.invoke(app, ["run", "LR1", "--scale", "smoke", "--device", "cuda", "--out", str(out), *extra])
        assert r.exit_code != 0
        lines = [ln for ln in r.output.strip().splitlines() if ln]
        assert len(lines) == 1 and "field 'device'" in lines[0] and "device=cpu" in lines[0], r.output
    assert _snapshot(existing) == before
    assert not (tmp_path / "new").exists()


def test_unknown_preset(existing):
    r = runner.invoke(app, ["run", "NOPE", "--out", str(existing)])
    assert r.exit_code != 0 and "unknown preset 'NOPE'" in r.output and "LR1" in r.output


def test_rerun_without_resume_refuses(existing):
    before = _snapshot(existing)
    r = runner.invoke(app, ["run", "LR1", "--scale", "smoke", "--set", "steps=32", "--out", str(existing)])
    assert r.exit_code != 0 and "--resume" in r.output
    assert _snapshot(existing) == before


def test_dry_run_prints_instances_and_trains_nothing(tmp_path):
    out = tmp_path / "dry"
    r = runner.invoke(app, ["run", "LR1", "--scale", "quick", "--seeds", "2", "--sweep", "bias_offset=-1,0",
                            "--out", str(out), "--dry-run"])
    assert r.exit_code == 0, r.output
    text = r.stdout
    instances = json.loads(text[: text.rindex("]") + 1])
    assert len(instances) == 6 * 2 * 2
    assert {i["lr"] for i in instances} == {0.001, 0.003, 0.005, 0.007, 0.01, 0.03}
    assert {i["bias_offset"] for i in instances} == {-1.0, 0.0} and {i["seed"] for i in instances} == {0, 1}
    assert instances[0]["N"] == 128 and instances[0]["steps"] == 2**15
    assert "instance-steps" in r.output and not out.exists()


def test_config_file(tmp_path):
    cfg = tmp_path / "mine.toml"
    cfg.write_text('N = 16\nm = 4\nk = 8\nbatch_size = 8\nsteps = 16\n[grid]\nlr = [0.01, 0.02]\n')
    r = runner.invoke(app, ["run", str(cfg), "--out", str(tmp_path / "o"), "--no-progress", "--no-report"])
    assert r.exit_code == 0, r.output
    assert "2 instances" in r.output


def test_presets_lists_every_batch():
    r = runner.invoke(app, ["presets"])
    assert r.exit_code == 0
    for name in ["LR1", "LR3", "K1", "B1", "E4", "RG1", "RP1", "D1", "G1"]:
        assert f"\n{name} " in "\n" + r.output
    assert "quick:" in r.output and "paper:" in r.output
    # each preset names its family and shows that family's fields, not another's (no EM task on a TMS preset)
    tms = next(line for line in r.output.splitlines() if line.startswith("TMS-intro "))
    assert "[tms]" in tms
    fields = r.output.split(tms, 1)[1].splitlines()[1]
    assert "m=2" in fields and "task=" not in fields and "nonlinearity" not in fields


def test_python_dash_m_toymodels_is_the_command():
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "toymodels", "presets"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[0].startswith("LR1 ")
