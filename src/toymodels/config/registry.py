"""The registry of model families: ``register`` once per family, ``get_family`` by the config field ``model``.

It sits at the bottom of the package and imports nothing from it, so the config layer can validate ``model``
against it without a cycle; the built-in families register themselves when ``toymodels.families`` is imported, which
``import toymodels`` does first.

Example:
    >>> from toymodels.config.registry import get_family
    >>> get_family("em").tasks
    ('decoder', 'reprojector', 'abs')
"""

from __future__ import annotations

from typing import Any

_FAMILIES: dict[str, Any] = {}


class FamilyError(ValueError):
    """A family name that is unknown, or registered twice."""


def register(family: Any) -> Any:
    """Add ``family`` (a :class:`~toymodels.families.base.ModelFamily`) under ``family.name``; returns it."""
    if family.name in _FAMILIES:
        raise FamilyError(f"model family '{family.name}' is already registered")
    _FAMILIES[family.name] = family
    return family


def unregister(name: str) -> None:
    """Remove a family (tests register temporary ones)."""
    _FAMILIES.pop(name, None)


def family_names() -> tuple[str, ...]:
    return tuple(_FAMILIES)


def get_family(name: str) -> Any:
    """The family registered as ``name``; FamilyError (one line naming the field ``model``) if none."""
    try:
        return _FAMILIES[name]
    except KeyError:
        raise FamilyError(f"field 'model': must be one of {', '.join(_FAMILIES)} (got {name!r})") from None
