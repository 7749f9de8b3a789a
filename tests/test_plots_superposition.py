"""Superposition figures drawn from hand-built tables (no training), and the geometry helpers behind them."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from toymodels import plots_superposition as ps

PNG = b"\x89PNG\r\n\x1a\n"


def polygon(n: int, m: int = 2, scale: float = 1.0) -> np.ndarray:
    a = 2 * np.pi * np.arange(n) / n
    W = np.zeros((m, n))
    W[0], W[1] = np.cos(a) * scale, np.sin(a) * scale
    return W


def rows(**cols) -> pd.DataFrame:
    n = len(next(iter(cols.values())))
    df = pd.DataFrame({k: v for k, v in cols.items() if k not in ("W", "b", "importance")})
    for k in ("W", "b", "importance"):
        if k in cols:
            df[k] = pd.Series(list(cols[k]), dtype=object)
    df["run_id"] = [f"r{i:04d}" for i in range(n)]
    df["status"] = "ok"
    return df


def is_png(path) -> bool:
    return path.exists() and path.read_bytes()[:8] == PNG and path.stat().st_size > 5000


# ------------------------------------------------------------------------------------------------------ helpers
def test_capacities_and_superposition_of_polygons():
    np.testing.assert_allclose(ps.capacities(polygon(5)), [0.4] * 5)
    np.testing.assert_allclose(ps.capacities(np.array([[1.0, -1.0, 0.0]])), [0.5, 0.5, 0.0])
    np.testing.assert_allclose(ps.superposition(polygon(4)), [1.0] * 4)  # square: one antipodal partner each
    np.testing.assert_allclose(ps.superposition(np.eye(3)), [0.0] * 3)


@pytest.mark.parametrize("w,label", [([1.0, 0.02], "feature 1"), ([0.1, -0.9], "feature 2"),
                                     ([0.9, -0.8], "antipodal"), ([0.7, 0.7], "other"), ([0.1, 0.2], "other")])
def test_phase_label(w, label):
    assert ps.phase_label(np.array([w])) == label


def test_antipodal_boundary_matches_the_candidate_losses_and_is_symmetric():
    # PAPERS.md §2.3: L([1,0]) = r(rho/3 - rho^2/4), L([1,-1]) = (1+r) rho^2/6 cross at rho = 4r/(2+5r)
    for r in (0.1, 0.5, 1.0):
        rho = float(ps.antipodal_boundary(r))
        assert r * (rho / 3 - rho**2 / 4) == pytest.approx((1 + r) * rho**2 / 6)
    assert float(ps.antipodal_boundary(1.0)) == pytest.approx(4 / 7)
    for r in (0.2, 0.5, 3.0):
        assert float(ps.antipodal_boundary(r)) == pytest.approx(float(ps.antipodal_boundary(1 / r)))
    assert ps.analytic_phase(0.2, 1.0) == "feature 1" and ps.analytic_phase(5.0, 1.0) == "feature 2"
    assert ps.analytic_phase(1.0, 0.05) == "antipodal"


def test_lowest_loss_keeps_the_best_restart_and_ignores_diverged():
    df = rows(eps=[1.0, 1.0, 1.0, 0.1], seed=[0, 1, 2, 0], final_loss=[0.3, 0.1, 0.05, 0.2])
    df.loc[2, "status"] = "diverged"
    best = ps.lowest_loss(df, ["eps"])
    assert sorted(best["seed"].tolist()) == [0, 1] and best["final_loss"].tolist() == [0.2, 0.1]


# ------------------------------------------------------------------------------------------------------ figures
def test_plot_intro(tmp_path):
    eps = [1.0, 0.3, 0.05]
    Ws = [np.c_[np.eye(2), np.zeros((2, 3))], polygon(5) * [[1], [0.8]], polygon(5)]
    imp = [0.9 ** np.arange(5)] * 3
    df = rows(eps=eps, seed=[0] * 3, final_loss=[0.1] * 3, W=Ws, b=[-0.1 * np.ones(5)] * 3, importance=imp)
    assert is_png(ps.plot_intro(df, tmp_path / "intro.png"))


def test_plot_basic(tmp_path):
    g = np.random.default_rng(0)
    recs = []
    for variant in ("relu", "linear"):
        for eps in (1.0, 0.01):
            recs.append(dict(tms_variant=variant, eps=eps, seed=0, final_loss=0.1, W=g.normal(size=(5, 20)) * 0.4))
    df = rows(**{k: [r[k] for r in recs] for k in recs[0]})
    assert is_png(ps.plot_basic(df, tmp_path / "basic.png"))


def test_plot_dims(tmp_path):
    g = np.random.default_rng(1)
    recs = []
    for seed in (0, 1):
        for eps in (1.0, 0.3, 0.1, 0.05):
            W = np.zeros((4, 12))
            W[:, :4] = np.eye(4)
            W[:2, 4:9] = polygon(5)
            W[2:, 9:11] = [[1, -1], [0, 0]]
            recs.append(dict(eps=eps, seed=seed, final_loss=0.1, W=W + g.normal(size=W.shape) * 0.01))
    df = rows(**{k: [r[k] for r in recs] for k in recs[0]})
    assert is_png(ps.plot_dims(df, tmp_path / "dims.png"))


def phase_df(rs, es, restarts=2, noise=0.0) -> pd.DataFrame:
    """Each cell: one restart at the analytic winner (lowest loss) and others at a worse solution."""
    g = np.random.default_rng(2)
    sol = {"feature 1": [1.0, 0.0], "feature 2": [0.0, 1.0], "antipodal": [1.0, -1.0]}
    recs = []
    for r in rs:
        for e in es:
            win = ps.analytic_phase(r, e)
            for s in range(restarts):
                w = np.array(sol[win] if s == 0 else sol["feature 2" if win == "feature 1" else "feature 1"])
                recs.append(dict(importance_ratio=r, eps=e, seed=s, final_loss=0.1 + s,
                                 W=(w + g.normal(size=2) * noise)[None, :]))
    return rows(**{k: [r[k] for r in recs] for k in recs[0]})


def test_phase_table_and_plot(tmp_path):
    rs, es = list(np.geomspace(0.1, 10, 5)), list(np.geomspace(0.01, 1, 4))
    df = phase_df(rs, es)
    tab = ps.phase_table(df)
    assert len(tab) == 20 and (tab["phase"] == tab["analytic"]).all()
    assert (tab["found_by"] == 0.5).all() and (tab["restarts"] == 2).all()
    assert is_png(ps.plot_phase(df, tmp_path / "phase.png"))


def test_plot_capacity(tmp_path):
    g = np.random.default_rng(3)
    v = 0.8 ** np.arange(8)
    recs = []
    for K in (1.5, 3.0, 10.0):
        for s in range(2):
            recs.append(dict(kurtosis=K, seed=s, final_loss=1.0 + s, expected_loss=1.0 + s,
                             W=g.normal(size=(4, 8)) * 0.5, importance=v))
    df = rows(**{k: [r[k] for r in recs] for k in recs[0]})
    theory = {1.5: np.r_[np.ones(4), np.zeros(4)], 10.0: np.linspace(1, 0.05, 8)}
    assert is_png(ps.plot_capacity(df, theory, tmp_path / "pc.png"))
    assert math.isclose(float(theory[10.0][0]), 1.0)


def test_tms_eval_loss_matches_the_model_and_uses_common_inputs():
    import torch

    from toymodels.models import TMSModel

    assert ps.tms_eval_loss(np.eye(3), np.zeros(3), np.ones(3), 0.5) == 0.0  # identity: perfect reconstruction
    g = np.random.default_rng(4)
    W, b, imp = g.normal(size=(2, 5)), g.normal(size=5) * 0.1, 0.9 ** np.arange(5)
    for variant in ("relu", "linear", "hidden_relu"):
        ours = ps.tms_eval_loss(W, b, imp, 0.3, variant, samples=4096, seed=1)
        rng = np.random.default_rng([1, 5, int(round(0.3 * 1e9))])
        x = rng.random((4096, 5)) * (rng.random((4096, 5)) < 0.3)
        model = TMSModel(torch.tensor(W)[None], torch.tensor(b)[None], torch.tensor(imp)[None], variant)
        ref = model.losses(torch.tensor(x)[None], "decoder", with_l1=False)[0].item()
        assert ours == pytest.approx(ref, rel=1e-10)
