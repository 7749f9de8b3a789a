"""The ``sae`` config section: a sparse autoencoder's settings, the SAE family's own fields (``sae_arch=topk``,
``sae_k=4``, ``source=runs/LR1-quick``...), registered with the config when the family is imported.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator

from toymodels.config import register_section
from toymodels.config.experiment import resolve_path
from toymodels.config.sections import Frozen


class SAEConfig(Frozen):
    """A sparse autoencoder trained on activations with known features (model ``sae``; toymodels.families.sae)."""

    sae_arch: str = Field("relu_l1", description="relu_l1, topk, batchtopk or jumprelu (toymodels.families.sae)")
    sae_width: int = Field(64, ge=1, description="SAE latents")
    sae_k: int = Field(4, ge=1, description="topk / batchtopk: active latents per sample (batchtopk: on average)")
    sae_threshold: float = Field(0.001, gt=0, description="jumprelu: initial threshold of every latent")
    sae_bandwidth: float = Field(0.001, gt=0, description="jumprelu: width of the straight-through kernel")
    source: str = Field(
        "synthetic", description="where the activations come from: synthetic (a dictionary of N features in m "
        "dims) or a results folder of a trained toy model (with source_run, source_layer)")
    source_run: str = Field("", description="run id of the source instance in the results folder, e.g. r0003")
    source_layer: str = Field("", description="layer of the source model: em: x (embedding) or h; tms: h")

    #: instances that differ in these cannot share one batched group
    group_fields: ClassVar[tuple[str, ...]] = ("sae_arch", "sae_width", "source", "source_layer")


    @field_validator("source")
    @classmethod
    def _absolute(cls, v: str) -> str:
        # a results folder is kept as an absolute path, so the sweep reads back from any working directory; a
        # relative one in a sweep file is beside the file (config.experiment.resolve_path)
        return v if v == "synthetic" else resolve_path(v)
register_section("sae", SAEConfig)
