"""Peak memory and wall time of a whole sweep: the toymodels command line against a seed-style script, same workload.

    python benchmarks/sweep_memory.py              # 3 alternating rounds of each, 512 steps (a few minutes)
    python benchmarks/sweep_memory.py --steps 256 --rounds 1
    python benchmarks/sweep_memory.py --seed-repo PATH   # also the seed repository's own command line

The workload is issue 15's: the six-value learning-rate sweep of LR1 at the paper's size (N=512, m=64, k=1024),
batch 128. toymodels runs ``toymodels run LR1 --scale paper --seeds 1 --set steps=S --set batch_size=128
--no-report`` (one group of six instances, checkpoints streamed to disk, every checkpoint evaluated, tables
written). The seed-style script trains the six runs one after another in one process, as the seed repository's
``--sweep_var learning_rate`` does, with ``seed_loop.seed_rate`` (torch-optimizer's Lamb, deepcopy
checkpoints at 2^j - 1 kept in memory until the run ends; no evaluation, nothing written: the least it could do).
Each runs in a fresh process; the peak is that process's VmHWM (the most resident memory it ever held), from import
to exit. Rounds alternate the two, and the table shows medians and the ratio.

With ``--seed-repo PATH`` (a checkout of jbloomAus/toy_model_interpretability; it needs torch, torch-optimizer, tqdm,
numpy and pandas in this interpreter) the seed repository's own command line joins the rounds, run from its root as
``python -m main ... --sweep_var learning_rate --sweep_values <LR1's six lrs>``, against the ``toymodels`` command
itself (``python -m toymodels run LR1 ...``): both whole processes, start-up included, peak from ``wait4``'s
ru_maxrss.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LRS = (0.001, 0.003, 0.005, 0.007, 0.01, 0.03)  # the seed CLI's --sweep_values in issue 15, LR1's lrs


def peak_gb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1e6
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def child(which: str, steps: int, out: str) -> None:
    """Run one sweep in this process and print its peak memory (GB)."""
    if which == "seed":
        from seed_loop import seed_rate  # beside this file; imports torch and torch-optimizer only

        for lr in LRS:
            seed_rate(128, steps, "cpu", lr=lr)
    else:
        from toymodels.cli import main

        sys.argv = ["toymodels", "run", "LR1", "--scale", "paper", "--seeds", "1", "--set", f"steps={steps}",
                    "--set", "batch_size=128", "--no-report", "--no-progress", "--out", out]
        try:
            main()
        except SystemExit as err:
            if err.code:
                raise
    print(f"PEAK {peak_gb():.4f}")


def measure(which: str, steps: int) -> tuple[float, float]:
    """(peak GB, wall seconds) of one fresh process running the sweep."""
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        done = subprocess.run([sys.executable, __file__, "--child", which, "--steps", str(steps),
                               "--out", str(Path(tmp) / "run")], capture_output=True, text=True)
        wall = time.perf_counter() - t
    if done.returncode:
        raise SystemExit(f"{which} sweep failed:\n{done.stderr[-3000:]}")
    return float(done.stdout.split("PEAK")[-1]), wall


def cli_command(which: str, steps: int, out: str) -> list[str]:
    """The command line of one whole-process sweep: the seed CLI (from its repository's root) or ours."""
    if which == "seed CLI":
        return [sys.executable, "-m", "main", "--N", "512", "--m", "64", "--k", "1024", "--eps", "0.015625",
                "--log2_batch_size", "7", "--learning_rate", "0.003",
                "--log2_training_steps", str(steps.bit_length() - 1),
                "--sample_kind", "equal", "--task", "autoencoder", "--decay", "0", "--initial_bias", "0",
                "--nonlinearity", "ReLU", "--reg", "0", "--sweep_var", "learning_rate", "--sweep_values",
                *[str(lr) for lr in LRS], "--output_dir", out, "--file_name", "sweep"]
    return [sys.executable, "-m", "toymodels", "run", "LR1", "--scale", "paper", "--set", "N=512", "--set", "m=64",
            "--set", "k=1024", "--set", "batch_size=128", "--set", f"steps={steps}", "--no-report", "--no-progress",
            "--out", out]


def measure_cli(which: str, steps: int, seed_repo: Path) -> tuple[float, float]:
    """(peak GB, wall seconds) of one command-line sweep, start-up included."""
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "run")
        os.makedirs(out) if which == "seed CLI" else None
        log = Path(tmp) / "stderr.log"  # a file, not a pipe: a progress bar would fill a pipe and stall the child
        with log.open("wb") as sink:
            t = time.perf_counter()
            proc = subprocess.Popen(cli_command(which, steps, out), cwd=seed_repo if which == "seed CLI" else None,
                                    stdout=subprocess.DEVNULL, stderr=sink)
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t
        err = log.read_text(errors="replace")
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{which} failed:\n{err[-3000:]}")
    return usage.ru_maxrss / 1e6, wall  # ru_maxrss is in KiB on Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed-repo", type=Path, help="a checkout of the seed repository: also time its own CLI")
    ap.add_argument("--child", choices=["seed", "toymodels"], help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child, args.steps, args.out)
    from toymodels.config.presets import preset  # only to check the workload is LR1's

    lrs = tuple(float(x) for x in preset("LR1", scale="paper").grid["lr"])
    assert lrs == LRS, f"LR1's paper-scale lrs changed: {lrs}"
    runs: dict[str, list[tuple[float, float]]] = {"toymodels": [], "seed": []}
    if args.seed_repo:
        if args.steps & (args.steps - 1):
            ap.error("--seed-repo: the seed CLI takes log2 of the steps: give a power of two")
        runs |= {"toymodels CLI": [], "seed CLI": []}
    for r in range(args.rounds):
        order = list(runs) if r % 2 == 0 else list(reversed(runs))
        for which in order:
            runs[which].append(measure_cli(which, args.steps, args.seed_repo) if "CLI" in which
                               else measure(which, args.steps))
    med = {w: (statistics.median(p for p, _ in v), statistics.median(t for _, t in v)) for w, v in runs.items()}
    print(f"LR1 at paper size, six lrs, batch 128, {args.steps} steps; fresh process each, medians of "
          f"{args.rounds} alternating rounds")
    print(f"{'':>14} {'peak memory':>12} {'wall':>8}")
    for w in runs:
        print(f"{w:>14} {med[w][0]:>9.2f} GB {med[w][1]:>7.1f}s")
    print(f"toymodels / seed-style script: memory {med['toymodels'][0] / med['seed'][0]:.2f}x, "
          f"speed {med['seed'][1] / med['toymodels'][1]:.2f}x (whole process, wall)")
    if args.seed_repo:
        pairs = [s / t for (_, s), (_, t) in zip(runs["seed CLI"], runs["toymodels CLI"])]
        print(f"toymodels CLI / seed CLI: memory {med['toymodels CLI'][0] / med['seed CLI'][0]:.2f}x, "
              f"speed {med['seed CLI'][1] / med['toymodels CLI'][1]:.2f}x (per round {min(pairs):.2f}-"
              f"{max(pairs):.2f}x; whole process, start-up included)")


if __name__ == "__main__":
    main()
