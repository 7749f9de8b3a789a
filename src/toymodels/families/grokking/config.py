"""The ``grokking`` config section: modular arithmetic and the model that learns it (docs/papers.md §5), registered
with the config when the family is imported. Flat names: ``modulus=113``, ``operation=add``, ``train_frac=0.3``,
``grok_arch=transformer`` ...

Weight decay, lr and seed are the shared fields (``weight_decay``, ``lr``, ``seed``); ``train_frac``,
``operation`` and ``split_seed`` may differ between the instances of one group (each instance its own split).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from toymodels.config import register_section
from toymodels.config.sections import Frozen

Operation = Literal["add", "subtract", "multiply"]
GrokArch = Literal["transformer", "mlp"]


class GrokkingConfig(Frozen):
    """a (op) b mod P from the tokens "a b =" (model ``grokking``; toymodels.families.grokking)."""

    modulus: int = Field(113, ge=3, le=1021, description="P: numbers 0..P-1, the answer (a op b) mod P; odd "
                         "(the real Fourier basis of docs/papers.md §5.3 has no cos(pi x) term)")
    operation: Operation = Field("add", description="add: a + b, subtract: a - b, multiply: a * b (mod P)")
    train_frac: float = Field(0.3, gt=0, lt=1, description="share of the P^2 pairs this instance trains on "
                              "(floor(train_frac P^2) pairs, drawn from its split_seed); the rest is its test set")
    split_seed: int | None = Field(None, ge=0, description="seed of the train/test split (default: the "
                                   "instance's seed)")
    grok_arch: GrokArch = Field("transformer", description="transformer: the paper's one-layer ReLU transformer; "
                                "mlp: one-hot a, b -> d_mlp ReLU neurons -> P logits (the cheap variant)")
    d_model: int = Field(128, ge=1, description="transformer: residual stream width")
    n_heads: int = Field(4, ge=1, description="transformer: attention heads, each d_model / n_heads wide")
    d_mlp: int = Field(512, ge=1, description="ReLU neurons (transformer: its MLP; mlp: the hidden layer)")
    adam_beta1: float = Field(0.9, ge=0, lt=1, description="Adam/AdamW/LAMB's first-moment decay for this family")
    adam_beta2: float = Field(0.98, ge=0, lt=1, description="second-moment decay (the paper's code: 0.98)")

    #: instances that differ in these cannot share one batched group
    group_fields: ClassVar[tuple[str, ...]] = ("modulus", "grok_arch", "d_model", "n_heads", "d_mlp", "adam_beta1",
                                               "adam_beta2")


register_section("grokking", GrokkingConfig)
