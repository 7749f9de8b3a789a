"""The grokking family end to end: its presets (the paper's numbers), `toymodels run` at smoke scale to a report with
its figures, `Results.model` (and TransformerLens from it), the analysis a study calls, the dashboard panel, and
bad input refused in one line."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from helpers import need_extra
from typer.testing import CliRunner

from toymodels.cli import app
from toymodels.config.presets import preset
from toymodels.families.grokking import analysis
from toymodels.families.grokking.data import all_tokens, answers
from toymodels.results import store


@pytest.fixture(scope="module")
def phase_results(tmp_path_factory):
    """GROK-phase at smoke scale from the CLI: weight decay 0 and 1 x training fraction 0.3 and 0.5 (two groups)."""
    out = tmp_path_factory.mktemp("runs") / "phase"
    res = CliRunner().invoke(app, ["run", "GROK-phase", "--scale", "smoke", "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    return store.load(out)


def test_the_paper_preset_has_the_papers_settings():
    s = preset("GROK-main", "paper")
    b = s.base
    g, o = b.grokking, b.optim
    assert (g.modulus, g.d_model, g.n_heads, g.d_mlp, g.train_frac, g.grok_arch) == (113, 128, 4, 512, 0.3,
                                                                                    "transformer")
    assert (o.optimizer, o.lr, o.weight_decay, g.adam_beta1, g.adam_beta2, o.steps) == ("adamw", 1e-3, 1.0, 0.9,
                                                                                          0.98, 40_000)
    assert o.batch_size == 3830 and o.schedule == "warmup_constant" and round(o.warmup_frac * o.steps) == 10
    assert s.size() == 5
    phase = preset("GROK-phase", "paper")
    assert phase.base.optim.batch_size == int(max(phase.grid["train_frac"]) * 113 ** 2)  # full batch everywhere


def test_run_writes_the_report_with_the_familys_figures(phase_results):
    res = phase_results
    inst = res.instances
    assert len(inst) == 4 and (inst["status"] == "ok").all()
    assert sorted(inst["weight_decay"].unique()) == [0.0, 1.0] and sorted(inst["train_frac"].unique()) == [0.3, 0.5]
    assert set(inst["group"]) == {"g000", "g001"}  # weight decay is a group field; the fractions share a group
    figures = res.folder / "figures"
    for name in ("grokking_curves", "grokking_spectrum", "grokking_progress", "grokking_phase"):
        assert (figures / f"{name}.png").stat().st_size > 1000, name
    report = (res.folder / "report.html").read_text()
    assert "Grokking: when each instance generalised" in report and "grokking_phase.png" in report
    m = res.metrics
    assert {"train_acc", "test_acc", "restricted_loss", "excluded_loss", "embed_gini", "weight_norm"} <= set(m["name"])


def test_results_model_is_the_trained_transformer_and_converts_to_transformer_lens(phase_results):
    res = phase_results
    model = res.model("r0000")
    tokens = all_tokens(11)
    logits = model(tokens)
    assert logits.shape == (121, 11) and model.axes["input"] == ("batch", "positions")
    _, cache = model.run_with_cache(tokens)
    assert cache["neurons"].shape == (121, 24)
    inner_logits, _ = model.inner(tokens[None])
    assert torch.equal(logits, inner_logits[0])
    accuracy = (logits.argmax(-1) == answers(tokens[:, 0], tokens[:, 1], "add", 11)).double().mean()
    metrics = res.metrics[(res.metrics["run_id"] == "r0000") & (res.metrics["name"] == "train_acc")]
    assert 0 <= float(accuracy) <= 1 and len(metrics) > 0
    need_extra("transformer_lens", "test")
    from toymodels.families.grokking.lens import to_hooked_transformer

    lens = to_hooked_transformer(model)
    with torch.no_grad():
        torch.testing.assert_close(lens(tokens)[:, -1], logits.detach(), atol=1e-5, rtol=1e-5)


def test_the_analysis_a_study_calls(phase_results):
    res = phase_results
    steps = analysis.accuracy_steps(res)
    assert list(steps["run_id"]) == list(res.instances["run_id"])
    for _, row in steps.iterrows():
        curve = analysis.curve(res, row["run_id"], "train_acc")
        if pd.isna(row["train_acc_step"]):
            assert (curve <= analysis.MEMORISED).all()
        else:
            assert curve[int(row["train_acc_step"])] > analysis.MEMORISED
            assert (curve[curve.index < row["train_acc_step"]] <= analysis.MEMORISED).all()
    pm = analysis.progress_measures(res, "r0000")
    assert list(pm["step"]) == res.checkpoint_steps("r0000")
    assert pm.attrs["key_frequencies"] == analysis.key_frequencies(res, "r0000")
    final = res.row("r0000")
    assert pm["test_loss"].iloc[-1] == pytest.approx(final["test_loss"], rel=1e-9)
    assert pm["weight_norm"].iloc[-1] == pytest.approx(final["weight_norm"], rel=1e-9)
    spectrum = analysis.spectrum(res, "r0000")
    assert len(spectrum) == 5 and spectrum["key"].tolist() == [k in pm.attrs["key_frequencies"] for k in range(1, 6)]
    assert set(analysis.phases(res, "r0000")) == {"memorisation_end", "cleanup_start", "cleanup_end"}
    table = analysis.phase_diagram(res)
    assert len(table) == 4 and (table["n"] == 1).all()


class StubCurves:
    """A results stand-in with one instance and chosen curves (name -> {step: value})."""

    def __init__(self, curves: dict[str, dict[int, float]]):
        self.curves = curves

    def curve(self, run_id: str, name: str) -> pd.DataFrame:
        values = self.curves[name]
        return pd.DataFrame({"step": list(values), "value": list(values.values())})


def test_first_step_is_the_first_checkpoint_past_the_threshold():
    stub = StubCurves({"test_acc": {0: 0.0, 99: 0.5, 199: 0.995, 299: 0.98, 399: 1.0}})
    assert analysis.first_step(stub, "r", "test_acc", 0.99) == 199
    assert analysis.first_step(stub, "r", "test_acc", 0.999) == 399
    assert analysis.first_step(stub, "r", "test_acc", 1.0) is None
    assert analysis.first_step(stub, "r", "test_acc", 0.1, above=False) == 0


def test_phases_memorised_then_the_test_loss_halves_then_test_accuracy_saturates():
    steps = [0, 99, 199, 299, 399, 499, 599]
    stub = StubCurves({"train_acc": dict(zip(steps, [0.0, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0])),
                       "test_loss": dict(zip(steps, [4.6, 5.0, 9.0, 12.0, 7.0, 5.0, 0.01])),
                       "test_acc": dict(zip(steps, [0.0, 0.01, 0.0, 0.0, 0.2, 0.5, 0.995]))})
    # memorised at 199; the test loss peaks at 299 (12) and first falls below 6 at 499; test accuracy 99% at 599
    assert analysis.phases(stub, "r") == {"memorisation_end": 199, "cleanup_start": 499, "cleanup_end": 599}
    stub.curves["test_acc"][599] = 0.9  # never grokked: no cleanup
    assert analysis.phases(stub, "r") == {"memorisation_end": 199, "cleanup_start": None, "cleanup_end": None}


def test_the_dashboard_panel_draws_an_instance_and_the_phase_diagram(phase_results):
    need_extra("plotly", "app")
    from toymodels.app.data import dashboard_panel, instance_heading, panel_parts
    from toymodels.families.grokking import dashboard

    res = phase_results
    panel = dashboard_panel(res)
    assert panel is dashboard.PANEL
    step = res.checkpoint_steps("r0001")[-1]
    view = panel.view(res, "r0001", step)
    parts = panel_parts(panel, view, instance_heading("r0001", step), res.instances)
    assert parts.main[0].key == "grok-curves"
    assert {f.key for f in parts.figures} == {"grok-spectrum", "grok-neurons", "grok-phase"}
    numbers = parts.tables[0].table.set_index("quantity")["value"]
    assert float(numbers["test acc"]) == pytest.approx(res.row("r0001")["test_acc"], abs=1e-3)


@pytest.mark.parametrize("args, field", [(["--set", "modulus=12"], "modulus"),
                                         (["--set", "train_frac=0.9"], "batch_size"),
                                         (["--set", "n_heads=3"], "n_heads"),
                                         (["--set", "operation=divide"], "operation")])
def test_bad_input_is_one_line_naming_the_field(tmp_path, args, field):
    out = tmp_path / "never"
    res = CliRunner().invoke(app, ["run", "GROK-main", "--scale", "smoke", "--out", str(out), *args])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and f"'{field}'" in lines[0], res.output
    assert not out.exists()
