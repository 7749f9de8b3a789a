"""The one registry: named things of one kind (model families, SAE architectures, presets, studies, config checks)
in registration order, each name registered once.

It sits at the bottom of the package and imports nothing from it but ``config.messages`` (the did-you-mean of an
unknown name), so the config floor can validate ``model``
against the families without a cycle; the built-in families register themselves when ``toymodels.families`` is
imported, which ``import toymodels`` does first.

Example:
    >>> from toymodels.config.registry import FAMILIES, Registry
    >>> FAMILIES.get("em").tasks
    ('decoder', 'reprojector', 'abs')
    >>> colours = Registry("colour")
    >>> colours.register("red", (1, 0, 0))
    (1, 0, 0)
    >>> colours.get("blue")
    Traceback (most recent call last):
    toymodels.config.registry.RegistryError: unknown colour 'blue'; available: red
"""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from toymodels.config.messages import did_you_mean, shown

Item = TypeVar("Item")


class RegistryError(ValueError):
    """A name that is unknown, or registered twice (one line)."""


class Registry(Generic[Item]):
    """Named ``Item``s of one ``kind`` in registration order; a second registration of a name is refused.

    ``field`` names the config field whose values are these names, so an unknown name is reported as that field's
    error (``field 'model': must be one of em, tms, ... (got 'x')``).
    """

    def __init__(self, kind: str, field: str | None = None, error: type[ValueError] = RegistryError):
        self.kind, self.field, self.error = kind, field, error
        self._items: dict[str, Item] = {}

    def register(self, name: str, item: Item) -> Item:
        """Add ``item`` under ``name``; returns it (so it can end a decorator)."""
        if name in self._items:
            raise self.error(f"{self.kind} '{name}' is already registered")
        self._items[name] = item
        return item

    def unregister(self, name: str) -> None:
        """Remove ``name`` if present (tests register temporary entries)."""
        self._items.pop(name, None)

    def get(self, name: str) -> Item:
        """The item registered as ``name``; ``error`` (one line naming the field, or the kind) if none."""
        try:
            return self._items[name]
        except KeyError:
            available, hint = ", ".join(self._items), did_you_mean(name, self._items)
            raise self.error(f"field '{self.field}': must be one of {available} (got {shown(name)}){hint}"
                             if self.field else f"unknown {self.kind} {shown(name)}{hint}; available: {available}"
                             ) from None

    def names(self) -> tuple[str, ...]:
        return tuple(self._items)

    def items(self) -> list[tuple[str, Item]]:
        return list(self._items.items())

    def values(self) -> list[Item]:
        return list(self._items.values())

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


class FamilyError(RegistryError):
    """A family name that is unknown, or registered twice."""


#: the model families by the config field ``model`` (:class:`~toymodels.families.base.ModelFamily` objects)
FAMILIES: Registry = Registry("model family", field="model", error=FamilyError)

#: checks of a whole ExperimentConfig contributed by the floors above config (the engine's samplers): each returns
#: why the config cannot run (one line naming the field) or None; every config is checked by all of them
CONFIG_CHECKS: Registry[Callable[..., "str | None"]] = Registry("config check")


def register(family: Item) -> Item:
    """Add ``family`` under ``family.name``; returns it."""
    return FAMILIES.register(family.name, family)


def unregister(name: str) -> None:
    """Remove a family (tests register temporary ones)."""
    FAMILIES.unregister(name)


def family_names() -> tuple[str, ...]:
    return FAMILIES.names()


def get_family(name: str):
    """The family registered as ``name``; FamilyError (one line naming the field ``model``) if none."""
    return FAMILIES.get(name)
