"""The ``firing`` section: how the features fire together and how large they are.

Shared by the families whose sampler reads it (they list ``FIRING_FIELDS`` in their ``fields``), with flat names
users type (``firing=hierarchical``, ``magnitude=constant``...). Their meaning: ``toymodels.engine.firing`` and
docs/dictionary_learning.md. The defaults are the papers' independent features, drawn exactly as before these fields
existed.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from toymodels.config.sections import Frozen


Firing = Literal["independent", "correlated", "exclusive", "hierarchical"]
Correlation = Literal["random", "block", "low_rank"]
Magnitude = Literal["uniform", "constant", "folded_normal", "exponential"]


class FiringConfig(Frozen):
    """How the features fire together and how large they are (``toymodels.engine.firing``); the defaults are the papers'
    independent Bernoulli(p_i) x U[0, 1) features, drawn exactly as before these fields existed."""

    firing: Firing = Field(
        "independent", description="independent (Bernoulli p_i each); correlated (Gaussian copula over a correlation "
        "matrix); exclusive (at most one feature per group of feature_group_size); hierarchical (trees: a child "
        "fires only with its parent)")
    correlation: Correlation = Field(
        "random", description="correlated only: the correlation matrix, (1-s) I + s C with C a random correlation "
        "matrix, blocks of feature_group_size ones, or a rank-correlation_rank one (s = correlation_strength)")
    correlation_strength: float = Field(0.5, ge=-1, le=1, description="correlated only: s (negative: anti-correlated)")
    correlation_rank: int = Field(4, ge=1, description="correlated low_rank only: rank of C")
    feature_group_size: int = Field(4, ge=1, description="block correlation and exclusive groups: features per group")
    hierarchy_branching: int = Field(2, ge=1, description="hierarchical only: children per parent")
    hierarchy_depth: int = Field(2, ge=2, description="hierarchical only: levels per tree (2 = parent + children)")
    hierarchy_child_prob: float = Field(
        0.5, gt=0, le=1, description="hierarchical only: P(child fires | parent fires); roots fire with p_i")
    magnitude: Magnitude = Field(
        "uniform", description="size of an active feature: uniform U[0, 2 mu_i), constant mu_i, folded_normal "
        "|N(mu_i, magnitude_std)|, exponential with mean mu_i")
    magnitude_mean: float = Field(0.5, gt=0, description="mu: the geometric mean over features of mu_i")
    magnitude_std: float = Field(0.25, ge=0, description="folded_normal only: the normal's std")
    magnitude_spread: float = Field(
        1.0, ge=1, description="mu_1 / mu_N: per-feature means geometric from the first to the last feature")
    structure_seed: int = Field(
        0, ge=0, description="seed of the fixed random structure (correlation matrix, synthetic dictionary), shared "
        "by every instance with the same value")



#: the flat names of the firing section: a family whose sampler reads them lists them in its ``fields``
FIRING_FIELDS = tuple(FiringConfig.model_fields)
