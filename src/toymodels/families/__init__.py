"""Model families, one module (or sub-package) each, found through one registry.

``get_family(cfg.model.model)`` is how train, sweep, report, figures and the dashboard reach a family; see
``base.py`` for the interface and ``docs/architecture.md`` for how to add one. Importing this package registers the
built-in families: ``em`` (Engineering Monosemanticity), ``tms`` (Toy Models of Superposition) and ``quadratic``
(Polysemanticity and Capacity), and ``sae`` (sparse autoencoders scored against known features); each family
package registers its own presets (its ``presets`` module) when it is imported.
"""

from __future__ import annotations

# registration order (families, and the presets each registers) = the order error messages and `toymodels presets`
# list them
from toymodels.families import em  # noqa: I001
from toymodels.families import tms  # noqa: I001
from toymodels.families import quadratic  # noqa: I001
from toymodels.families import sae  # noqa: I001
from toymodels.families import grokking  # noqa: I001
from toymodels.families.base import (DashboardPanel, FigureSpec, InstanceModel, ModelFamily, PanelFigure, PanelTable,
                                     Presentation)
from toymodels.config.registry import FamilyError, family_names, get_family, register, unregister

__all__ = [
    "DashboardPanel", "FamilyError", "FigureSpec", "InstanceModel", "ModelFamily", "PanelFigure", "PanelTable",
    "Presentation",
    "em", "family_names", "get_family", "grokking", "quadratic", "register", "sae", "tms", "unregister",
]
