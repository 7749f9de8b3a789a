"""Seed aggregation and value formatting: the one place the report, the figures, the dashboard and the
reproduction studies turn a results table into settings, means over seeds and short text.

A *setting* is one combination of the swept fields other than ``seed``; its seeds are aggregated over the
instances that did not diverge (a diverged instance has no trained model to describe).

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"lr": [0.1, 0.1, 0.2], "status": ["ok", "ok", "diverged"], "final_loss": [1.0, 3.0, 9.0]})
    >>> stats = seed_stats(df, ["lr"], ["final_loss"])
    >>> stats["final_loss"].tolist(), stats["n"].tolist(), stats["instances"].tolist()
    ([2.0, nan], [2, 0], [2, 1])
    >>> format_value(0.001), format_value(1000.0), format_number(0.0123456), mean_std(0.5, 0.01)
    ('0.001', '1000', '0.0123', '0.5 ± 0.01')
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

#: a ``store.Results`` (not imported: ``store`` reads through ``verify``, which formats with this module)
Results = Any


def py_value(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (other values unchanged)."""
    return value.item() if hasattr(value, "item") else value


def is_number(value: Any) -> bool:
    value = py_value(value)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def format_value(value: Any) -> str:
    """A config value as a short label: 0.001, 1000, -0.5, 'relu'."""
    value = py_value(value)
    if not is_number(value):
        return str(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.3g}"


def format_number(x: float) -> str:
    """A measured number: three significant digits; scientific outside [1e-3, 1e5); '-' for NaN."""
    if x is None or not math.isfinite(x):
        return "-"
    ax = abs(x)
    if x == 0:
        return "0"
    if ax < 1e-3 or ax >= 1e5:
        return f"{x:.2e}"
    return f"{x:.0f}" if ax >= 100 else f"{x:.3g}"


def mean_std(mean: float, std: float, digits: int = 3) -> str:
    """'mean ± std' ('n/a' for a missing mean, the mean alone when the spread is 0 or unknown)."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    if std is None or not math.isfinite(std) or std <= 0:
        return f"{mean:.{digits}g}"
    return f"{mean:.{digits}g} ± {std:.1g}"


def seed_stats(instances: pd.DataFrame, by: Sequence[str], columns: Sequence[str]) -> pd.DataFrame:
    """Per setting (``by``): mean and sample std (``<col>_std``, 0 for one seed) of ``columns`` over the instances
    with status ``ok``, ``n`` (those instances) and ``instances`` (all of the setting's). Settings whose every
    instance diverged keep a row with NaN means. Sorted by ``by``; with no ``by``, one row for all instances.
    """
    import pandas as pd  # deferred: ~70 MB that a training process does not need

    by = list(by)
    cols = [c for c in columns if c in instances.columns]
    frame = instances.assign(_all=0) if not by else instances
    keys = by or ["_all"]
    ok = frame[frame["status"] == "ok"]
    grouped = ok.groupby(keys)[cols]
    total = frame.groupby(keys).size().rename("instances")
    out = pd.concat([grouped.mean(), grouped.std(ddof=1).fillna(0.0).add_suffix("_std"),
                     grouped.size().rename("n")], axis=1).reindex(total.index)
    out["n"] = out["n"].fillna(0).astype(int)
    out = pd.concat([out, total], axis=1).reset_index()
    out = out.drop(columns=["_all"]) if not by else out.sort_values(by).reset_index(drop=True)
    return out


def setting_fields(results: Results) -> list[str]:
    """Swept fields other than seed: the ones that define a setting (seeds of a setting are aggregated)."""
    return [f for f in results.sweep.swept_fields() if f != "seed" and f in results.instances.columns]


def settings(results: Results) -> list[tuple[tuple, pd.DataFrame]]:
    """(setting values, its instances' rows) for every setting, in the sweep's grid order."""
    inst = results.instances
    fields = setting_fields(results)
    if not fields:
        return [((), inst)] if len(inst) else []
    order = {f: {py_value(v): i for i, v in enumerate(results.sweep.grid.get(f, []))} for f in fields}
    keys: list[tuple] = []
    for _, row in inst.iterrows():
        key = tuple(py_value(row[f]) for f in fields)
        if key not in keys:
            keys.append(key)
    keys.sort(key=lambda k: tuple(order[f].get(v, len(order[f])) for f, v in zip(fields, k)))
    out = []
    for key in keys:
        mask = np.ones(len(inst), dtype=bool)
        for f, v in zip(fields, key):
            mask &= (inst[f].map(py_value) == v).to_numpy()
        out.append((key, inst[mask]))
    return out


def setting_label(fields: Sequence[str], key: tuple) -> str:
    return ", ".join(f"{f}={format_value(v)}" for f, v in zip(fields, key)) or "all instances"
