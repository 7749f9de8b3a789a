"""The report: summary table, self-contained report.html, CLI output; and the metrics it reads (NaN-free, probe)."""

from __future__ import annotations

import base64
import dataclasses
import math
import re
from html.parser import HTMLParser

import numpy as np
import pytest
import torch
from helpers import PNG_MAGIC, as_model
from typer.testing import CliRunner

import toymodels as tm
from toymodels.families.em.analysis import instance_config
from toymodels.cli import app
from toymodels.config import ExperimentConfig
from toymodels.families import get_family
from toymodels.families.em import em_evaluate, em_probe
from toymodels.report.figures import figure_specs
from toymodels.report.html import format_summary, status_word, summary_table, summary_text, write_report


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


# ---------------------------------------------------------------------------------------------- summary table
def test_summary_table_aggregates_seeds(diverging_results):
    table = summary_table(diverging_results)
    inst = diverging_results.instances
    assert table["lr"].tolist() == [0.01, 0.1, 1000.0]  # one row per setting, not per seed
    assert table["seeds"].tolist() == [2, 2, 2]
    for _, row in table.iterrows():
        seeds = inst[(inst["lr"] == row["lr"]) & (inst["status"] == "ok")]
        if len(seeds) == 0:
            continue
        for m in ("final_loss", "mono_per_feature", "features_covered", "mean_bias", "false_mono"):
            assert row[m] == pytest.approx(seeds[m].mean()), m
            assert row[f"{m}_std"] == pytest.approx(seeds[m].std(ddof=1), abs=1e-12), m
    # the two seeds really differ, so the mean is not just one of them
    assert table.loc[0, "final_loss_std"] > 0


def test_summary_table_shows_diverged_setting(diverging_results):
    table = summary_table(diverging_results)
    row = table[table["lr"] == 1000.0].iloc[0]
    assert (row["ok"], row["diverged"], row["status"]) == (0, 2, "2 diverged")
    assert math.isnan(row["final_loss"]) and math.isnan(row["mono_per_feature"])
    assert table[table["lr"] < 1000]["status"].tolist() == ["2 ok", "2 ok"]
    text = format_summary(table)
    assert text.loc[2, "final_loss"] == "-"
    assert re.fullmatch(r"\d\.\d+ ± \d\.\d+(e-\d+)?", text.loc[0, "final_loss"])


def test_summary_table_single_seed_status_word():
    assert status_word({"ok": 1}, 1) == "ok" and status_word({"diverged": 1}, 1) == "diverged"
    assert status_word({"ok": 1, "diverged": 1}, 2) == "1 ok, 1 diverged"


def test_summary_columns_are_the_familys_summary_metrics(diverging_results):
    em = get_family("em").presentation.summary_metrics
    table = summary_table(diverging_results)
    assert [c for c in table.columns if f"{c}_std" in table.columns] == list(em)
    # presented as TMS: its summary metrics that the table has (EM's instances have no represented_features)
    tms = summary_table(as_model(diverging_results, "tms"))
    assert [c for c in tms.columns if f"{c}_std" in tms.columns] == ["final_loss", "dims_per_feature"]
    assert summary_text(as_model(diverging_results, "tms")).splitlines()[0].split() == [
        "lr", "seeds", "status", "final_loss", "dims_per_feature"]


# ------------------------------------------------------------------------------------------------ report.html
def test_report_html_is_self_contained(reported):
    results, _ = reported
    page = (results.folder / "report.html").read_text()
    assert "http://" not in page and "https://" not in page  # nothing to fetch, not even a link
    parser = _Tags()
    parser.feed(page)
    tags = [t for t, _ in parser.tags]
    assert "script" not in tags and "link" not in tags and "iframe" not in tags
    assert not [a for t, a in parser.tags if "href" in a]
    imgs = [a["src"] for t, a in parser.tags if t == "img"]
    figures = sorted((results.folder / "figures").glob("*.png"))
    assert len(imgs) == len(figures) == len(figure_specs(results)) == 9  # 6, and the polytope lens's 3
    files = {f.read_bytes() for f in figures}
    for src in imgs:
        assert src.startswith("data:image/png;base64,")
        data = base64.b64decode(src.split(",", 1)[1])
        assert data.startswith(PNG_MAGIC) and data in files  # the very figures written to figures/


def test_report_html_has_config_table_captions_and_diverged_row(reported):
    results, _ = reported
    page = (results.folder / "report.html").read_text()
    assert "<h2>Sweep</h2>" in page and "<code>lr</code>" in page and "0.01, 0.1, 1000" in page
    assert page.count("<figcaption>") == len(figure_specs(results))
    for spec in figure_specs(results):
        assert spec.caption.split(".")[0] in page
    assert re.search(r'<tr class="diverged">.*?2 diverged', page)
    assert page.count('<tr class="diverged">') == 1
    assert "Mechanism numbers of" in page


def test_cli_report_prints_the_summary_table(reported):
    results, out = reported
    lines = out.strip().splitlines()
    assert lines[-1] == f"report: {results.folder / 'report.html'}"
    header = lines[0].split()
    assert header[:3] == ["lr", "seeds", "status"] and "final_loss" in header and "mono_per_feature" in header
    assert len(lines) == 1 + 3 + 1  # header, three settings, report path
    assert "2 diverged" in lines[3] and lines[3].split()[0] == "1000"
    assert "±" in lines[1]


