"""Training throughput of the engine against a plain PyTorch loop and the machine's GEMM peak, in one process.

    python benchmarks/train_throughput.py            # all batch sizes (a few minutes on 2 cores)
    python benchmarks/train_throughput.py --quick    # fewer steps
    python benchmarks/train_throughput.py --device cuda   # the same on a GPU (peak = its fp32 GEMM)

Prints, for the EM model at N=512, m=64, k=1024 (the paper's size): steady-state steps/s, instance-steps/s, model
GFLOP/s (3,473,408 FLOPs per sample per step: forward E, W1, W2; backward dW2, dH, dW1), the ratio to the plain
loop a user would write (nn.Sequential, torch.optim.Adam, dense Bernoulli sampling) and to the fp32 GEMM peak
measured here, and the share of a step spent sampling.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from toymodels.config import ExperimentConfig
from toymodels.data import feature_probs, generator
from toymodels.families.em import EMModel
from toymodels.plan import flops_per_step
from toymodels.train import train_group, tune_allocator

N, M, K, EPS = 512, 64, 1024, 1 / 64


def sync(device: str) -> None:
    """Wait for queued GPU work, so that wall-clock times cover it."""
    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def gemm_peak(device: str, n: int = 2048, reps: int = 10) -> float:
    """fp32 GFLOP/s of a large square matmul (the hardware limit with this many threads, or of the GPU)."""
    if device.startswith("cuda"):
        n = 8192  # a GPU needs a bigger product to reach its peak
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    for _ in range(2):
        a @ b
    best = float("inf")
    for _ in range(reps):
        sync(device)
        t = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def engine_steps_per_s(batch: int, instances: int, steps: int, device: str) -> float:
    """Steady-state group steps/s: the time difference between two run lengths removes set-up costs (train_group
    returns its results on the CPU, so its wall time covers the GPU's work)."""
    cfg = ExperimentConfig.from_flat({"N": N, "m": M, "k": K, "eps": EPS, "batch_size": batch, "lr": 0.003,
                                      "schedule": "constant", "device": device})
    cfgs = lambda s: [cfg.replace(steps=s, seed=i) for i in range(instances)]  # noqa: E731
    train_group(cfgs(4))  # warm-up
    t = time.perf_counter()
    train_group(cfgs(steps // 4))
    short = time.perf_counter() - t
    t = time.perf_counter()
    train_group(cfgs(steps))
    long = time.perf_counter() - t
    return (steps - steps // 4) / (long - short)


def sampling_seconds(batch: int, instances: int, reps: int, device: str) -> float:
    """Seconds per group step spent drawing the batches."""
    cfg = ExperimentConfig.from_flat({"N": N, "m": M, "k": K, "eps": EPS, "batch_size": batch})
    samplers = [EMModel.sampler(cfg.replace(seed=i), torch.device(device)) for i in range(instances)]
    v = torch.zeros(instances, batch, N, device=device)
    for s, out in zip(samplers, v):
        s.fill(out)
    sync(device)
    t = time.perf_counter()
    for _ in range(reps):
        for s, out in zip(samplers, v):
            s.fill(out)
    sync(device)
    return (time.perf_counter() - t) / reps


def baseline_steps_per_s(batch: int, steps: int, device: str) -> float:
    """The loop a user would write: one nn.Sequential, torch.optim.Adam, dense Bernoulli sampling."""
    g = generator(0, 0)
    E = torch.randn(M, N, generator=g)
    E = (E / E.norm(dim=0)).to(device)
    model = nn.Sequential(nn.Linear(M, K), nn.ReLU(), nn.Linear(K, N, bias=False)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    p = feature_probs(N, EPS, "uniform").float().to(device)

    def step() -> None:
        v = torch.rand(batch, N, device=device) * torch.bernoulli(p.expand(batch, N))
        loss = ((model(v @ E.T) - v) ** 2).sum() / batch
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    sync(device)
    t = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return steps / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer steps (noisier)")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda[:i]")
    args = ap.parse_args()
    dev = args.device
    if dev.startswith("cuda") and not torch.cuda.is_available():
        ap.error("--device cuda: torch sees no CUDA device here")
    scale = 0.25 if args.quick else 1.0
    tune_allocator()  # the engine does this itself; the baseline gets the same process setting for fairness
    peak = gemm_peak(dev)
    where = torch.cuda.get_device_name(dev) if dev.startswith("cuda") else f"{torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {where}; fp32 GEMM peak {peak:.0f} GFLOP/s")
    flops = flops_per_step(ExperimentConfig.from_flat({"N": N, "m": M, "k": K, "batch_size": 1}))
    print(f"{'batch':>6} {'I':>3} {'inst-steps/s':>13} {'GFLOP/s':>8} {'baseline':>9} {'vs base':>8} "
          f"{'of peak':>8} {'sampling':>9}")
    for batch, instances, steps in [(128, 1, 400), (128, 6, 120), (1024, 1, 80), (8192, 1, 16)]:
        steps = max(8, int(steps * scale))
        if dev.startswith("cuda"):
            steps *= 8  # GPU steps are short; more of them for a stable time
        eng = engine_steps_per_s(batch, instances, steps, dev) * instances
        base = baseline_steps_per_s(batch, max(8, steps // 2), dev)
        gflops = eng * flops * batch / 1e9
        samp = sampling_seconds(batch, instances, max(4, steps // 4), dev) * eng / instances
        print(f"{batch:>6} {instances:>3} {eng:>13.1f} {gflops:>8.1f} {base:>9.1f} {eng / base:>7.2f}x "
              f"{gflops / peak:>7.0%} {samp:>9.1%}")


if __name__ == "__main__":
    main()
