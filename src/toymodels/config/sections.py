"""What every config section shares: frozen pydantic models that refuse unknown fields, booleans for numbers,
inf and NaN and integers no tensor can hold, and the number syntax users may type ("1/64", "2**17").

``toymodels.config`` (data, model, task, optim, run, firing) and the families (their own sections) build their
sections on :class:`Frozen`.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from toymodels.config.display import config_html
from toymodels.config.messages import shown

#: integer fields above this cannot be a tensor size, a step count or a seed torch accepts
MAX_INT = 2**63 - 1
#: a longer string is never a number a user meant ("1/64", "2**-6", "1e-3")
MAX_NUMBER_CHARS = 400


def number(value: Any) -> Any:
    """Accept fractions such as "1/64" where a float is expected (the paper writes eps that way), and powers such as
    "2**-6". OverflowError when the number is beyond a float (10**400)."""
    if isinstance(value, str) and len(value) <= MAX_NUMBER_CHARS:
        if re.fullmatch(r"\s*[-+]?\d+\s*/\s*\d+\s*", value):
            try:
                return float(Fraction(value.replace(" ", "")))
            except ZeroDivisionError:
                return value
        if re.fullmatch(r"\s*[-+]?\d+\s*\*\*\s*[-+]?\d+\s*", value):
            base, exp = (int(part) for part in value.split("**"))
            try:
                return float(base) ** exp  # C's pow: quick at any exponent
            except ZeroDivisionError:  # 0**-1: not a number, said as such by the field's own check
                return value
    return value


class Frozen(BaseModel):
    """The base of every config section."""

    # allow_inf_nan=False: an inf or NaN (lr=inf) is refused here instead of training and being saved as null
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True, allow_inf_nan=False)

    def _repr_html_(self) -> str:
        """Jupyter's view: the changed values, then every field (``config.display``)."""
        return config_html(self)

    @model_validator(mode="before")
    @classmethod
    def _typed_numbers(cls, data: Any) -> Any:
        # JSON `true` would otherwise become N=1; "1/64" and "2**-6" are numbers wherever a float is expected
        if isinstance(data, dict):
            data = dict(data)
            for name, value in data.items():
                info = cls.model_fields.get(name)
                if info is None:
                    continue
                if isinstance(value, bool) and info.annotation in (int, float, "int", "float"):
                    raise ValueError(f"field '{name}': must be a number (got {shown(value)})")
                if info.annotation in (float, "float", float | None, "float | None"):
                    try:
                        data[name] = number(value)
                    except OverflowError:
                        raise ValueError(f"field '{name}': must be a finite number, at most about 1.8e308 "
                                         f"(got {shown(value)})") from None
        return data

    @model_validator(mode="after")
    def _ints_in_range(self) -> "Frozen":
        for name, info in type(self).model_fields.items():
            value = getattr(self, name)
            if info.annotation in (int, "int") and isinstance(value, int) and abs(value) > MAX_INT:
                raise ValueError(f"field '{name}': must be at most {MAX_INT} (got {shown(value)})")
        return self
