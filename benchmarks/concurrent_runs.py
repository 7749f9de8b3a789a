"""Two sweeps side by side on one machine: each one's time against the same sweep run alone, in one run.

    python benchmarks/concurrent_runs.py                    # LR1 (quick, 1024 steps) and 16 batched SAEs, 2 rounds
    python benchmarks/concurrent_runs.py --with-two-threads # also both copies forced to 2 threads (slow: minutes)

For each workload it runs the `toymodels run` command alone, then two copies started together with the automatic
thread count (the default: ``toymodels.engine.threads``) and, with ``--with-two-threads``, two copies with
``--threads 2`` (every group on two threads, what the engine did before: the collapse this guards against). Prints
the wall time of each and the ratio side-by-side / alone (the target is at most 2.5x on a 2-core machine, where 2x
would be a fair share). Run it on an otherwise idle machine: other jobs change both numbers.

Measured on this project's 2-core machine (2026-12-07, AMD EPYC Zen 2, otherwise idle): 3 rounds, LR1 alone 4.5 s,
side by side 1.28x (worst copy); the 16 SAEs alone 6.2 s, side by side 1.09x. With ``--with-two-threads`` (one
round): LR1 2.86x, the SAEs 607 s each against 5.8 s alone (105x).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SAE_SWEEP = {  # the batched group of benchmarks/sae_throughput.py: 16 SAEs, l1 x lr x seeds
    "name": "sae16", "model": "sae", "N": 128, "m": 32, "eps": 1 / 32, "sae_arch": "relu_l1", "sae_width": 128,
    "optimizer": "adam", "schedule": "constant", "batch_size": 128, "steps": 1000,
    "grid": {"l1": [0.01, 0.03, 0.1, 0.3], "lr": [1e-3, 3e-3]}, "seeds": 2,
}


def command(workload: str, out: Path, threads: int | None, work: Path) -> list[str]:
    base = [sys.executable, "-m", "toymodels", "run"]
    if workload == "LR1":
        base += ["LR1", "--scale", "quick", "--set", "steps=1024"]
    else:
        sweep = work / "sae16.json"
        sweep.write_text(json.dumps(SAE_SWEEP))
        base += [str(sweep)]
    base += ["--out", str(out), "--no-report", "--no-progress"]
    return base + (["--threads", str(threads)] if threads else [])


def timed(cmds: list[list[str]]) -> list[float]:
    """Start every command at once; the wall time of each."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    start = time.perf_counter()
    procs = [subprocess.Popen(c, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for c in cmds]
    ends = []
    for p in procs:
        _, err = p.communicate()
        if p.returncode:
            sys.exit(f"failed: {' '.join(cmds[0])}\n{err.decode()[-2000:]}")
        ends.append(time.perf_counter() - start)
    return ends


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--with-two-threads", action="store_true", help="also two copies forced to 2 threads")
    args = parser.parse_args()
    print(f"cores usable: {len(os.sched_getaffinity(0))}, load before: {os.getloadavg()[0]:.2f}")
    for workload in ("LR1", "SAE"):
        alone, auto, two = [], [], []
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            for r in range(args.rounds):
                runs = lambda tag, n, threads: [command(workload, work / f"{tag}{r}-{i}", threads, work)  # noqa: E731
                                                for i in range(n)]
                alone += timed(runs("alone", 1, None))
                auto += timed(runs("auto", 2, None))
                if args.with_two_threads:
                    two += timed(runs("two", 2, 2))
        solo = statistics.median(alone)
        line = (f"{workload}: alone {solo:.1f} s | side by side, automatic threads: "
                f"{' '.join(f'{t:.1f}' for t in auto)} s = {max(auto) / solo:.2f}x alone (worst)")
        if two:
            times = " ".join(f"{t:.1f}" for t in two)
            line += f" | side by side, --threads 2: {times} s = {max(two) / solo:.2f}x alone"
        print(line)


if __name__ == "__main__":
    main()
