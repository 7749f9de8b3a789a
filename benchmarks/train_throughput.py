"""Training throughput of the engine against two loops written by hand and the machine's GEMM peak, in one process.

    python benchmarks/train_throughput.py            # batch 128, 1024, 8192; 5 interleaved rounds (minutes)
    python benchmarks/train_throughput.py --quick    # 3 shorter rounds (1-2 minutes on a 2-core machine)
    python benchmarks/train_throughput.py --device cuda   # the same on a GPU (peak = its fp32 GEMM)

The workload is the EM model at the paper's size (N=512, m=64, k=1024, eps=1/64; 3,473,408 FLOPs per sample per
step: forward E, W1, W2; backward dW2, dH, dW1). Three implementations train it:

* engine: ``toymodels.engine.train.train_group`` with everything on (per-instance LAMB, the paper's cosine schedule,
  divergence guard, bias decay, loss logging, checkpoints at 2^j - 1), one instance or a group of six;
* plain: the loop a user would write in ten minutes (nn.Sequential, torch.optim.Adam, dense Bernoulli sampling);
* seed-style: what the paper's code does every step (torch-optimizer's Lamb, CosineAnnealingLR stepped every step,
  bias decay through a state_dict round trip, the L1 pass even at L1 = 0, dense Bernoulli sampling, deepcopy
  checkpoints at steps 2^j - 1).

Every round runs all of them one after another (in a rotating order) and the ratios are taken inside the round;
the table shows medians over rounds and the spread (min-max) of each ratio, because a shared machine is noisy.
Rates are steady-state: timed from the end of step 0 to the end of the last logged step, so set-up is excluded.
The dense bound times the step's six matrix products alone (no optimizer, sampling or anything else): a ratio to a
loop that is above the bound's ratio to it cannot be reached by any dense step. The last section
(``sparse_step.py``) times dense and sparse steps of a model trained briefly into the sparse regime, at several
hidden densities.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from seed_loop import BIAS_DECAY, EPS, LR, K, M, N, embedder, seed_rate, sync  # beside this file
from sparse_step import sparse_table  # beside this file
from torch import nn

from toymodels.config import ExperimentConfig
from toymodels.engine.data import feature_probs
from toymodels.running.plan import flops_per_step
from toymodels.engine.process import allow_allocator_tuning, tune_allocator
from toymodels.engine.train import train_group


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


def config(batch: int, steps: int, device: str, **extra) -> ExperimentConfig:
    return ExperimentConfig.from_flat({"N": N, "m": M, "k": K, "eps": EPS, "batch_size": batch, "lr": LR,
                                       "bias_decay": BIAS_DECAY, "steps": steps, "device": device, **extra})


def engine_rate(batch: int, instances: int, steps: int, device: str) -> float:
    """Steady-state group steps/s of train_group, from its progress calls (after step 0 and every 16 steps; the
    losses they carry are on the CPU, so the times cover a GPU's work)."""
    cfg = config(batch, steps, device)
    marks: list[tuple[int, float]] = []
    train_group([cfg.replace(seed=i) for i in range(instances)],
                on_progress=lambda done, _: marks.append((done, time.perf_counter())))
    (s0, t0), (s1, t1) = marks[0], marks[-2]  # the last call comes after the loop, at the same step as the one before
    return (s1 - s0) / (t1 - t0)


def gemm_bound_rate(batch: int, steps: int, device: str) -> float:
    """Steps/s of the six matrix products of one step alone, in the engine's layouts (forward E, W1, W2; backward dW2,
    dH, dW1) on random operands: the dense bound, which no loop doing these products can beat."""
    g = torch.Generator().manual_seed(0)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g).to(device)

    v, E, W1, b1, W2 = rand(1, batch, N), rand(1, M, N), rand(1, K, M), rand(1, K), rand(1, N, K)
    x, h, dout, dh = rand(1, batch, M), rand(1, batch, K), rand(1, batch, N), rand(1, batch, K)
    t0 = 0.0
    for t in range(steps):
        torch.bmm(v, E.transpose(1, 2))
        torch.baddbmm(b1.unsqueeze(1), x, W1.transpose(1, 2))
        torch.bmm(h, W2.transpose(1, 2))
        torch.bmm(dout.transpose(1, 2), h)
        torch.bmm(dout, W2)
        torch.bmm(dh.transpose(1, 2), x)
        if t == 0:
            sync(device)
            t0 = time.perf_counter()
    sync(device)
    return (steps - 1) / (time.perf_counter() - t0)


