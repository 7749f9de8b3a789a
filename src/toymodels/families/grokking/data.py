"""The data of modular arithmetic: every pair (a, b) of 0..P-1 as the tokens "a b =", its answer, and each
instance's own train/test split (docs/papers.md §5.2).

A pair is indexed ``a * P + b`` (the order of the paper's code and of every (P^2, ...) tensor here). The token of
"=" is P, so the vocabulary has P + 1 tokens and the answers P classes. An instance trains on
floor(train_frac P^2) pairs drawn without replacement by its own ``split_seed`` (default its seed); the others are
its test set. Rows of the training loop are token triples stored as floats (exact below 2^24); a row "= = =" is
padding, which weighs nothing in the loss, so instances of one group may train on different fractions.
"""

from __future__ import annotations

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from toymodels.config import ExperimentConfig
from toymodels.engine.data import DATA_STREAM, Sampler, generator

#: the random stream of an instance's train/test split (the engine's own streams are 0..3)
SPLIT_STREAM = 5


def n_train(cfg: ExperimentConfig) -> int:
    """How many pairs the instance trains on: floor(train_frac P^2) (the paper's code: 3830 of 113^2), at least 1."""
    P = cfg.grokking.modulus
    return max(1, int(cfg.grokking.train_frac * P * P))


def split_seed(cfg: ExperimentConfig) -> int:
    g = cfg.grokking
    return cfg.run.seed if g.split_seed is None else g.split_seed


def train_mask(cfg: ExperimentConfig) -> Bool[Tensor, " pairs"]:
    """True for the pairs the instance trains on (P^2 entries, pair a * P + b)."""
    P = cfg.grokking.modulus
    order = torch.randperm(P * P, generator=generator(split_seed(cfg), SPLIT_STREAM))
    mask = torch.zeros(P * P, dtype=torch.bool)
    mask[order[: n_train(cfg)]] = True
    return mask


def all_tokens(P: int) -> Int[Tensor, "pairs positions"]:
    """Every input "a b =" in pair order: (P^2, 3) token ids."""
    idx = torch.arange(P * P)
    return torch.stack([idx // P, idx % P, torch.full_like(idx, P)], dim=1)


def answers(a: Tensor, b: Tensor, operation: str | Tensor, P: int) -> Tensor:
    """(a op b) mod P for token tensors ``a``, ``b`` (any shape); ``operation`` a name or per-row codes
    (``OPERATIONS``' indices, broadcast against a and b)."""
    if isinstance(operation, str):
        operation = torch.tensor(OPERATIONS.index(operation))
    a, b = a.long(), b.long()
    out = torch.where(operation == 0, a + b, torch.where(operation == 1, a - b, a * b))
    return torch.remainder(out, P)


#: the operations in the order of their codes (the model's per-instance buffer ``operation``)
OPERATIONS = ("add", "subtract", "multiply")


def operation_codes(cfgs: list[ExperimentConfig] | tuple) -> Int[Tensor, " instances"]:
    return torch.tensor([OPERATIONS.index(c.grokking.operation) for c in cfgs])


def train_rows(cfg: ExperimentConfig) -> Float[Tensor, "pairs positions"]:
    """The instance's training inputs in pair order, (n_train, 3) floats."""
    return all_tokens(cfg.grokking.modulus)[train_mask(cfg)].float()


class GrokSampler(Sampler):
    """One instance's rows: with ``batch`` at least its training pairs, all of them every step in pair order (full
    batch, the paper's), then padding rows "= = ="; with a smaller ``batch``, each step a fresh draw of ``batch``
    of its training pairs without replacement, from its own data stream (resumable through the generator)."""

    N = 3

    def __init__(self, cfg: ExperimentConfig, batch: int, device: torch.device):
        self.batch = batch
        self.device = torch.device(device)
        self.gen = generator(cfg.run.seed, DATA_STREAM, self.device)
        self.rows = train_rows(cfg).to(self.device)
        self.pad = float(cfg.grokking.modulus)

    @property
    def full_batch(self) -> bool:
        return self.batch >= self.rows.shape[0]

    def fill(self, out: Float[Tensor, "batch positions"]) -> None:
        n = self.rows.shape[0]
        if self.full_batch:
            out[:n].copy_(self.rows)
            out[n:].fill_(self.pad)
        else:
            pick = torch.randperm(n, generator=self.gen, device=self.device)[: self.batch]
            out.copy_(self.rows[pick])
