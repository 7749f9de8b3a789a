"""Floor 3, metrics: every metric once, in torch, batched over the instance axis, no coupling between instances.

``features`` holds the toy models' metrics (how the features sit in a model: single-feature activations, mono
ratio, capacity, superposition, D*, participation, the multi-feature probe, ``neuron_order``) and is what
``from toymodels import metrics`` gives; ``dictionary`` scores a learned dictionary against known features (MCC,
recovery). Each function's docstring names its definition in docs/papers.md.
"""

from toymodels.metrics.features import (
    MONO_THRESHOLD,
    PROBE_BLOCK_ELEMENTS,
    RATIO_EPS,
    all_but_one_fires,
    capacity,
    dims_per_feature,
    em_metrics,
    feature_dimensionality,
    is_dead,
    is_mono,
    mono_ratio,
    multi_feature_probe,
    net_map,
    neuron_order,
    own_feature,
    participation,
    signed_embedding,
    single_feature_activations,
    superposition,
)

__all__ = [
    "MONO_THRESHOLD", "PROBE_BLOCK_ELEMENTS", "RATIO_EPS", "all_but_one_fires", "capacity", "dims_per_feature",
    "em_metrics", "feature_dimensionality", "is_dead", "is_mono", "mono_ratio", "multi_feature_probe", "net_map",
    "neuron_order", "own_feature", "participation", "signed_embedding", "single_feature_activations",
    "superposition",
]
