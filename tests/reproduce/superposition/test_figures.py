"""Superposition figures drawn from hand-built tables (no training), and the tables and geometry behind them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import png_size, polygon, weights_table

from toymodels.families.quadratic import quadratic_expected_loss
from toymodels.families.tms import TMSModel, represented
from toymodels.plotting.save import DPI
from toymodels.reproduce.superposition import figures as sf
from toymodels.reproduce.superposition.data import (
    analytic_phase,
    antipodal_boundary,
    eval_inputs,
    lowest_loss,
    measured_quadratic_loss,
    phase_label,
    phase_table,
    stacked,
    tms_eval_losses,
)


def assert_figure(path, width_in: float, height_in: float) -> None:
    """A PNG of exactly the figure's size at the shared DPI: written by figures.save, nothing cropped."""
    width, height = png_size(path)
    assert abs(width - width_in * DPI) <= 1 and abs(height - height_in * DPI) <= 1
    assert path.stat().st_size > 5000


# ------------------------------------------------------------------------------------------------------ tables
@pytest.mark.parametrize("w,label", [([1.0, 0.02], "feature 1"), ([0.1, -0.9], "feature 2"),
                                     ([0.9, -0.8], "antipodal"), ([0.7, 0.7], "other"), ([0.1, 0.2], "other")])
def test_phase_label(w, label):
    assert phase_label(np.array([w])) == label


def test_antipodal_boundary_matches_the_candidate_losses_and_is_symmetric():
    # docs/papers.md §2.3: L([1,0]) = r(rho/3 - rho^2/4), L([1,-1]) = (1+r) rho^2/6 cross at rho = 4r/(2+5r)
    for r in (0.1, 0.5, 1.0):
        rho = float(antipodal_boundary(r))
        assert r * (rho / 3 - rho**2 / 4) == pytest.approx((1 + r) * rho**2 / 6)
    assert float(antipodal_boundary(1.0)) == pytest.approx(4 / 7)
    for r in (0.2, 0.5, 3.0):
        assert float(antipodal_boundary(r)) == pytest.approx(float(antipodal_boundary(1 / r)))
    assert analytic_phase(0.2, 1.0) == "feature 1" and analytic_phase(5.0, 1.0) == "feature 2"
    assert analytic_phase(1.0, 0.05) == "antipodal"


def test_lowest_loss_keeps_the_best_restart_and_ignores_diverged():
    df = weights_table(eps=[1.0, 1.0, 1.0, 0.1], seed=[0, 1, 2, 0], final_loss=[0.3, 0.1, 0.05, 0.2])
    df.loc[2, "status"] = "diverged"
    best = lowest_loss(df, ["eps"])
    assert sorted(best["seed"].tolist()) == [0, 1] and best["final_loss"].tolist() == [0.2, 0.1]


def test_represented_uses_the_tms_norm_threshold():
    W = stacked([np.array([[0.6, 0.4, 0.0], [0.0, 0.0, 0.0]])])
    assert represented(W).tolist() == [[True, False, False]]


def test_tms_eval_losses_rank_restarts_on_common_inputs():
    g = np.random.default_rng(4)
    W, b, imp = g.normal(size=(2, 5)), g.normal(size=5) * 0.1, 0.9 ** np.arange(5)
    df = weights_table(eps=[0.3, 0.3, 0.3, 0.05], tms_variant=["relu", "relu", "linear", "relu"],
                       W=[W, np.eye(5)[:2] * 0.0, W, W], b=[b, np.zeros(5), b, b], importance=[imp] * 4)
    losses = tms_eval_losses(df, samples=4096, seed=1)
    # each row is the TMS model's own loss on the inputs of its density, the same for every restart of a setting
    x = torch.as_tensor(eval_inputs(5, 0.3, 4096, seed=1))
    for i, variant in [(0, "relu"), (2, "linear")]:
        t = {"W": torch.tensor(W)[None], "b": torch.tensor(b)[None], "importance": torch.tensor(imp)[None]}
        ref = TMSModel.from_tensors(t, variant).losses(x[None], "decoder", with_l1=False)[0].item()
        assert losses[i] == pytest.approx(ref, rel=1e-12)
    assert losses[1] == pytest.approx(float((imp * x.numpy() ** 2).mean()))  # W = 0, b = 0: the output is 0
    assert losses[3] != losses[0]  # another density, other inputs
    identity = weights_table(eps=[0.5], tms_variant=["relu"], W=[np.eye(3)], b=[np.zeros(3)], importance=[np.ones(3)])
    assert tms_eval_losses(identity)[0] == 0.0  # W^T W = I: perfect reconstruction