def test_cli_run_prints_the_summary_table(tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["run", "LR1", "--scale", "smoke", "--set", "steps=16", "--sweep", "lr=0.01,0.03",
                                   "--out", str(out), "--no-report", "--no-progress"])
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert lines[0].split()[:3] == ["lr", "seeds", "status"]
    assert lines[1].split()[:3] == ["0.01", "1", "ok"] and lines[2].split()[:3] == ["0.03", "1", "ok"]
    assert lines[-1].startswith(f"results: {out}")


def test_report_of_a_folder_without_instances(diverging_results, tmp_path):
    empty = dataclasses.replace(diverging_results, folder=tmp_path, instances=diverging_results.instances.iloc[:0],
                                metrics=diverging_results.metrics.iloc[:0])
    page = write_report(empty).read_text()
    assert "No finished instances yet" in page and "<img" not in page


# -------------------------------------------------------------------------------------- metrics the report reads
def test_metrics_are_nan_free_where_defined(diverging_results):
    inst = diverging_results.instances
    assert (inst["status"] == "diverged").sum() == 2 and (inst.query("status == 'diverged'")["lr"] == 1000).all()
    metric_cols = ["final_loss", "mono_neurons", "mono_per_feature", "features_covered", "dead_neurons",
                   "mean_bias", "mean_capacity", "dims_per_feature", "false_mono", "mean_fires_all_but_one"]
    # every final metric of an instance that trained is finite; a diverged one has no trained model, so none
    assert np.isfinite(inst.query("status == 'ok'")[metric_cols].to_numpy(dtype=float)).all()
    assert inst.query("status == 'diverged'")[metric_cols].isna().all().all()
    m = diverging_results.metrics
    assert np.isfinite(m["value"]).all()
    # the probe metrics are recorded at every checkpoint of every instance
    for name in ("false_mono", "mean_fires_all_but_one"):
        steps = m[(m["name"] == name) & (m["run_id"] == "r0000")]["step"].tolist()
        assert steps == diverging_results.checkpoint_steps("r0000"), name


def test_false_mono_metric_matches_the_neuron_table(diverging_results):
    """The evaluator's false_mono and tm.analysis.explain use the same probe inputs, so they agree exactly."""
    for rid in diverging_results.instances.query("status == 'ok'")["run_id"]:
        row = diverging_results.row(rid)
        table = tm.analysis.explain(diverging_results, rid)
        assert int(table["false_mono"].sum()) == row["false_mono"], rid
        assert int((table["kind"] == "mono").sum()) == row["mono_neurons"] == table.attrs["n_mono"], rid
        assert table["fires_all_but_one"].mean() == pytest.approx(row["mean_fires_all_but_one"], rel=1e-6), rid
        assert not table.loc[table["kind"] != "mono", "false_mono"].any()  # only mono neurons can be false mono
    # at a checkpoint where the metric is not zero (a non-zero count makes the comparison meaningful), the table
    # of that step agrees with the metric curve at that step
    m = diverging_results.metrics
    m = m[m["name"] == "false_mono"].sort_values("value", ascending=False, kind="stable").iloc[0]
    assert m["value"] > 0
    t = tm.analysis.explain(diverging_results, m["run_id"], step=int(m["step"]))
    assert t.attrs["step"] == int(m["step"]) and t.attrs["run_id"] == m["run_id"]
    assert int(t["false_mono"].sum()) == m["value"]
    assert t.loc[t["false_mono"], "kind"].eq("mono").all()


def test_probe_metric_is_deterministic_and_independent_of_the_group(diverging_results):
    rids = ["r0000", "r0001", "r0002"]
    cfgs = [instance_config(diverging_results, r) for r in rids]
    params = [diverging_results.params(r) for r in rids]
    group = {k: torch.stack([p[k] for p in params]) for k in ("W1", "b1", "E")}
    together = em_evaluate(cfgs, group)
    alone = [em_evaluate([c], {k: v[i:i + 1] for k, v in group.items()}) for i, c in enumerate(cfgs)]
    for name in ("false_mono", "mean_fires_all_but_one", "mono_neurons"):
        assert together[name].tolist() == [a[name].item() for a in alone], name
    again = em_probe(cfgs, {k: v.double() for k, v in group.items()})
    first = em_probe(cfgs, {k: v.double() for k, v in group.items()})
    assert torch.equal(again["context_features"], first["context_features"])


def test_probe_flags_a_neuron_that_fires_on_a_pair():
    """Neuron 0 reads features 0 and 1 at 0.6 and feature 2 at 1.5, bias -0.9: on lone features only feature 2
    fires it (mono), but features 0 + 1 together do too (1.2 > 0.9). Neuron 1 reads feature 3 alone (truly mono)."""
    cfg = ExperimentConfig.from_flat({"N": 4, "m": 4, "k": 2, "eps": 0.5})
    W1 = torch.tensor([[[0.6, 0.6, 1.5, 0.0], [0.0, 0.0, 0.0, 1.0]]], dtype=torch.float64)
    b1 = torch.tensor([[-0.9, -0.5]], dtype=torch.float64)
    E = torch.eye(4, dtype=torch.float64)[None]
    out = em_evaluate([cfg], {"W1": W1, "b1": b1, "E": E})
    assert out["mono_neurons"].item() == 2  # both pass the single-feature probe
    assert out["false_mono"].item() == 1  # neuron 0 also fires on features 0 + 1 (1.2 > 0.9) without feature 2
