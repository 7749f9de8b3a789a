"""A config as Jupyter shows it (``_repr_html_`` of every frozen config, ``sections.Frozen``): the values that differ
from the defaults first, then every field in a folded table, a section per nested config (an ExperimentConfig's
data, model, ... and the families' own sections). It imports nothing from the package.

Example:
    >>> from toymodels.config import ExperimentConfig
    >>> page = config_html(ExperimentConfig.from_flat({"lr": 0.5}))
    >>> "<b>lr</b>" in page and "optim" in page
    True
"""

from __future__ import annotations

import html
from typing import Any

from pydantic import BaseModel


def _default(model: BaseModel, name: str) -> Any:
    """The default of field ``name`` of ``model``, or a marker that equals nothing when it has none."""
    info = type(model).model_fields.get(name)
    if info is not None and not info.is_required():
        return info.get_default(call_default_factory=True)
    return object()


def rows(model: BaseModel, section: str = "") -> list[tuple[str, str, Any, bool]]:
    """(section, field, value, changed) of every field of ``model``, nested configs flattened into their sections
    (in the order of the model, then of its extra sections); changed: not its field's default."""
    names = [*type(model).model_fields, *(model.__pydantic_extra__ or {})]
    out = []
    for name in names:
        value = getattr(model, name)
        if isinstance(value, BaseModel):  # a section: each of its fields against its own default
            out += rows(value, name if not section else f"{section}.{name}")
        else:
            out.append((section, name, value, value != _default(model, name)))
    return out


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        return "<br>".join(f"{html.escape(str(k))}: {html.escape(str(v))}" for k, v in value.items()) or "{}"
    return html.escape(repr(value) if isinstance(value, str) else str(value))


def _table(found: list[tuple[str, str, Any, bool]]) -> str:
    body = "".join(f"<tr><td>{html.escape(section)}</td><td>{'<b>' + name + '</b>' if changed else name}</td>"
                   f"<td>{_cell(value)}</td></tr>" for section, name, value, changed in found)
    return f"<table><thead><tr><th>section</th><th>field</th><th>value</th></tr></thead><tbody>{body}</tbody></table>"


def config_html(model: BaseModel) -> str:
    """``model`` as HTML: its class, the size of a sweep, the changed values, then every value folded."""
    found = rows(model)
    changed = [r for r in found if r[3]]
    size = getattr(model, "size", None)
    count = f": {size()} instances" if callable(size) else ""
    title = f"<b>{html.escape(type(model).__name__)}</b>{count}"
    shown = _table(changed) if changed else "<p>every field at its default</p>"
    return (f"<div>{title}{shown}<details><summary>all {len(found)} fields (changed ones in bold)</summary>"
            f"{_table(found)}</details></div>")
