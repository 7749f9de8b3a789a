"""The feature geometry of one TMS instance, as the family's figures, dashboard panel and report section show it
(torch and numpy only: no matplotlib, no plotly).

``feature_geometry(tensors)`` turns an instance's saved tensors (``Results.params``: W (hidden, features), b,
importance) into plain numpy arrays: W, W^T W, each feature's norm ||W_i||, superposition
sum_{j != i} (W_i_hat . W_j)^2 and dimensionality D_i, and the instance's D* and count of represented features.
``fraction_counts`` sorts the D_i onto the polytope fractions TMS names (docs/papers.md §2.3).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from toymodels import metrics
from toymodels.families.tms import TMS_REPRESENTED_NORM, represented

#: The per-feature dimensionalities TMS names (docs/papers.md §2.3): 1 for a dedicated dimension, tetrahedron 3/4,
#: triangle 2/3, antipodal pair 1/2, pentagon 2/5, square antiprism 3/8.
POLYTOPE_FRACTIONS: dict[str, float] = {"1": 1.0, "3/4": 0.75, "2/3": 2 / 3, "1/2": 0.5, "2/5": 0.4, "3/8": 0.375}
#: a D_i within this distance of a fraction counts as on it (the fractions 3/8 and 2/5 are 0.025 apart)
FRACTION_TOLERANCE = 0.01
#: a D_i below this is a feature that is not represented
NOT_REPRESENTED = 0.02


def feature_geometry(tensors: dict[str, Tensor]) -> dict[str, Any]:
    """One instance's geometry from its tensors (no instance axis): numpy ``W`` (hidden, features), ``gram``
    (W^T W), ``norms``, ``superposition``, ``dims`` (D_i), ``importance`` and ``bias`` per feature; floats
    ``dims_per_feature`` (D*) and int ``represented`` (features with ||W_i|| > ``TMS_REPRESENTED_NORM``)."""
    W = tensors["W"].to(torch.float64)[None]
    return {
        "W": W[0].numpy(), "gram": (W[0].T @ W[0]).numpy(), "norms": W[0].norm(dim=0).numpy(),
        "superposition": metrics.superposition(W)[0].numpy(), "dims": metrics.capacity(W)[0].numpy(),
        "importance": tensors["importance"].to(torch.float64).numpy(), "bias": tensors["b"].to(torch.float64).numpy(),
        "dims_per_feature": float(metrics.dims_per_feature(W)[0]), "represented": int(represented(W)[0].sum()),
        "threshold": TMS_REPRESENTED_NORM,
    }


def fraction_counts(dims: np.ndarray) -> dict[str, int]:
    """How many D_i sit on each polytope fraction (within ``FRACTION_TOLERANCE``), how many are not represented
    (D_i < ``NOT_REPRESENTED``) and how many are elsewhere ("other")."""
    dims = np.asarray(dims, dtype=float)
    counts = {name: int((np.abs(dims - f) <= FRACTION_TOLERANCE).sum()) for name, f in POLYTOPE_FRACTIONS.items()}
    counts["not represented"] = int((dims < NOT_REPRESENTED).sum())
    counts["other"] = int(dims.size - sum(counts.values()))
    return counts
