"""What a results folder's report and dashboard say about its config and its summary columns, for any family.

``config_fields(results)`` splits the fixed (not swept) config fields into those shown (the family's own fields,
the main optimisation fields and every field the family reads that is not at its default; an own field left empty
is not shown) and those folded away (fields the family reads, at their defaults); fields the family does not read
are not shown at all (an EM sweep's header lists no SAE or hierarchy field). ``column_descriptions(results,
columns)`` says what each column of the summary table (or the instance table) is: the family's
``presentation.descriptions``, then the generic columns', then a swept field's description from its config
section.

Example:
    >>> shown, folded = config_fields(tm.load("runs/LR1-quick"))   # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, Sequence

from toymodels.config.experiment import FIELDS, SECTIONS
from toymodels.config.registry import get_family

#: the optimisation fields every report shows, at their defaults too
MAIN_OPTIM = ("optimizer", "lr", "schedule", "batch_size", "steps")
#: sections every family reads (``ModelFamily.fields`` lists the others)
COMMON_SECTIONS = ("optim", "run")
#: sections whose fields are shown only when they differ from their defaults (how features fire together)
QUIET_SECTIONS = ("firing",)

#: the columns of the summary table every family has, and the instance table's generic ones
GENERIC_COLUMNS = {
    "seeds": "instances of this setting (one per seed)",
    "status": "how the seeds ended: ok (trained) or diverged (a non-finite loss or parameter froze it)",
    "ok": "seeds that trained", "diverged": "seeds that diverged",
    "final_loss": "mean of the last 8 logged task losses of the final model",
    "run_id": "the instance's id in this folder (results.model(run_id) rebuilds it)",
    "seed": "the instance's seed (its initialisation and data)",
    "diverged_at": "the step at which a diverged instance stopped (-1: it did not)",
}


#: what the config fields without a description of their own are
FIELD_WORDS = {
    "lr": "learning rate", "optimizer": "the optimizer", "schedule": "the learning-rate schedule",
    "batch_size": "samples per training step", "steps": "training steps", "task": "what the model is trained to output",
    "distribution": "how the feature probabilities vary over the features (uniform or power_law)",
    "nonlinearity": "the hidden layer's activation function",
}


def default(name: str) -> Any:
    """The default value of flat field ``name`` (its section's)."""
    info = SECTIONS.get(FIELDS[name]).model_fields[name]
    return info.get_default(call_default_factory=True)


def field_description(name: str) -> str:
    """The config field's own description ('' when it has none or is no config field)."""
    if name not in FIELDS:
        return ""
    return SECTIONS.get(FIELDS[name]).model_fields[name].description or FIELD_WORDS.get(name, "")


def family_reads(model: str) -> list[str]:
    """The flat fields a family reads: ``model``, its ``fields`` and the sections every family reads."""
    own = set(get_family(model).fields) | {"model"}
    return [f for f in FIELDS if f in own or FIELDS[f] in COMMON_SECTIONS]


def config_fields(results: Any) -> tuple[list[str], list[str]]:
    """(shown, folded): the fixed fields of the sweep the report lists, in config order (module docstring)."""
    base = results.sweep.base.flat()
    model = base["model"]
    own = set(get_family(model).fields) | {"model"}
    shown, folded = [], []
    for name in family_reads(model):
        if name in results.sweep.grid:
            continue
        main = (name in own and FIELDS[name] not in QUIET_SECTIONS and base[name] not in (None, "")
                or name in MAIN_OPTIM)
        (shown if main or base[name] != default(name) else folded).append(name)
    return shown, folded


def column_descriptions(results: Any, columns: Sequence[str]) -> dict[str, str]:
    """Column -> what it is, for every column of ``columns`` that can be explained (a ``<metric>_std`` column: the
    standard deviation over seeds)."""
    presentation = get_family(results.sweep.base.model.model).presentation
    out = {}
    for col in columns:
        base = col[:-4] if col.endswith("_std") else col
        text = (presentation.describe(base) or GENERIC_COLUMNS.get(base, "")
                or (f"swept field: {field_description(base) or 'a config field'}" if base in FIELDS else ""))
        if text and col.endswith("_std"):
            text = f"standard deviation over seeds of: {text}"
        if text:
            out[col] = text
    return out
