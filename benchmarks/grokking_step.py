"""The grokking family's training step against a plain PyTorch loop of the paper's model, in one process.

    python benchmarks/grokking_step.py                      # 6 paper-scale instances, 2 threads, 50 steps
    python benchmarks/grokking_step.py --instances 6 --steps 100 --threads 1 --rounds 5

The plain loop is what one would write for one run (docs/papers.md §5.2): the one-layer transformer over the three
positions, its MLP and unembedding at the answer position only, torch's AdamW (lr 1e-3, weight decay 1, betas
(0.9, 0.98)), the full batch of 3,830 pairs, a float64 cross entropy. The engine trains ``--instances`` paper-scale
instances (different seeds) as one group through ``train_group``; its time per step is the difference of a long and
a short run (setup and checkpoints cancel). Printed: ms per step of each, the ratio of running the instances one
after another in the plain loop to one group step, and the projected time of 40,000 steps (issue 29's target: six
instances in at most an hour on 2 cores, 90 ms per group step). The two alternate for ``--rounds`` rounds and the
medians are printed, in wall time and in this process's CPU time (which other processes on the cores move less).
Run it on an otherwise idle machine: the ratio is taken in one process, but busy cores still move it.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

import torch
import torch.nn.functional as F

from toymodels.config.presets import preset
from toymodels.engine.train import train_group

P, D, H, DH, NEURONS = 113, 128, 4, 32, 512


class Plain(torch.nn.Module):
    """The paper's model, written the ordinary way for one run."""

    def __init__(self, gen: torch.Generator):
        super().__init__()

        def normal(*shape: int, fan: int) -> torch.nn.Parameter:
            return torch.nn.Parameter(torch.randn(*shape, generator=gen) / math.sqrt(fan))

        self.W_E, self.W_pos = normal(P + 1, D, fan=D), normal(3, D, fan=D)
        self.W_Q, self.W_K, self.W_V = (normal(H, D, DH, fan=D) for _ in range(3))
        self.W_O, self.W_in, self.W_out = normal(H, DH, D, fan=D), normal(D, NEURONS, fan=D), normal(NEURONS, D, fan=D)
        self.b_in, self.b_out = torch.nn.Parameter(torch.zeros(NEURONS)), torch.nn.Parameter(torch.zeros(D))
        self.W_U = normal(D, P, fan=P + 1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.W_E[tokens] + self.W_pos
        q = torch.einsum("nd,hde->nhe", x[:, -1], self.W_Q)
        k, v = (torch.einsum("npd,hde->nhpe", x, w) for w in (self.W_K, self.W_V))
        pattern = torch.softmax(torch.einsum("nhe,nhpe->nhp", q, k) / math.sqrt(DH), -1)
        resid = x[:, -1] + torch.einsum("nhe,hed->nd", torch.einsum("nhp,nhpe->nhe", pattern, v), self.W_O)
        neurons = torch.relu(resid @ self.W_in + self.b_in)
        return (resid + neurons @ self.W_out + self.b_out) @ self.W_U


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of ``fn()``: the CPU time is what the work cost even while
    other processes share the cores."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


class PlainRun:
    """The plain loop on the paper's 3,830 training pairs."""

    def __init__(self) -> None:
        gen = torch.Generator().manual_seed(0)
        pairs = torch.randperm(P * P, generator=gen)[:3830]
        a, b = pairs // P, pairs % P
        self.tokens, self.labels = torch.stack([a, b, torch.full_like(a, P)], 1), (a + b) % P
        self.model = Plain(gen)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-3, weight_decay=1.0, betas=(0.9, 0.98))
        self.steps(3)

    def steps(self, n: int) -> None:
        for _ in range(n):
            loss = F.cross_entropy(self.model(self.tokens).double(), self.labels)
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()

    def ms(self, n: int) -> tuple[float, float]:
        wall, cpu = timed(lambda: self.steps(n))
        return wall / n * 1e3, cpu / n * 1e3


def engine_ms(instances: int, steps: int, threads: int) -> tuple[float, float]:
    """ms per group step of ``train_group`` (wall, CPU): a long run less a short one (setup and checkpoints
    cancel)."""
    base = preset("GROK-main", "paper").base.replace(threads=threads, checkpoint_every=0)
    short, long = max(2, steps // 5), steps + max(2, steps // 5)
    out = {}
    for n in (short, long):
        cfgs = [base.replace(seed=s, steps=n) for s in range(instances)]
        out[n] = timed(lambda cfgs=cfgs: train_group(cfgs))
    return tuple((out[long][k] - out[short][k]) / (long - short) * 1e3 for k in (0, 1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, default=6)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="plain and engine alternate; the medians are printed")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{os.cpu_count()} CPUs, load average {load:.2f}, {args.threads} thread(s), {args.steps} steps, "
          f"{args.rounds} rounds")
    plain_run = PlainRun()
    plain, ours = [], []
    for _ in range(args.rounds):
        plain.append(plain_run.ms(args.steps))
        ours.append(engine_ms(args.instances, args.steps, args.threads))
    (p_wall, p_cpu), (o_wall, o_cpu) = (tuple(statistics.median(x[k] for x in runs) for k in (0, 1))
                                        for runs in (plain, ours))
    n = args.instances
    print(f"plain loop, one instance:           {p_wall:7.1f} ms/step wall, {p_cpu:7.1f} ms CPU  "
          f"({p_wall * n / 1e3 * 40_000 / 3600:.2f} h for {n} x 40,000 steps one after another)")
    print(f"engine, {n} instances in one group:   {o_wall:7.1f} ms/step wall, {o_cpu:7.1f} ms CPU  "
          f"({o_wall / 1e3 * 40_000 / 3600:.2f} h for 40,000 steps)")
    print(f"ratio (plain x {n}) / engine: {p_wall * n / o_wall:.2f}x wall, {p_cpu * n / o_cpu:.2f}x CPU   "
          "(target: 6 instances <= 90 ms per step)")


if __name__ == "__main__":
    main()
