"""Model families, one module (or sub-package) each, found through one registry.

``get_family(cfg.model.model)`` is how train, sweep, report, figures and the dashboard reach a family; see
``base.py`` for the interface and ``docs/architecture.md`` for how to add one. Importing this package registers the
built-in families: ``em`` (Engineering Monosemanticity), ``tms`` (Toy Models of Superposition) and ``quadratic``
(Polysemanticity and Capacity), and ``sae`` (sparse autoencoders scored against known features).
"""

from __future__ import annotations

from . import em, tms, quadratic, sae  # noqa: I001  (registration order = the order error messages list them)
from .base import FigureSpec, InstanceModel, ModelFamily, Presentation
from ..registry import FamilyError, family_names, get_family, register, unregister

__all__ = [
    "FamilyError", "FigureSpec", "InstanceModel", "ModelFamily", "Presentation",
    "em", "family_names", "get_family", "quadratic", "register", "sae", "tms", "unregister",
]
