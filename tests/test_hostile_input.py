"""Bad input, as a careless or hostile user types it: every case ends with ONE line naming the field or file and
what is allowed, exit code 2, no traceback, no folder created, and an existing results folder left byte-identical."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

import toymodels as tm
from toymodels.cli import app
from toymodels.config import ConfigError

SMOKE = ["LR1", "--scale", "smoke", "--no-progress", "--no-report"]


def folder_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def existing(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hostile") / "X"
    res = CliRunner().invoke(app, ["run", *SMOKE, "--set", "steps=32", "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out


def write(tmp: Path, name: str, content: str | bytes) -> str:
    path = tmp / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return str(path)


TINY = 'N = 32\nm = 4\nk = 8\nsteps = 8\nbatch_size = 8\n'
# (case id, CLI arguments after `run` given a tmp dir, words the one line must contain)
CASES = [
    ("lr inf", lambda t: [*SMOKE, "--set", "lr=inf"], ["field 'lr'", "finite"]),
    ("bias_offset inf", lambda t: [*SMOKE, "--set", "bias_offset=inf"], ["field 'bias_offset'", "finite"]),
    ("lr inf in TOML", lambda t: [write(t, "a.toml", TINY + "lr = inf\n")], ["field 'lr'", "finite"]),
    ("N too large for memory", lambda t: [*SMOKE, "--set", "N=100000000"], ["needs about", "TOYMODELS_MEMORY_LIMIT_GB"]),
    ("k too large for memory", lambda t: [*SMOKE, "--set", "k=100000000"], ["needs about", "k=100000000"]),
    ("batch too large", lambda t: [*SMOKE, "--set", "batch_size=100000000"], ["needs about", "batch_size"]),
    ("steps 10^12", lambda t: [*SMOKE, "--set", "steps=1000000000000"], ["needs about"]),
    ("N overflow", lambda t: [*SMOKE, "--set", "N=99999999999999999999999"], ["field 'N'", "at most"]),
    ("m above N", lambda t: [*SMOKE, "--set", "m=64", "--set", "N=32"], ["field 'm'", "at most N=32"]),
    ("malformed TOML", lambda t: [write(t, "b.toml", "N = = 3\n")], ["b.toml", "not valid TOML"]),
    ("duplicate TOML key", lambda t: [write(t, "c.toml", "N = 3\nN = 4\n")], ["c.toml", "not valid TOML"]),
    ("empty JSON object", lambda t: [write(t, "d.json", "{}")], ["d.json", "sets no field"]),
    ("JSON list", lambda t: [write(t, "e.json", "[1, 2]")], ["e.json", "must hold an object"]),
    ("binary junk", lambda t: [write(t, "f.json", b"\xff\xfe\x00\x81junk")], ["f.json", "not UTF-8"]),
    ("empty TOML", lambda t: [write(t, "g.toml", "")], ["g.toml", "sets no field"]),
    ("JSON true as a size", lambda t: [write(t, "h.json", '{"N": true}')], ["field 'N'", "must be a number"]),
    ("duplicate JSON key", lambda t: [write(t, "i.json", '{"N": 8, "N": 16}')], ["field 'N' is given twice"]),
    ("a folder as sweep file", lambda t: [str(t)], ["is a folder", "preset name"]),
    ("seeds 0", lambda t: [*SMOKE, "--seeds", "0"], ["field 'seeds'"]),
    ("10^7 seeds dry run", lambda t: [*SMOKE, "--seeds", "10000000", "--dry-run"], ["field 'grid'", "at most"]),
    ("10^9 instance grid", lambda t: [write(t, "j.toml", TINY + "[grid]\n" + "".join(
        f"{f} = [{', '.join(str(v) for v in range(1, 1001))}]\n" for f in ("seed", "k", "steps")))],
     ["field 'grid'", "1,000,000,000 instances"]),
    ("name leaving runs/", lambda t: [write(t, "k.toml", TINY + 'name = ".."\n')], ["field 'name'"]),
    ("out is a file", lambda t: [*SMOKE, "--out", write(t, "file.txt", "x")], ["is a file, not a folder"]),
    ("out under a file", lambda t: [*SMOKE, "--out", write(t, "file2.txt", "x") + "/sub"], ["is a file"]),
    ("out under /proc", lambda t: [*SMOKE, "--out", "/proc/toymodels-nope/x"], ["--out", "/proc"]),
    ("unknown preset", lambda t: ["LRX", "--scale", "smoke"], ["LRX"]),
]


@pytest.mark.parametrize("case,args,words", CASES, ids=[c[0] for c in CASES])
def test_bad_input_one_line_exit_2_nothing_touched(case, args, words, tmp_path, existing):
    before = folder_digest(existing)
    argv = args(tmp_path)
    if "--out" not in argv:
        argv = [*argv, "--out", str(tmp_path / "new")]
    res = CliRunner().invoke(app, ["run", *argv])
    assert res.exit_code == 2, (res.exit_code, res.output)
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.output
    assert "Traceback" not in res.output
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert not (tmp_path / "new").exists()
    assert folder_digest(existing) == before


@pytest.mark.parametrize("case,extra,words", [
    ("resume a different sweep", ["--set", "lr=0.5", "--resume"], ["holds a different sweep"]),
    ("no --resume", [], ["already holds a sweep"]),
    ("lr inf on resume", ["--set", "lr=inf", "--resume"], ["field 'lr'"]),
])
def test_bad_input_aimed_at_an_existing_folder_leaves_it_byte_identical(case, extra, words, existing):
    before = folder_digest(existing)
    res = CliRunner().invoke(app, ["run", *SMOKE, "--set", "steps=32", *extra, "--out", str(existing)])
    assert res.exit_code == 2 and all(w in res.output for w in words), res.output
    assert folder_digest(existing) == before


def test_a_bom_is_accepted(tmp_path):
    res = CliRunner().invoke(app, ["run", write(tmp_path, "bom.toml", "\ufeff" + TINY), "--dry-run"])
    assert res.exit_code == 0, res.output


def test_report_names_a_group_table_missing_a_column(existing, tmp_path):
    import shutil

    import pandas as pd

    copy = tmp_path / "copy"
    shutil.copytree(existing, copy)
    table = copy / "groups" / "g000" / "instances.parquet"
    pd.read_parquet(table).drop(columns=["status"]).to_parquet(table)
    res = CliRunner().invoke(app, ["report", str(copy)])  # the table fails DONE's record: named and left out
    assert res.exit_code == 0 and "group g000 is damaged: instances.parquet" in res.output, res.output
    from toymodels.results.store import write_done

    write_done(copy, "g000")  # a table its DONE vouches for that still lacks a column: refused, naming it
    res = CliRunner().invoke(app, ["report", str(copy)])
    assert res.exit_code == 2 and "instances.parquet: damaged table, column 'status' is missing" in res.output


@pytest.mark.parametrize("bad", [None, 3.5, ["LR1"]])
def test_python_api_says_what_it_needs(bad, tmp_path):
    with pytest.raises(ConfigError, match="tm.run needs a SweepConfig"):
        tm.run(bad, out=tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_python_api_takes_a_dict_of_fields_and_refuses_a_file_as_out(tmp_path):
    fields = {"N": 16, "m": 4, "k": 8, "steps": 8, "batch_size": 8, "grid": {"lr": [0.01, 0.02]}}
    res = tm.run(fields, out=tmp_path / "r", progress=False, report=False)
    assert len(res.instances) == 2
    target = tmp_path / "file"
    target.write_text("keep me")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        tm.run(fields, out=target, progress=False, report=False)
    assert target.read_text() == "keep me"
