"""The ``quadratic`` config section: the input law of *Polysemanticity and Capacity*'s quadratic model
(``kurtosis=5``, ``input_kind=sign``), registered with the config when the family is imported (docs/papers.md §3)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from toymodels.config import register_section
from toymodels.config.sections import Frozen

InputKind = Literal["auto", "gaussian", "sign"]


class QuadraticConfig(Frozen):
    kurtosis: float = Field(
        3.0, ge=1, description="kurtosis K of each input x_i = s_i B_i / sqrt(q), B_i ~ Bernoulli(q), zero mean and "
        "unit variance; q = 3/K for input_kind gaussian, 1/K for sign (eps is not used)")
    input_kind: InputKind = Field(
        "auto", description="s_i standard normal (gaussian, needs K >= 3) or a random sign (sign, any K >= 1); "
        "auto = sign below K=3, gaussian from K=3")


    @model_validator(mode="after")
    def _input_kind_reaches_kurtosis(self) -> "QuadraticConfig":
        if self.input_kind == "gaussian" and self.kurtosis < 3:
            raise ValueError(f"field 'kurtosis': input_kind 'gaussian' gives K = 3/q >= 3 (got {self.kurtosis}); "
                             "use input_kind 'sign' or 'auto' for K < 3")
        return self


register_section("quadratic", QuadraticConfig)
