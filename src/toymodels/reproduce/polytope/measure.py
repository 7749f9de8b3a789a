"""The table the polytope judges read: the polytope lens of each family's source folder at its final checkpoint
(``families.polytope.lens_table(results, final_only=True)``), one row per model, with what the rules need beside
the lens's measures: the family, its setting (the swept knob), its monosemantic axis, its measured monosemanticity
and (TMS) the share of its features it represents. Which rows count is a rule (``rules``): models that did not
diverge, and for the SAE only those as wide as the number of true features.

Example:
    >>> list(EXTRA)
    ['mono_per_feature', 'superposition', 'mcc', 'represented_features', 'N', 'sae_width']
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from toymodels.families.polytope import lens_table
from toymodels.reproduce.polytope.rules import (
    AXES,
    CHECKPOINT,
    MONO,
    SAE_AT_N,
    SETTINGS,
)
from toymodels.results.store import Results

#: the instance columns joined to the lens table where a folder has them
EXTRA = ("mono_per_feature", "superposition", "mcc", "represented_features", "N", "sae_width")
#: the columns every family's table carries before the lens's measures
KEYS = ("family", "run_id", "seed", "setting", "axis", "mono", "represented_share")


def family_table(family: str, results: Results) -> pd.DataFrame:
    """The lens of ``results`` (one of the study's sources) as the judges read it (module docstring); an empty
    table when the models have no ReLU layers or nothing finished."""
    lens = lens_table(results, final_only=CHECKPOINT == "final")
    if lens.empty:
        return pd.DataFrame(columns=list(KEYS))
    inst = results.instances.set_index("run_id")
    extra = inst[[c for c in EXTRA if c in inst.columns and c not in lens.columns]]
    lens = lens[lens["status"] == "ok"].join(extra, on="run_id")
    if family == "SAE" and SAE_AT_N and {"N", "sae_width"} <= set(lens.columns):
        lens = lens[lens["sae_width"] == lens["N"]]
    if lens.empty:
        return pd.DataFrame(columns=list(KEYS))
    mono_col, _ = MONO[family]
    out = pd.DataFrame({
        "family": family, "run_id": lens["run_id"], "seed": lens["seed"].astype(int),
        "setting": lens[SETTINGS[family]].astype(float), "axis": lens[AXES[family]].astype(float),
        "mono": lens[mono_col].astype(float) if mono_col in lens else np.nan,
        "represented_share": (lens["represented_features"] / lens["N"]).astype(float)
        if {"represented_features", "N"} <= set(lens.columns) else 1.0})
    measures = [c for c in lens.columns if c not in (*EXTRA, *SETTINGS.values(), "run_id", "seed", "status", "step",
                                                        "note", "mcc")]
    out = pd.concat([out, lens[measures]], axis=1)
    out["note"] = lens["note"]
    return out.reset_index(drop=True)


def study_table(sources: dict[str, Results]) -> pd.DataFrame:
    """Every family's table (``family_table``) stacked, families in ``sources``' order."""
    parts = [family_table(family, res) for family, res in sources.items()]
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(KEYS))
