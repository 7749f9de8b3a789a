"""The nonlinearities of the EM model, in one place for the model, the metrics and the analysis."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

Nonlinearity = Literal["relu", "gelu", "solu"]
NONLINEARITIES: tuple[str, ...] = ("relu", "gelu", "solu")


def activation(pre: Float[Tensor, "*shape"], nonlinearity: Nonlinearity) -> Float[Tensor, "*shape"]:
    """The EM model's nonlinearity (docs/papers.md §1.3).

    ``relu``; ``gelu`` with the exact erf form (PyTorch's default, as in the paper's ``nn.GELU()``);
    ``solu`` = ``x * exp(x)``, which is what the paper's code calls SoLU (not the softmax-linear unit).
    """
    if nonlinearity == "relu":
        return torch.relu(pre)
    if nonlinearity == "gelu":
        return F.gelu(pre)
    if nonlinearity == "solu":
        return pre * torch.exp(pre)
    raise ValueError(f"nonlinearity must be one of {NONLINEARITIES}, got {nonlinearity!r}")
