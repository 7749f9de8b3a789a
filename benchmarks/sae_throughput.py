"""Training 16 SAEs at once against the same 16 one after another, with the same code, in one process.

    python benchmarks/sae_throughput.py            # 16 ReLU+L1 SAEs, 128 features in 32 dims, width 128
    python benchmarks/sae_throughput.py --quick    # fewer steps
    python benchmarks/sae_throughput.py --sae-lens # also one sae-lens synthetic SAE of the same size (test extra)
    python benchmarks/sae_throughput.py --threads 1  # both runs on one thread (a busy shared machine)

Both runs call ``toymodels.engine.train.train_group``: once with the 16 configs (one batched group: l1, lr and seed vary
per instance) and 16 times with one config each. Prints wall times, SAE-steps per second and their ratio. With
``--sae-lens`` it also trains one SAE of the same size with ``sae_lens.synthetic.train_toy_sae`` on the same number
of samples and reports 16 x its time (sae-lens trains one SAE at a time).

Measured on this project's 2-core machine (2026-12-03, AMD EPYC Zen 2, otherwise idle), 1000 steps, torch's two
threads: batched 8.9 s, one after another 28.8 s (3.23x); sae-lens ``train_toy_sae`` 2.6 s per SAE, so 16 take about
41.8 s (4.67x the batched job). ``--quick`` (300 steps): 3.01x. Before the engine chose its threads by the load,
on a machine busy with other jobs the batched group, the only one given two threads, lost badly (0.15x at load 3-6);
now it takes fewer threads by itself (benchmarks/concurrent_runs.py). ``--threads N`` fixes N (the config field).
"""

from __future__ import annotations

import argparse
import time

import torch

from toymodels.config import ExperimentConfig
from toymodels.engine.train import train_group

N, D, WIDTH, BATCH, EPS = 128, 32, 128, 128, 1 / 32
N_SAES = 16


def configs(steps: int) -> list[ExperimentConfig]:
    base = ExperimentConfig.from_flat({
        "model": "sae", "N": N, "m": D, "eps": EPS, "sae_arch": "relu_l1", "sae_width": WIDTH, "l1": 0.03,
        "optimizer": "adam", "schedule": "constant", "lr": 3e-3, "batch_size": BATCH, "steps": steps})
    l1s, lrs = [0.01, 0.03, 0.1, 0.3], [1e-3, 3e-3]
    return [base.replace(l1=l1s[i % 4], lr=lrs[(i // 4) % 2], seed=i) for i in range(N_SAES)]


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def sae_lens_seconds(steps: int) -> float:
    """Wall time of one sae-lens synthetic SAE (StandardTrainingSAE, L1) of this size on steps x BATCH samples."""
    # deferred: sae-lens is a heavy optional dependency (the test extra), only this option needs it
    from sae_lens.saes.standard_sae import StandardTrainingSAE, StandardTrainingSAEConfig
    from sae_lens.synthetic import ActivationGenerator, FeatureDictionary, train_toy_sae

    fd = FeatureDictionary(N, D, seed=0)
    gen = ActivationGenerator(N, EPS, mean_firing_magnitudes=0.5, std_firing_magnitudes=0.29)
    sae = StandardTrainingSAE(StandardTrainingSAEConfig(d_in=D, d_sae=WIDTH, l1_coefficient=0.03))
    return timed(lambda: train_toy_sae(sae, fd, gen, training_samples=steps * BATCH, batch_size=BATCH, lr=3e-3))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="300 steps instead of 1000")
    ap.add_argument("--sae-lens", action="store_true", help="also time sae-lens' synthetic training")
    ap.add_argument("--threads", type=int, default=None,
                    help="threads for both runs (the config field `threads`; default: the engine's automatic "
                         "count: one thread for the small one-by-one runs, the free cores for the batched group)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)  # what the header line reports
    steps = 300 if args.quick else 1000
    cfgs = [c.replace(threads=args.threads) for c in configs(steps)] if args.threads else configs(steps)
    train_group(configs(16)[:2])  # warm up allocator and kernels
    batched = timed(lambda: train_group(cfgs))
    one_by_one = timed(lambda: [train_group([c]) for c in cfgs])
    print(f"{N_SAES} ReLU+L1 SAEs ({N} features in {D} dims, width {WIDTH}, batch {BATCH}, {steps} steps), "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"  batched (one group of {N_SAES}): {batched:7.1f} s  {N_SAES * steps / batched:8.0f} SAE-steps/s")
    print(f"  one after another:            {one_by_one:7.1f} s  {N_SAES * steps / one_by_one:8.0f} SAE-steps/s")
    print(f"  speed-up of the batched job:  {one_by_one / batched:7.2f}x")
    if args.sae_lens:
        one = sae_lens_seconds(steps)
        print(f"  sae-lens train_toy_sae, 1 SAE: {one:6.1f} s -> {N_SAES} SAEs ~{N_SAES * one:.1f} s "
              f"({N_SAES * one / batched:.2f}x the batched job)")


if __name__ == "__main__":
    main()
