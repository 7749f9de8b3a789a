"""Weights & Biases tracking (toymodels.running.tracking): a smoke sweep mirrored in offline mode, read back from wandb's own
run files and compared with the results folder's parquet files; the extra stays optional."""

from __future__ import annotations

import json
import math
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import need_extra
from typer.testing import CliRunner

import toymodels as tm
from toymodels.results import store
from toymodels.running import tracking
from toymodels.cli import app
from toymodels.config import FIELDS, ConfigError
from toymodels.config.wording import command_line

wandb = need_extra("wandb", "wandb")
from wandb.proto import wandb_internal_pb2  # noqa: E402  (only with the extra)

PROJECT = "toymodels-test"
SWEEP_ARGS = ["LR1", "--scale", "smoke", "--set", "steps=64", "--set", "optimizer=sgd", "--sweep", "lr=0.01,1000",
              "--sweep", "k=48,64", "--seeds", "1", "--no-progress"]  # 4 instances in 2 groups, 2 diverged


# ---- reading wandb's run files (the transaction log in LevelDB's log format, records are protobuf) ---------------
def log_records(path: Path) -> list[bytes]:
    """The records of a ``run-<id>.wandb`` file: a 7-byte header, then 32 KiB blocks of (crc, length, type) chunks."""
    data = path.read_bytes()
    ident, magic, _ = struct.unpack("<4sHB", data[:7])
    assert (ident, magic) == (b":W&B", 0xBEE1), f"{path}: not a wandb run file"
    block, pos, records, parts = 32768, 7, [], []
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a chunk header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0:  # zero padding up to the end of the block
            pos += block - pos % block
            continue
        parts.append(data[pos + 7:pos + 7 + length])
        pos += 7 + length
        if kind in (1, 4):  # FULL or LAST: the record is complete
            records.append(b"".join(parts))
            parts = []
    return records


def put(into: dict, item) -> None:
    """Store one history/summary/config item: a media value comes as one item per field (nested_key)."""
    path = list(item.nested_key) or [item.key]
    for part in path[:-1]:
        into = into.setdefault(part, {})
    into[path[-1]] = json.loads(item.value_json)


def read_run(path: Path) -> dict:
    """A run file as {"run": the run record, "config", "history": [{key: value}], "summary": the final summary}."""
    out = {"config": {}, "history": [], "summary": {}}
    for raw in log_records(path):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(raw)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            out["run"] = record.run
            for u in record.run.config.update:
                put(out["config"], u)
        elif kind == "config":
            for u in record.config.update:
                put(out["config"], u)
        elif kind == "history":
            out["history"].append({})
            for i in record.history.item:
                put(out["history"][-1], i)
        elif kind == "summary":
            for u in record.summary.update:
                put(out["summary"], u)
    return out


def offline_runs(wandb_dir: Path) -> dict[str, dict]:
    """Every offline run under ``wandb_dir``: display name -> read_run."""
    runs = [read_run(p) for p in sorted(wandb_dir.glob("wandb/offline-run-*/run-*.wandb"))]
    return {r["run"].display_name: r for r in runs}


def same(logged, value) -> bool:
    """A logged value equals the parquet value; a NaN (a diverged instance's metrics) is logged as NaN or, in the
    summary, as null (wandb's own conversion)."""
    if isinstance(value, float) and math.isnan(value):
        return logged is None or (isinstance(logged, float) and math.isnan(logged))
    return logged == value


# ---- the sweep, mirrored once ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def mirrored(tmp_path_factory):
    """The smoke sweep run by the CLI with --wandb in offline mode: (results folder, WANDB_DIR)."""
    root = tmp_path_factory.mktemp("wandb")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANDB_MODE", "offline")
        mp.setenv("WANDB_DIR", str(root))
        mp.setenv("WANDB_SILENT", "true")
        res = CliRunner().invoke(app, ["run", *SWEEP_ARGS, "--out", str(root / "LR1-smoke"), "--wandb", PROJECT])
        wandb.teardown()  # wandb reads WANDB_DIR once per process setup: the next test's runs go to its own dir
    assert res.exit_code == 0, res.output
    return root / "LR1-smoke", root


def test_each_instance_is_one_run_whose_config_history_and_summary_are_the_parquet_values(mirrored):
    folder, wandb_dir = mirrored
    results = store.load(folder)
    runs = offline_runs(wandb_dir)
    assert len(results.instances) == 4 and results.instances["group"].nunique() == 2
    assert (results.instances["status"] == "diverged").sum() == 2  # NaN metrics are mirrored too
    for row in results.instances.to_dict("records"):
        run = runs[f"LR1-smoke/{row['run_id']}"]
        assert (run["run"].project, run["run"].run_group, run["run"].job_type) == (PROJECT, "LR1-smoke", "instance")
        config = {k: v for k, v in run["config"].items() if k != "_wandb"}
        assert config == {**{k: row[k] for k in FIELDS}, "run_id": row["run_id"], "sweep": results.sweep.name}
        for name in ("status", "diverged_at", "final_loss", "mono_per_feature", "train_seconds"):
            assert same(run["summary"][name], row[name]), (row["run_id"], name)
        logged = sorted((h["_step"], k, v) for h in run["history"] for k, v in h.items() if not k.startswith("_"))
        curve = results.metrics[results.metrics["run_id"] == row["run_id"]]
        expected = sorted(zip(curve["step"].tolist(), curve["name"].tolist(), curve["value"].tolist()))
        assert logged == expected and {"loss"} < {k for _, k, _ in logged}  # the losses and the checkpoint metrics


