"""Property: any config or sweep file a user may write (valid values, hostile ones, unknown keys, wrong types) either
validates and trains one step into a complete results folder, or is refused in one line (ConfigError; exit 2 from the
command line) before anything is created. Hypothesis draws them, derandomized so CI sees the same examples."""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from pathlib import Path

import pytest
import torch
from helpers import need_extra
from typer.testing import CliRunner

import toymodels as tm
from toymodels.cli import app
from toymodels.config import ConfigError

hypothesis = need_extra("hypothesis", "test")
st = hypothesis.strategies
given, settings, HealthCheck = hypothesis.given, hypothesis.settings, hypothesis.HealthCheck

HOSTILE = st.sampled_from([0, -1, 1.5, True, "x", "", None, [], {}, float("nan"), float("inf"), -float("inf"),
                           10**30, "10**400", "1/0", "9" * 50])
SMALL = st.integers(1, 12)


def choice(*good: str):
    """One of ``good`` mostly; a misspelling sometimes."""
    return st.sampled_from([*good * 4, "", "Adam", good[0] + "x", good[0].upper()])


#: field -> what a user might set it to: mostly good values, sometimes anything
FIELDS = {
    "model": choice("em", "tms", "quadratic"),
    "N": SMALL, "m": st.integers(1, 6), "k": SMALL,
    "eps": st.floats(1e-3, 1.0) | st.sampled_from(["1/64", "2**-3", 1e-300, 2.0]),
    "lr": st.floats(1e-4, 1.0) | st.sampled_from(["1/100", "10**-2", 1e308]),
    "optimizer": choice("lamb", "adam", "adamw", "sgd"),
    "schedule": choice("paper_cosine", "cosine", "constant", "warmup_cosine"),
    "task": choice("decoder", "reprojector", "abs"),
    "nonlinearity": choice("relu", "gelu", "solu"),
    "distribution": choice("uniform", "power_law"),
    "batch_size": st.integers(1, 8), "seed": st.integers(0, 2**40),
    "bias_offset": st.floats(-1, 1), "l1": st.floats(0, 1), "momentum": st.floats(0, 0.99),
    "threads": st.integers(0, 2) | st.just(10**5), "sampler": choice("auto", "generator", "counter"),
    "checkpoint_every": st.integers(0, 3), "importance_decay": st.floats(0.1, 1.0),
}
TYPOS = st.sampled_from(["lrr", "stpes", "Eps", "optimiser", "batchsize", "n", "", "grid2", "base.lr"])


@st.composite
def sweeps(draw) -> dict:
    """A sweep as a file holds it: flat fields (steps 1), maybe a grid of two values, seeds, a name, a typo."""
    raw: dict = {"steps": 1}
    for name in draw(st.lists(st.sampled_from(sorted(FIELDS)), max_size=6, unique=True)):
        raw[name] = draw(HOSTILE) if draw(st.integers(0, 14)) == 0 else draw(FIELDS[name])
    raw.setdefault("N", 8), raw.setdefault("m", 2), raw.setdefault("k", 8), raw.setdefault("batch_size", 4)
    if draw(st.booleans()):
        field = draw(st.sampled_from(["lr", "seed", "k", "optimizer", "steps", "eps"]))
        values = FIELDS.get(field, st.just(1))
        raw["grid"] = {field: draw(st.lists(values, min_size=1, max_size=2, unique=True)
                                   if draw(st.integers(0, 7)) else st.lists(values | HOSTILE, max_size=2))}
    if draw(st.integers(0, 4)) == 0:
        raw["seeds"] = draw(st.integers(1, 2) if draw(st.booleans()) else st.integers(-1, 0) | HOSTILE)
    if draw(st.integers(0, 7)) == 0:
        raw["name"] = draw(st.sampled_from(["ok", "a_b-1.2", "a b", "..", "é", "x" * 300, "a/b", 3]))
    if draw(st.integers(0, 9)) == 0:
        raw[draw(TYPOS)] = draw(FIELDS["lr"] | HOSTILE)
    return raw


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if value != value else ("inf" if value > 0 else "-inf")
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string (\uXXXX escapes included)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value if v is not None) + "]"
    return "{}"


def toml_text(raw: dict) -> str:
    """``raw`` in TOML (a None is left out: TOML has none); the grid as a table."""
    lines = [f"{json.dumps(k)} = {toml_value(v)}" for k, v in raw.items() if k != "grid" and v is not None]
    if isinstance(raw.get("grid"), dict):
        lines += ["[grid]"] + [f"{json.dumps(k)} = {toml_value(v)}" for k, v in raw["grid"].items()]
    return "\n".join(lines) + "\n"


def entries(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one step of a tiny model; the test machine's cores are shared
    yield
    torch.set_num_threads(threads)


@settings(max_examples=50, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(raw=sweeps(), suffix=st.sampled_from([".toml", ".json"]), stem=st.sampled_from(["s", "my run é"]))
def test_a_sweep_file_trains_one_step_or_is_refused_in_one_line_before_anything_is_made(raw, suffix, stem, tmp_path,
                                                                                         one_thread):
    root = Path(tempfile.mkdtemp(dir=tmp_path))
    try:
        path = root / f"{stem}{suffix}"
        path.write_text(toml_text(raw) if suffix == ".toml" else json.dumps(raw))
        before = entries(root)
        res = CliRunner().invoke(app, ["run", str(path), "--out", str(root / "out"), "--no-progress", "--no-report"])
        assert "Traceback" not in res.output, res.output
        hypothesis.event("trained" if res.exit_code == 0 else "refused: " + res.stderr[7:50])
        if res.exit_code == 0:
            results = tm.load(root / "out")
            assert results.complete and len(results.instances) == results.sweep.size() >= 1
            assert set(results.instances["steps"]) == {1}
        else:
            assert res.exit_code == 2, (res.exit_code, res.stderr, raw)
            lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
            assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
            assert entries(root) == before  # nothing made: no results folder, no stray file
    finally:
        shutil.rmtree(root, ignore_errors=True)


@settings(max_examples=40, derandomize=True, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(raw=sweeps())
def test_tm_run_of_a_dict_trains_one_step_or_raises_a_one_line_config_error_before_anything_is_made(raw, tmp_path,
                                                                                                 one_thread):
    root = Path(tempfile.mkdtemp(dir=tmp_path))
    try:
        try:
            results = tm.run(raw, out=root / "out", progress=False, report=False)
        except ConfigError as err:
            hypothesis.event("refused: " + str(err)[:40])
            assert "\n" not in str(err) and str(err).strip()
            assert entries(root) == set()
        else:
            hypothesis.event("trained")
            assert results.complete and set(results.instances["steps"]) == {1}
    finally:
        shutil.rmtree(root, ignore_errors=True)
