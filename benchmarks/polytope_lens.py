"""The whole polytope lens on a quick-scale LR1 folder (6 instances, every checkpoint step), timed.

    python benchmarks/polytope_lens.py runs/LR1-quick     # a folder trained with `toymodels run LR1 --scale quick`
    python benchmarks/polytope_lens.py                    # trains one first into a temporary folder (~1.5 min)
    python benchmarks/polytope_lens.py DIR --final        # the final checkpoints only (what the report draws)

Prints the read, the lens and its rows per second (``families.polytope.lens_table``: spline codes of 4096
training-law samples, lone-feature purity and completeness, codes per ray, boundary density on 2048 + 128 paths,
the validity range of 128 rays, all exact; docs/papers.md §6.2). The issue asks for under a minute on 2 cores.

Measured on this project's 2-core machine (2026-12-07, AMD EPYC Zen 2, shared with other jobs), LR1 quick
(N=128, m=16, k=256; 16 checkpoint steps x 6 instances = 96 models), one thread (the lens runs on one: its tensors
are small and torch's pool costs ~10 ms an op on a busy machine): 13.3 s at load 4-5, 17.9 s at load 6-7; --final
(6 models): 2.2 s. The training run the script starts without a folder took 82 s.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import toymodels.families  # noqa: F401  (registers the families)
from toymodels.families.polytope import lens_table
from toymodels.results.store import load


def train(out: Path) -> Path:
    """`toymodels run LR1 --scale quick --out OUT` (no report), in a fresh interpreter."""
    cmd = [sys.executable, "-m", "toymodels.cli", "run", "LR1", "--scale", "quick", "--out", str(out),
           "--no-report", "--no-progress"]
    t = time.perf_counter()
    subprocess.run(cmd, check=True)
    print(f"trained {out} in {time.perf_counter() - t:.1f} s")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", help="a quick-scale LR1 results folder (default: train one)")
    parser.add_argument("--final", action="store_true", help="the final checkpoints only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.folder) if args.folder else train(Path(tmp) / "LR1-quick")
        t = time.perf_counter()
        results = load(folder)
        read = time.perf_counter() - t
        t = time.perf_counter()
        table = lens_table(results, final_only=args.final)
        lens = time.perf_counter() - t
    models = len(table)
    print(f"{folder}: {len(results.instances)} instances, {models} models (instances x steps)")
    print(f"read {read:.2f} s, lens {lens:.1f} s ({models / lens:.1f} models/s); under a minute: {lens < 60}")
    cols = ["lr", "step", "code_purity", "code_completeness", "neuron_purity", "ray_codes", "density_ratio",
            "validity_upper"]
    last = table[table["step"] == table["step"].max()]
    print(last[[c for c in cols if c in last.columns]].to_string(index=False))


if __name__ == "__main__":
    main()