def test_measured_quadratic_loss_matches_the_closed_form():
    g = np.random.default_rng(5)
    W, v = g.normal(size=(4, 8)) * 0.5, 0.8 ** np.arange(8)
    for K in (2.0, 10.0):
        mean, se = measured_quadratic_loss(W, 0.3, v, K, samples=2**16, seed=7)
        exact = float(quadratic_expected_loss(torch.as_tensor(W), torch.tensor(0.3), torch.as_tensor(v), K))
        assert abs(mean - exact) <= 4 * se and se < 0.05 * exact


# ----------------------------------------------------------------------------------------------------- figures
def test_plot_intro(tmp_path):
    eps = [1.0, 0.3, 0.05]
    Ws = [np.c_[np.eye(2), np.zeros((2, 3))], polygon(5) * [[1], [0.8]], polygon(5)]
    df = weights_table(eps=eps, seed=[0] * 3, final_loss=[0.1] * 3, W=Ws, b=[-0.1 * np.ones(5)] * 3,
                       importance=[0.9 ** np.arange(5)] * 3)
    assert_figure(sf.plot_intro(df, tmp_path / "intro.png"), 2.4 * 3 + 1.0, 2.55 + 0.5)


def test_plot_basic(tmp_path):
    g = np.random.default_rng(0)
    recs = [{"tms_variant": variant, "eps": eps, "seed": 0, "final_loss": 0.1, "W": g.normal(size=(5, 20)) * 0.4}
            for variant in ("relu", "linear") for eps in (1.0, 0.01)]
    df = weights_table(**{k: [r[k] for r in recs] for k in recs[0]})
    assert_figure(sf.plot_basic(df, tmp_path / "basic.png"), 1.7 * 2 + 1.6, 4.4 * 2)


def test_plot_dims(tmp_path):
    g = np.random.default_rng(1)
    recs = []
    for seed in (0, 1):
        for eps in (1.0, 0.3, 0.1, 0.05):
            W = np.zeros((4, 12))
            W[:, :4] = np.eye(4)
            W[:2, 4:9] = polygon(5)
            W[2:, 9:11] = [[1, -1], [0, 0]]
            recs.append({"eps": eps, "seed": seed, "final_loss": 0.1, "W": W + g.normal(size=W.shape) * 0.01})
    df = weights_table(**{k: [r[k] for r in recs] for k in recs[0]})
    assert_figure(sf.plot_dims(df, tmp_path / "dims.png"), 12, 4.6)


def phase_df(rs, es, restarts=2) -> pd.DataFrame:
    """Each cell: one restart at the analytic winner (lowest loss) and others at a worse solution."""
    sol = {"feature 1": [1.0, 0.0], "feature 2": [0.0, 1.0], "antipodal": [1.0, -1.0]}
    recs = []
    for r in rs:
        for e in es:
            win = analytic_phase(r, e)
            for s in range(restarts):
                w = sol[win] if s == 0 else sol["feature 2" if win == "feature 1" else "feature 1"]
                recs.append({"importance_ratio": r, "eps": e, "seed": s, "final_loss": 0.1 + s, "W": np.array([w])})
    return weights_table(**{k: [r[k] for r in recs] for k in recs[0]})


def test_phase_table_and_plot(tmp_path):
    df = phase_df(list(np.geomspace(0.1, 10, 5)), list(np.geomspace(0.01, 1, 4)))
    tab = phase_table(df)
    assert len(tab) == 20 and (tab["phase"] == tab["analytic"]).all()
    assert (tab["found_by"] == 0.5).all() and (tab["restarts"] == 2).all()
    assert_figure(sf.plot_phase(df, tmp_path / "phase.png"), 11, 4.9)


def test_plot_capacity(tmp_path):
    g = np.random.default_rng(3)
    v = 0.8 ** np.arange(8)
    recs = [{"kurtosis": K, "seed": s, "final_loss": 1.0 + s, "expected_loss": 1.0 + s,
             "W": g.normal(size=(4, 8)) * 0.5, "importance": v} for K in (1.5, 3.0, 10.0) for s in range(2)]
    df = weights_table(**{k: [r[k] for r in recs] for k in recs[0]})
    theory = {1.5: np.r_[np.ones(4), np.zeros(4)], 10.0: np.linspace(1, 0.05, 8)}
    assert_figure(sf.plot_capacity(df, theory, tmp_path / "pc.png"), 11, 4.3)
