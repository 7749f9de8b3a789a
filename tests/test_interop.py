"""The results folder without toymodels: the README's duckdb query and pandas snippet over ``runs/*/instances.parquet``
give the answer computed here from each sweep's parquet file."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd
import pytest
from helpers import need_extra

from toymodels.config import ExperimentConfig, SweepConfig
from toymodels.running.sweep import run_sweep

duckdb = need_extra("duckdb", "test")

README = Path(__file__).resolve().parents[1] / "README.md"
EM = ExperimentConfig.from_flat({"N": 32, "m": 8, "k": 48, "batch_size": 32, "steps": 64, "eps": 1 / 16})
TMS = ExperimentConfig.from_flat({"model": "tms", "N": 8, "m": 2, "batch_size": 32, "steps": 64})


def readme_block(language: str, must_contain: str) -> str:
    """The README's first ``language`` code block that contains ``must_contain``."""
    blocks = re.findall(rf"```{language}\n(.*?)```", README.read_text(), re.S)
    found = [b for b in blocks if must_contain in b]
    assert found, f"README.md has no {language} block with {must_contain!r}"
    return found[0]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """A runs/ folder of three small sweeps: two EM sweeps that share lr=0.1 (one with a diverged instance) and a
    TMS sweep, whose instances have no mono_per_feature column (about a second)."""
    root = tmp_path_factory.mktemp("interop")
    for name, base, grid, seeds in (("em-a", EM, {"lr": [0.01, 0.1]}, 2), ("em-b", EM, {"lr": [0.1, 1e6]}, 1),
                                    ("tms", TMS, {"lr": [0.1, 0.003]}, 1)):
        run_sweep(SweepConfig(name=name, base=base, grid=grid, seeds=seeds), root / "runs" / name, progress=False)
    return root


def expected(root: Path) -> dict[float, tuple[float, int]]:
    """lr -> (mean mono_per_feature, number of instances with one) over the ok instances, file by file."""
    values: dict[float, list[float]] = {}
    for name in ("em-a", "em-b", "tms"):
        for row in pd.read_parquet(root / "runs" / name / "instances.parquet").to_dict("records"):
            if row["status"] == "ok":
                mono = row.get("mono_per_feature", math.nan)
                values.setdefault(row["lr"], []).extend([] if math.isnan(mono) else [mono])
    return {lr: (sum(v) / len(v) if v else math.nan, len(v)) for lr, v in values.items()}


def as_dict(table: pd.DataFrame) -> dict[float, tuple[float, int]]:
    return {float(r["lr"]): (float(r["mono_per_feature"]) if pd.notna(r["mono_per_feature"]) else math.nan,
                             int(r["instances"])) for r in table.to_dict("records")}


def assert_same(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for lr in want:
        assert got[lr][1] == want[lr][1], lr
        assert got[lr][0] == pytest.approx(want[lr][0], rel=1e-12, nan_ok=True), lr


def test_the_sweeps_cover_what_the_query_must_handle(runs):
    want = expected(runs)
    assert want[0.1][1] == 3  # lr=0.1 pools two EM sweeps (2 + 1 instances)
    assert 1e6 not in want  # the diverged instance is filtered out by status
    assert want[0.003] == (pytest.approx(math.nan, nan_ok=True), 0)  # TMS only: no mono_per_feature


def test_the_readme_duckdb_query_over_runs_gives_the_parquet_answer(runs, monkeypatch):
    monkeypatch.chdir(runs)
    table = duckdb.sql(readme_block("sql", "runs/*/instances.parquet")).df()
    assert list(table["lr"]) == sorted(table["lr"])  # ORDER BY lr
    assert_same(as_dict(table), expected(runs))


def test_the_readme_pandas_snippet_gives_the_same_answer(runs, monkeypatch):
    monkeypatch.chdir(runs)
    scope: dict = {}
    exec(readme_block("python", 'glob.glob("runs/*/instances.parquet")'), scope)
    assert_same(as_dict(scope["table"]), expected(runs))
