"""The seed-style training loop: what the paper's code does every step, written by us, importing only torch and
torch-optimizer (as the seed repository's script does), so that ``sweep_memory.py`` measures its memory fairly.

Per step: dense Bernoulli sampling, torch-optimizer's Lamb, CosineAnnealingLR(T_max=512) stepped every step, bias
decay through a state_dict round trip during the first half, the L1 pass even at L1 = 0, and deepcopy checkpoints at
steps 2^j - 1, kept in memory until the run ends.
"""

from __future__ import annotations

import copy
import time

import torch
import torch_optimizer
from torch import nn

N, M, K, EPS = 512, 64, 1024, 1 / 64
LR, BIAS_DECAY = 0.003, 0.03


def sync(device: str) -> None:
    """Wait for queued GPU work, so that wall-clock times cover it."""
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def embedder(device: str) -> torch.Tensor:
    """A fixed random embedder with unit columns (its values do not matter for speed or memory)."""
    E = torch.randn(M, N, generator=torch.Generator().manual_seed(0))
    return (E / E.norm(dim=0)).to(device)


class SeedModel(nn.Module):
    """The paper's model as its code writes it: Linear(m, k) + ReLU + Linear(k, N, bias=False)."""

    def __init__(self):
        super().__init__()
        self.W1 = nn.Linear(M, K)
        self.W2 = nn.Linear(K, N, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.relu(self.W1(x))
        return self.W2(h), h


def seed_rate(batch: int, steps: int, device: str, l1: float = 0.0, lr: float = LR) -> float:
    """Train one run the seed's way; steady-state steps/s (timed from the end of step 0)."""
    E = embedder(device)
    model = SeedModel().to(device)
    model.W1.bias.data -= 1.0  # the paper's bias offset
    opt = torch_optimizer.Lamb(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=512)
    p = torch.full((N,), EPS, device=device)
    checkpoints = []
    t0 = 0.0
    for t in range(steps):
        v = torch.rand(batch, N, device=device) * torch.bernoulli(p.expand(batch, N))
        out, h = model(v @ E.T)
        loss = ((out - v) ** 2).sum() / batch + l1 * h.abs().sum() / batch
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if t < steps / 2:
            state = model.state_dict()
            state["W1.bias"] = state["W1.bias"] * (1 - BIAS_DECAY * lr)
            model.load_state_dict(state)
        if (t & (t + 1)) == 0:
            checkpoints.append(copy.deepcopy(model))
        if t == 0:
            sync(device)
            t0 = time.perf_counter()
    sync(device)
    return (steps - 1) / (time.perf_counter() - t0)
