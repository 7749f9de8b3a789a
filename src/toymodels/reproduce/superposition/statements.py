"""What each superposition claim says (its title and the paper's statement, shown in docs/superposition.md), and
the one way the study writes a spread over seeds or restarts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: preset -> (the claim in one line, what the paper says)
STATEMENTS: dict[str, tuple[str, str]] = {
    "TMS-intro": ("Superposition appears with sparsity (n=5, m=2)",
                  ("Dense features: the model keeps the 2 most important features in orthogonal directions and "
                  "drops the rest (||W_i|| ~ 0). Sparsest: all 5 features are represented as a pentagon-like "
                  "arrangement, with negative biases (TMS intro figure).")),
    "TMS-basic": ("Only the nonlinear model uses superposition (n=20, m=5)",
                  ("The linear model keeps the m = 5 most important features at every sparsity; so does the ReLU "
                  "model when the features are dense, and as they get sparser it represents more features "
                  "(||W_i|| > 0.5) in superposition (TMS 'Basic Results'). The paper gives no count; a replication "
                  "at the notebook's budget (adonath, one run) counts 5, 7, 9, 10, 11, 11, 12 represented features "
                  "from 1-S = 1 to 0.001.")),
    "TMS-dim": ("D* sticks at 1/2 and D_i sits on polytope fractions (n=200, m=20)",
                ("D* = m/||W||_F^2 is ~1 dense and 'sticky' at 1/2 (antipodal pairs) over a range of "
                "sparsities; per-feature D_i cluster on 1/2, 3/4, 2/3, 2/5, 3/8 (only ~26% of features lie "
                "within 0.02 of the fractions in the authors' own run) (TMS 'Feature Dimensionality'). A replication "
                "at the notebook's budget (adonath) has 4 levels within 0.03 of 1/2 and clusters at 2/3 and 2/5.")),
    "TMS-phase": ("First-order phase change between dropping a feature and an antipodal pair (n=2, m=1)",
                  ("The antipodal solution W=[w,-w] wins only for sparse features of comparable importance, its "
                  "region widening as density falls; the switch of the best solution is abrupt (TMS 'Phase "
                  "Change'; blurry near the triple point per McGrath).")),
    "PC-kurtosis": ("Input kurtosis decides mono- vs polysemantic capacity (quadratic model, n=8, D=4)",
                    ("K < 3: capacities are all-or-nothing (the D most important features get C=1); K > 3: "
                    "less important features get fractional capacity; sum_i C_i = D; the expected loss is "
                    "L = (K-1) sum_i (v_i - M_ii)^2 + 2 sum_{i!=j} M_ij^2 (+ a bias term) (P&C Sec. 3).")),
}


def spread_text(values: Sequence[float], fmt: str = ".2f") -> str:
    """'mean ± sd (min–max)' over seeds or restarts, or the single value."""
    a = np.asarray(list(values), dtype=float)
    if a.size == 1:
        return format(a[0], fmt)
    return f"{format(a.mean(), fmt)} ± {format(a.std(ddof=1), fmt)} ({format(a.min(), fmt)}–{format(a.max(), fmt)})"
