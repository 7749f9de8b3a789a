"""The ``tms`` config section: the TMS family's own fields (``tms_variant=hidden_relu``, ``init_std=0.1``),
registered with the config when the family is imported (docs/papers.md §2)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from toymodels.config import register_section
from toymodels.config.sections import Frozen

TMSVariant = Literal["relu", "linear", "hidden_relu"]


class TMSConfig(Frozen):
    init_std: float | None = Field(
        None, gt=0, description="std of W's normal init (default: xavier-normal of one (m, n) matrix, sqrt(2/(m+n)); "
        "the official notebook's init over all its instances is families.tms.presets.notebook_init_std)")
    tms_variant: TMSVariant = Field(
        "relu", description="relu = ReLU(W^T W x + b) (ReLU output model), linear = W^T W x + b, "
        "hidden_relu = ReLU(W^T ReLU(W x) + b) (privileged basis)")

    #: instances that differ in these cannot share one batched group
    group_fields: ClassVar[tuple[str, ...]] = ("tms_variant",)



register_section("tms", TMSConfig)
