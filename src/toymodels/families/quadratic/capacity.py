"""The capacity allocation of one quadratic-model instance, as the family's figures, dashboard panel and report
section show it (torch and numpy only: no matplotlib, no plotly).

``capacity_view(results, run_id, step)`` gives each feature's importance v_i, trained capacity C_i and the optimal
allocation of the capacity theory (``quadratic_capacity_theory`` for the instance's D and kurtosis K), W^T W, and
the instance's expected and optimal losses.
"""

from __future__ import annotations

from typing import Any

import torch

from toymodels import metrics
from toymodels.families.quadratic import CAPACITY_TOLERANCE, quadratic_capacity_theory, quadratic_expected_loss
from toymodels.results.store import Results

#: an expected loss this much above the optimum (relative) is not at it: a local minimum, or not converged yet
OFF_OPTIMUM = 0.01


def capacity_view(results: Results, run_id: str, step: int | None = None) -> dict[str, Any]:
    """One instance at checkpoint ``step`` (default: the final model): numpy ``importance``, ``capacity`` (C_i),
    ``theory`` (the optimal C_i), ``gram`` (W^T W), ``norms2`` (M_ii = ||W_i||^2); floats ``kurtosis``,
    ``expected_loss``, ``optimal_loss``, ``bias``; int ``D``; ``off_optimum`` (expected loss more than 1% above
    the optimum: a local minimum, or not trained to convergence)."""
    t = results.params(run_id, step)
    row = results.row(run_id)
    W, b, v = t["W"].to(torch.float64), t["b"].to(torch.float64), t["importance"].to(torch.float64)
    K, D = float(row["kurtosis"]), int(W.shape[0])
    theory, optimal = quadratic_capacity_theory(v, D, K)
    expected = float(quadratic_expected_loss(W[None], b.reshape(1), v[None], K)[0])
    return {
        "importance": v.numpy(), "capacity": metrics.capacity(W[None])[0].numpy(), "theory": theory.numpy(),
        "gram": (W.T @ W).numpy(), "norms2": W.pow(2).sum(0).numpy(), "kurtosis": K, "D": D,
        "expected_loss": expected, "optimal_loss": float(optimal), "bias": float(b),
        "off_optimum": expected > (1 + OFF_OPTIMUM) * float(optimal), "tolerance": CAPACITY_TOLERANCE,
    }


def capacity_counts(capacity: Any, tolerance: float = CAPACITY_TOLERANCE) -> dict[str, int]:
    """Features with a dimension of their own (C_i > 1 - tolerance), fractional (in between) and ignored
    (C_i < tolerance)."""
    c = torch.as_tensor(capacity)
    return {"monosemantic": int((c > 1 - tolerance).sum()),
            "fractional": int(((c >= tolerance) & (c <= 1 - tolerance)).sum()),
            "ignored": int((c < tolerance).sum())}
