"""Peaks and troughs of the periodic lr: the checkpoint views on a real smoke sweep (LR1 and LR3 at 2048 steps with a
checkpoint every 512 steps, one seed), the oscillation rule on a hand-made trajectory, and the report written end
to end from those runs (the oscillation section, the sensitivity readings, the figures)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import PNG_MAGIC

from toymodels.reproduce import claim_sweeps, reproduce
from toymodels.reproduce.em_claims.judges import MIN_MONO_NEURONS, lr_phase
from toymodels.reproduce.em_claims.oscillation import PhaseViews, oscillation, phase_views
from toymodels.results.store import load

STEPS = 2048  # two periods of the lr: peaks at 1023 and 2047, troughs at 511 and 1535


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """(verdicts, report text, docs folder, LR1 Results) of `reproduce LR1 LR3 --scale smoke --steps 2048`."""
    root = tmp_path_factory.mktemp("em-osc")
    verdicts = reproduce(["LR1", "LR3"], scale="smoke", seeds=1, out_dir=root / "runs", docs_dir=root / "docs",
                         steps=STEPS)
    lr1 = load(root / "runs" / claim_sweeps("LR1", "smoke", 1, STEPS)["LR1"].name)
    return verdicts, (root / "docs" / "reproduction.md").read_text(), root / "docs", lr1


def test_lr_phase():
    # at the lr's peak or trough: the update that made the model ran at >= 99% or <= 1% of the base lr
    assert [lr_phase(t, "paper_cosine") for t in (511, 1023, 1535, 2047, 900, 600)] == [
        "trough", "peak", "trough", "peak", "", ""]
    assert lr_phase(1023, "cosine") == ""


def test_views_at_the_last_peak_and_trough(smoke):
    _, _, _, lr1 = smoke
    views = phase_views(lr1, "LR1")
    assert (views.peak_step, views.trough_step) == (STEPS - 1, STEPS - 1 - 512)
    # the final step is the last peak: its view is the final model, its window loss the final loss
    peak = views.peak.instances.set_index("run_id")
    final = lr1.instances.set_index("run_id")
    for col in ("mono_per_feature", "mono_neurons", "mean_bias", "dead_neurons", "final_loss"):
        np.testing.assert_allclose(peak[col], final.loc[peak.index, col], rtol=1e-6, err_msg=col)
    # the trough view reads checkpoint 1535 and the mean of the 8 logged losses at steps 1408..1520
    trough = views.trough.instances.set_index("run_id")
    m = lr1.metrics
    for rid in trough.index:
        at = m[(m["run_id"] == rid) & (m["step"] == views.trough_step)].set_index("name")["value"]
        assert trough.loc[rid, "mono_per_feature"] == pytest.approx(at["mono_per_feature"])
        logs = m[(m["run_id"] == rid) & (m["name"] == "loss") & m["step"].between(1408, 1535)]
        assert len(logs) == 8 and trough.loc[rid, "final_loss"] == pytest.approx(logs["value"].mean())
    assert set(views.trough.instances["checkpoint_step"]) == {views.trough_step}
    osc = oscillation(views)
    assert list(osc.table["lr"]) == [f"{lr:g}" for lr in sorted(lr1.instances["lr"].unique())]


def test_no_views_without_a_trough_near_the_end(smoke):
    _, _, _, lr1 = smoke
    cut = lr1.metrics[lr1.metrics["step"] != STEPS - 1 - 512]
    assert phase_views(type(lr1)(lr1.folder, lr1.sweep, lr1.meta, lr1.instances, cut), "LR1") is None


def _hand_views(deltas: dict[float, list[float]], loss_deltas: dict[float, list[float]]) -> PhaseViews:
    """A trajectory with a trough (step 1535, 20 mono neurons) and a peak (2047, 20 + delta) per lr and seed."""
    rows = []
    for lr, ds in deltas.items():
        for seed, (d, dl) in enumerate(zip(ds, loss_deltas[lr])):
            rid = f"{lr}-{seed}"
            for step, n, loss in ((1535, 20.0, 0.3), (2047, 20.0 + d, 0.3 + dl)):
                rows.append({"run_id": rid, "step": step, "lr": lr, "seed": seed, "mono_neurons": n,
                             "mono_per_feature": n / 128, "loss": loss})
    return PhaseViews("LR1", 2047, 1535, pd.DataFrame(rows), None, None)


def test_the_oscillation_rule():
    f = MIN_MONO_NEURONS
    osc = oscillation(_hand_views({0.001: [0, 1], 0.01: [f, -f], 0.03: [f, 2 * f]},
                                  {0.001: [0.0, 0.0], 0.01: [0.1, 0.1], 0.03: [0.05, 0.02]}))
    assert osc.matters_at == (0.03,) and osc.matters_at_top  # same sign and >= the floor in every seed
    assert osc.tradeoff_at == (0.03,)  # the loss rose with the count in both seeds (at 0.01 the count did not)
    osc = oscillation(_hand_views({0.03: [2 * f, f - 1]}, {0.03: [-0.1, -0.1]}))
    assert osc.matters_at == () and not osc.matters_at_top and osc.tradeoff_at == ()
    assert list(osc.table["peak minus trough, mono neurons per seed"]) == [f"{2 * f:+d}, {f - 1:+d}"]


def test_report_end_to_end_with_peaks_and_troughs(smoke):
    verdicts, text, docs, _ = smoke
    assert [v.claim for v in verdicts] == ["LR1", "LR3"]
    lr1, lr3 = verdicts
    labels1 = [s.label for s in lr1.details["sensitivity"]]
    assert labels1 == [f"LR1 at the last lr trough (step {STEPS - 513})", "LR1-clamp (LAMB clamp 2.5)"]
    labels3 = [s.label for s in lr3.details["sensitivity"]]
    assert labels3[0].startswith("LR3 at the last lr trough") and "LR3-rescaled (decay 1.92) vs LR1" in labels3
    assert "LR3-clamp (LAMB clamp 2.5) vs LR1-clamp" in labels3
    # the verdict table shows each sensitivity verdict next to the primary one
    sens = "; ".join(f"{s.label}: {s.verdict.verdict}" for s in lr1.details["sensitivity"])
    assert f"| {lr1.title} | **{lr1.verdict}** | {sens} |" in text
    for s in lr3.details["sensitivity"]:
        assert f"| {s.label} | {s.verdict.verdict} | {s.verdict.reason} |" in text
    # the oscillation finding: its rule, a computed sentence per sweep, the figure
    assert "## The periodic learning rate: models at its peaks and troughs" in text
    assert f"- LR1 (last trough step {STEPS - 513}, last peak step {STEPS - 1}): the oscillation matters at " in text
    assert "(figures/em_oscillation.png)" in text
    assert (docs / "figures" / "em_oscillation.png").read_bytes()[:8] == PNG_MAGIC
    # the setup is read from the configs: per-step decay of Table 1, the clamp, the checkpoints
    assert "LR3 0.03 (Table 1's, per step)" in text and "`LR3-rescaled`: decay 1.92 = 0.03 x 64" in text
    assert "with clamp 10, relative steps 0.54 lr and 0.77 lr at the start" in text
    assert "- Checkpoints: a model every 512 steps (every peak and trough of the periodic lr) in LR1, " in text
    assert "step 2047 of paper_cosine, a peak of the periodic lr" in text
    assert "behaved most like the paper" not in text and "**Other sources (not the paper):**" in text