def test_the_report_run_carries_every_figure_and_the_instances_table(mirrored):
    folder, wandb_dir = mirrored
    report = offline_runs(wandb_dir)["LR1-smoke/report"]
    assert report["run"].job_type == "report"
    pngs = {f"figures/{p.stem}" for p in (folder / "figures").glob("*.png")}
    logged = {k: v for h in report["history"] for k, v in h.items()}
    assert pngs and pngs <= set(logged)
    run_dir = next(wandb_dir.glob(f"wandb/offline-run-*-{report['run'].run_id}"))
    for name in pngs:  # the image in the run's files is the results folder's PNG, byte for byte
        assert logged[name]["_type"] == "image-file"
        image = run_dir / "files" / logged[name]["path"]
        assert image.read_bytes() == (folder / f"{name}.png").read_bytes()
    assert logged["instances"]["_type"] == "table-file" and logged["instances"]["nrows"] == 4
    assert report["summary"]["instances"] == 4 and report["summary"]["diverged"] == 2


def test_the_record_names_every_run_and_nothing_is_mirrored_twice(mirrored, monkeypatch):
    folder, wandb_dir = mirrored
    record = json.loads((folder / tracking.RECORD_FILE).read_text())[PROJECT]
    assert sorted(r for ids in record["groups"].values() for r in ids) == ["r0000", "r0001", "r0002", "r0003"]
    before = sorted(wandb_dir.glob("wandb/offline-run-*"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(wandb_dir))
    mirror = tracking.WandbMirror(PROJECT)
    mirror.finish(folder)  # what --resume does at the end: nothing new to log
    wandb.teardown()
    assert mirror.mirrored == 0 and sorted(wandb_dir.glob("wandb/offline-run-*")) == before


def test_a_wandb_failure_is_said_once_never_stops_the_sweep_and_resume_sends_what_is_missing(tmp_path, monkeypatch):
    out, calls = tmp_path / "out", []

    def failing_init(**kwargs):
        calls.append(kwargs["name"])
        raise RuntimeError("no network here")

    monkeypatch.setattr(wandb, "init", failing_init)
    res = CliRunner().invoke(app, ["run", *SWEEP_ARGS, "--no-report", "--out", str(out), "--wandb", PROJECT])
    assert res.exit_code == 0, res.output
    assert store.load(out).complete
    assert len(calls) == 1  # the first failure stopped the mirroring: nothing waits on wandb per instance
    said = [line for line in res.output.splitlines() if line.startswith("wandb:")]
    assert len(said) == 1 and "no network here" in said[0] and "--resume" in said[0]
    assert not (out / tracking.RECORD_FILE).exists()  # nothing was sent, nothing recorded

    monkeypatch.undo()
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    res = CliRunner().invoke(app, ["run", *SWEEP_ARGS, "--no-report", "--out", str(out), "--wandb", PROJECT,
                                   "--resume"])
    wandb.teardown()
    assert res.exit_code == 0, res.output
    names = {r["run"].display_name for r in offline_runs(tmp_path).values()}
    assert names == {f"out/r000{i}" for i in range(4)} | {"out/report"}


# ---- optional ---------------------------------------------------------------------------------------------------
def hide_wandb(monkeypatch) -> None:
    find_spec = tracking.importlib.util.find_spec
    monkeypatch.setattr(tracking.importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else
                        find_spec(name, *a))


def test_without_the_extra_the_cli_fails_in_one_line_before_any_training(tmp_path, monkeypatch):
    hide_wandb(monkeypatch)
    monkeypatch.setenv(tracking.ENV_PROJECT, PROJECT)  # the environment variable asks for tracking too
    res = CliRunner().invoke(app, ["run", *SWEEP_ARGS, "--out", str(tmp_path / "out")])
    assert res.exit_code == 2
    with command_line():
        assert res.output.strip() == f"error: {tracking.missing()}"
    assert "--wandb PROJECT needs" in res.output and "toymodels[wandb]" in res.output
    with pytest.raises(ConfigError, match=r"^wandb='PROJECT' needs the optional wandb package"):  # Python's words
        tracking.mirror_for(PROJECT)
    assert not (tmp_path / "out").exists()


def test_without_the_extra_tm_run_raises_before_any_training(tmp_path, monkeypatch):
    hide_wandb(monkeypatch)
    with pytest.raises(ConfigError, match=r"pip install 'toymodels\[wandb\]'"):
        tm.run("LR1", out=tmp_path / "out", wandb=PROJECT)
    assert not (tmp_path / "out").exists()
    monkeypatch.delenv(tracking.ENV_PROJECT, raising=False)
    assert tracking.mirror_for(None) is None  # nothing asked: no mirror, wandb not needed


def test_importing_toymodels_does_not_import_wandb():
    code = "import sys, toymodels, toymodels.cli, toymodels.running.tracking; assert 'wandb' not in sys.modules"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
