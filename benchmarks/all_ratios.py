"""Every performance ratio the project tracks, in one run: one benchmark after another, each in a fresh process.

    python benchmarks/all_ratios.py                        # the short forms (about 15 minutes on a 2-core machine)
    python benchmarks/all_ratios.py --full                 # the long forms (about an hour)
    python benchmarks/all_ratios.py --seed-repo PATH       # also the seed repository's own command line

What each part prints (ratios first, measured against a baseline in the same run):

* ``concurrent_runs.py``: two sweeps side by side against one alone (busy machines; target <= 2.5x);
* ``train_throughput.py``: the engine against a plain PyTorch Adam loop and the seed-style loop at batch 128, 1024
  and 8192, the dense bound, and sparse against dense steps (small and large batches, past the dense bound);
* ``sweep_memory.py``: the six-lr sweep as whole processes, peak memory and wall time, against the seed-style
  script and, with ``--seed-repo``, the seed repository's own command line.

Run it on an otherwise idle machine: the ratios are taken inside each benchmark, but two busy cores still move them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent


def parts(full: bool, seed_repo: Path | None) -> list[list[str]]:
    memory = ["sweep_memory.py", "--rounds", "3" if full else "1", "--steps", "512" if full else "256"]
    if seed_repo is not None:
        memory += ["--seed-repo", str(seed_repo)]
    return [
        ["concurrent_runs.py"] + ([] if full else ["--rounds", "1"]),
        ["train_throughput.py"] + ([] if full else ["--quick"]),
        memory,
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="the long forms of every benchmark")
    ap.add_argument("--seed-repo", type=Path, help="a checkout of the seed repository: also time its own CLI")
    args = ap.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{os.cpu_count()} CPUs, load average {load:.2f} at the start", flush=True)
    failed = []
    for part in parts(args.full, args.seed_repo):
        print(f"\n=== {' '.join(part)}", flush=True)
        start = time.perf_counter()
        done = subprocess.run([sys.executable, str(HERE / part[0]), *part[1:]], cwd=HERE)
        print(f"({time.perf_counter() - start:.0f} s)", flush=True)
        if done.returncode:
            failed.append(part[0])
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