def plain_rate(batch: int, steps: int, device: str) -> float:
    """The loop a user would write: one nn.Sequential, torch.optim.Adam, dense Bernoulli sampling."""
    E = embedder(device)
    model = nn.Sequential(nn.Linear(M, K), nn.ReLU(), nn.Linear(K, N, bias=False)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    p = feature_probs(N, EPS, "uniform").float().to(device)
    t0 = 0.0
    for t in range(steps):
        v = torch.rand(batch, N, device=device) * torch.bernoulli(p.expand(batch, N))
        loss = ((model(v @ E.T) - v) ** 2).sum() / batch
        opt.zero_grad()
        loss.backward()
        opt.step()
        if t == 0:
            sync(device)
            t0 = time.perf_counter()
    sync(device)
    return (steps - 1) / (time.perf_counter() - t0)


def rounds_of(fns: dict, rounds: int) -> dict[str, list[float]]:
    """Run every measurement once per round, in an order that rotates between rounds."""
    out: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            tune_allocator()  # the engine sets it for its loop (and gives memory back after it): every loop gets it
            out[name].append(fns[name]())
    return out


def spread(xs: list[float]) -> str:
    return f"{statistics.median(xs):.2f}x ({min(xs):.2f}-{max(xs):.2f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 short rounds (noisier)")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds per batch size (default 5, quick 3)")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda[:i]")
    args = ap.parse_args()
    allow_allocator_tuning()  # as the toymodels command does in its own process
    dev = args.device
    if dev.startswith("cuda") and not torch.cuda.is_available():
        ap.error("--device cuda: torch sees no CUDA device here")
    rounds = args.rounds or (3 if args.quick else 5)
    gpu = 8 if dev.startswith("cuda") else 1  # GPU steps are short; more of them for a stable time
    peak = gemm_peak(dev)
    where = torch.cuda.get_device_name(dev) if dev.startswith("cuda") else f"{torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {where}; fp32 GEMM peak {peak:.0f} GFLOP/s; {rounds} interleaved rounds, "
          "medians (min-max over rounds)")
    flops = flops_per_step(ExperimentConfig.from_flat({"N": N, "m": M, "k": K, "batch_size": 1}))
    rows = []
    # steps per run: the rate is timed from step 0's end to the last logged step (every 16), so 17 is the least
    lengths = [(128, 120), (1024, 33), (8192, 17)] if args.quick else [(128, 400), (1024, 97), (8192, 33)]
    for batch, steps in lengths:
        steps *= gpu
        small = max(17, steps // 3)  # the six-instance group costs six times as much per step
        fns = {"engine": lambda b=batch, s=steps: engine_rate(b, 1, s, dev),
               "plain": lambda b=batch, s=steps: plain_rate(b, s, dev),
               "seed": lambda b=batch, s=steps: seed_rate(b, s, dev),
               "bound": lambda b=batch, s=steps: gemm_bound_rate(b, s, dev)}
        if batch == 128:
            fns["engine6"] = lambda b=batch, s=small: engine_rate(b, 6, s, dev) * 6
        r = rounds_of(fns, rounds)
        eng = r["engine"]
        row = {"batch": batch, "engine": statistics.median(eng), "plain": statistics.median(r["plain"]),
               "seed": statistics.median(r["seed"]),
               "vs_plain": [e / p for e, p in zip(eng, r["plain"])],
               "vs_seed": [e / s for e, s in zip(eng, r["seed"])],
               "peak": statistics.median(eng) * flops * batch / 1e9 / peak,
               "bound": statistics.median(r["bound"]),
               "bound_plain": [x / p for x, p in zip(r["bound"], r["plain"])],
               "bound_seed": [x / s for x, s in zip(r["bound"], r["seed"])]}
        if "engine6" in r:
            row["six"] = [s / e for s, e in zip(r["engine6"], eng)]
            row["engine6"] = statistics.median(r["engine6"])
        rows.append(row)

    print("\nratios (engine = toymodels.engine.train.train_group with everything on, 1 instance)")
    print(f"{'batch':>6}  {'engine / plain Adam':>22}  {'engine / seed-style':>22}  {'of GEMM peak':>12}")
    for row in rows:
        print(f"{row['batch']:>6}  {spread(row['vs_plain']):>22}  {spread(row['vs_seed']):>22}  {row['peak']:>12.0%}")
    print("\ndense bound (the step's six matrix products alone, no optimizer, no sampling): the most any loop can do")
    print(f"{'batch':>6}  {'bound / plain Adam':>22}  {'bound / seed-style':>22}  {'of GEMM peak':>12}")
    for row in rows:
        print(f"{row['batch']:>6}  {spread(row['bound_plain']):>22}  {spread(row['bound_seed']):>22}  "
              f"{row['bound'] * flops * row['batch'] / 1e9 / peak:>12.0%}")
    six = rows[0]
    print(f"six-instance group per instance-step / one instance, batch 128: {spread(six['six'])}")
    print(f"\nsteps/s (instance-steps/s)\n{'batch':>6} {'engine':>8} {'6-group':>8} {'plain':>8} {'seed-style':>10} "
          f"{'bound':>8}")
    for row in rows:
        e6 = f"{row['engine6']:8.1f}" if "engine6" in row else f"{'':>8}"
        print(f"{row['batch']:>6} {row['engine']:8.1f} {e6} {row['plain']:8.1f} {row['seed']:10.1f} {row['bound']:8.1f}")

    if dev.startswith("cuda"):  # "auto" keeps GPUs dense (the density read would be a host sync)
        print("\nsparse layer 2: CPU only ('auto' stays dense on a GPU); skipped")
        return
    print()
    sparse_table(rounds, args.quick, dev)  # benchmarks/sparse_step.py


if __name__ == "__main__":
    main()
