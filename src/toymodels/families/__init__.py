"""Model families, one module (or sub-package) each, found through one registry.

``get_family(cfg.model.model)`` is how train, sweep, report, figures and the dashboard reach a family; see
``base.py`` for the interface and ``docs/architecture.md`` for how to add one. Importing this package registers the
built-in families: ``em`` (Engineering Monosemanticity), ``tms`` (Toy Models of Superposition) and ``quadratic``
(Polysemanticity and Capacity), and ``sae`` (sparse autoencoders scored against known features), and the
presets of the superposition papers (``superposition_presets``).
"""

from __future__ import annotations

# registration order = the order error messages and `toymodels presets` list them
from toymodels.families import em  # noqa: I001
from toymodels.families import tms  # noqa: I001
from toymodels.families import quadratic  # noqa: I001
from toymodels.families.tms import presets as superposition_presets  # noqa: F401, I001  (registers the TMS-* and PC-* presets)
from toymodels.families import sae  # noqa: I001
from toymodels.families.base import FigureSpec, InstanceModel, ModelFamily, Presentation
from toymodels.config.registry import FamilyError, family_names, get_family, register, unregister

__all__ = [
    "FamilyError", "FigureSpec", "InstanceModel", "ModelFamily", "Presentation",
    "em", "family_names", "get_family", "quadratic", "register", "sae", "tms", "unregister",
]
