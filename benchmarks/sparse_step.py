"""The sparse path (layers.SparseMLP) against the dense one: whole training steps at several hidden densities.

    python benchmarks/sparse_step.py                 # densities 0.1% to 16% and trained models, 5 rounds (~2 min)
    python benchmarks/sparse_step.py --quick         # 3 rounds, shorter runs
    python benchmarks/sparse_step.py --threads 1     # a fixed thread count (default: the engine's own choice)
    python benchmarks/sparse_step.py --batch 8192    # the paper's batch size (slow: ~0.5 s per dense step)

A paper-size EM model (N=512, m=64, k=1024, eps=1/64) is trained at batch 128 with LR3-like settings (lr 0.03, bias
offset -1, bias decay) for 512 steps, when almost every hidden unit is off; its first-layer biases are then shifted
by one constant per density (found by bisection on fresh batches) to reach each density of the table ("shifted":
most neurons fire somewhere in a batch, the harder case). Models trained longer (1024, 2048 steps) are timed too, at
the density they reached ("trained"). Every round resumes each (model, path) from its state for the same steps, in
a rotating order, and takes the ratio sparse / dense speed inside the round: medians and the spread (min-max) over
rounds, because a shared machine is noisy. The crossover is where the shifted models' median ratio falls through 1
(interpolated in log density); ``layers.SPARSE_MAX_DENSITY`` and ``SPARSE_MAX_DENSITY_SMALL`` are set from it.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

import torch

from toymodels.config import ExperimentConfig
from toymodels.engine.process import allow_allocator_tuning, tune_allocator
from toymodels.engine.train import TrainingInterrupted, TrainState, train_group
from toymodels.families import get_family
from toymodels.families.em import EMModel, layers

DENSITIES = (0.001, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16)
SPARSE_STEPS = 512  # training steps into the sparse regime (~0.1% non-zero; later the neurons revive)
TRAINED = (SPARSE_STEPS, 1024, 2048)


def config(steps: int, device: str, threads: int = 0, batch: int = 128) -> ExperimentConfig:
    """The paper-size model with LR3-like settings."""
    return ExperimentConfig.from_flat({"N": 512, "m": 64, "k": 1024, "eps": 1 / 64, "batch_size": batch, "lr": 0.03,
                                       "bias_offset": -1.0, "bias_decay": 0.03, "steps": steps, "device": device,
                                       "threads": threads})


def sparse_state(cfg: ExperimentConfig, steps: int) -> TrainState:
    """The state of ``cfg``'s run after ``steps`` steps (its ``steps`` must be larger)."""
    got: list[TrainState] = []
    done = iter(range(1, steps + 1))
    try:
        train_group([cfg], on_state=got.append, state_every_s=float("inf"), should_stop=lambda: next(done) >= steps)
    except TrainingInterrupted:
        pass
    return got[-1]


def model_of(cfg: ExperimentConfig, state: TrainState) -> EMModel:
    """The state's model (the embedder is not part of the training state: rebuilt from the seed)."""
    return EMModel.from_tensors(state.params | {"E": EMModel.init([cfg]).E}, cfg.model.nonlinearity)


@torch.no_grad()
def hidden_stats(model: EMModel, cfg: ExperimentConfig, batches: int = 4) -> tuple[float, float]:
    """Share of non-zero hidden activations, and of neurons non-zero somewhere in a batch, on ``batches`` fresh
    batches of 128 (another seed than training's)."""
    sampler = get_family("em").sampler(cfg.replace(seed=cfg.run.seed + 1, batch_size=128), torch.device("cpu"))
    hs = [model(sampler.sample()[None].to(model.W1.device))[1] != 0 for _ in range(batches)]
    return (statistics.mean(float(h.float().mean()) for h in hs),
            statistics.mean(float(h.any(1).float().mean()) for h in hs))


def at_density(cfg: ExperimentConfig, state: TrainState, target: float) -> TrainState:
    """``state`` with every first-layer bias shifted by one constant so that the hidden density is ~``target``."""
    model = model_of(cfg, state)
    b1 = model.b1.detach().clone()
    lo, hi = -4.0, 4.0
    for _ in range(24):
        with torch.no_grad():
            model.b1.copy_(b1 + (lo + hi) / 2)
        if hidden_stats(model, cfg)[0] < target:
            lo = (lo + hi) / 2
        else:
            hi = (lo + hi) / 2
    return TrainState(**{**state.__dict__, "params": dict(state.params, b1=model.b1.detach().clone())})


def resumed_rate(cfg: ExperimentConfig, state: TrainState, steps: int, mode: str) -> float:
    """Steps/s over ``steps`` steps continuing from ``state``, layer 2's sparse switch set to ``mode``; timed from
    the first progress call (after the resumed run's first step) to the last."""
    before = EMModel.sparse
    EMModel.sparse = mode
    marks: list[tuple[int, float]] = []
    left = iter(range(steps, 0, -1))
    try:
        train_group([cfg], resume=state, should_stop=lambda: next(left) <= 1,
                    on_progress=lambda done, _: marks.append((done, time.perf_counter())))
    except TrainingInterrupted:
        pass
    finally:
        EMModel.sparse = before
    (s0, t0), (s1, t1) = marks[0], marks[-1]
    return (s1 - s0) / (t1 - t0)


def spread(xs: list[float]) -> str:
    return f"{statistics.median(xs):.2f}x ({min(xs):.2f}-{max(xs):.2f})"


def crossover(densities: list[float], ratios: list[float]) -> float | None:
    """The density where the ratio sparse / dense speed falls through 1 (linear in log density between the two
    measured points around it), None when it does not within the range."""
    for (d0, r0), (d1, r1) in zip(zip(densities, ratios), zip(densities[1:], ratios[1:])):
        if r0 >= 1 > r1:
            w = (r0 - 1) / (r0 - r1)
            return math.exp(math.log(d0) + w * (math.log(d1) - math.log(d0)))
    return None


def load() -> str:
    """The machine's load: the 1-minute load average against its cores."""
    one = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"load average {one:.1f} on {os.cpu_count()} cores"


def sparse_table(rounds: int, quick: bool, device: str = "cpu", threads: int = 0,
                 densities: tuple[float, ...] = DENSITIES, batch: int = 128) -> float | None:
    """Print sparse / dense step ratios at ``densities`` (biases shifted) and of models trained longer, in
    interleaved rounds, and the crossover of the shifted ones; return it."""
    # progress is reported every 16 steps: 3 or 7 timed intervals (1 at a large batch)
    measure = 17 if batch > 1024 else 49 if quick else 113
    train = config(4 * max(TRAINED), device, threads)
    cfg = train.replace(batch_size=batch)  # a state resumes at any batch size
    trained = {steps: sparse_state(train, steps) for steps in TRAINED[:2 if quick else None]}
    rows = [(f"shifted {d:.1%}", at_density(cfg, trained[SPARSE_STEPS], d)) for d in densities]
    rows += [(f"trained {steps}", state) for steps, state in trained.items()]
    fns = {(j, mode): (lambda s=state, m=mode: resumed_rate(cfg, s, measure, m))
           for j, (_, state) in enumerate(rows) for mode in ("off", "on")}
    out: dict = {name: [] for name in fns}
    names = list(fns)
    print(f"sparse path: paper-size model (N=512, m=64, k=1024), timed at batch {batch}; LR3-like settings (lr 0.03, "
          f"bias offset -1, bias decay), trained at batch 128 for {SPARSE_STEPS} steps, then biases shifted to each "
          f"density ('shifted'), or trained longer ('trained N': N steps); {rounds} interleaved rounds of {measure} "
          f"steps; {'threads ' + str(threads) if threads else 'threads: the engine policy'}; {load()} at the start")
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            tune_allocator()
            out[name].append(fns[name]())
    print(f"{'model':>14}  {'density':>8}  {'active':>7}  {'dense ms':>9}  {'sparse ms':>9}  {'sparse speed / dense':>22}")
    medians = []
    for j, (label, state) in enumerate(rows):
        density, active = hidden_stats(model_of(cfg, state), cfg)
        dense, sparse = out[(j, "off")], out[(j, "on")]
        ratios = [s / d for s, d in zip(sparse, dense)]
        medians.append(statistics.median(ratios))
        print(f"{label:>14}  {density:>8.2%}  {active:>7.1%}  {1e3 / statistics.median(dense):>9.2f}  "
              f"{1e3 / statistics.median(sparse):>9.2f}  {spread(ratios):>22}")
    cross = crossover(list(densities), medians[:len(densities)])
    where = f"{cross:.1%}" if cross is not None else "outside the range measured"
    limit = layers.SPARSE_MAX_DENSITY if batch >= layers.SPARSE_SMALL_BATCH else layers.SPARSE_MAX_DENSITY_SMALL
    print(f"active: share of neurons non-zero somewhere in a batch of 128. Crossover of the shifted models (sparse as "
          f"fast as dense): {where}; 'auto' takes the sparse path up to {limit:.1%} at this batch size "
          f"({load()} at the end)")
    return cross


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 rounds of shorter runs (noisier)")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 5, quick 3)")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (default 0: the engine's policy)")
    ap.add_argument("--batch", type=int, default=128, help="batch size of the timed steps (default 128)")
    ap.add_argument("--densities", default=",".join(map(str, DENSITIES)),
                    help="comma-separated hidden densities (default %(default)s)")
    args = ap.parse_args()
    if args.rounds is not None and args.rounds < 1:
        ap.error(f"--rounds: must be at least 1 (got {args.rounds})")
    if args.threads < 0:
        ap.error(f"--threads: must be 0 (the engine's policy) or more (got {args.threads})")
    if args.batch < 1:
        ap.error(f"--batch: must be at least 1 (got {args.batch})")
    try:
        densities = tuple(sorted(float(d) for d in args.densities.split(",")))
    except ValueError:
        ap.error(f"--densities: comma-separated numbers in (0, 1) (got {args.densities!r})")
    if not all(0 < d < 1 for d in densities):
        ap.error(f"--densities: each must be in (0, 1) (got {args.densities!r})")
    allow_allocator_tuning()  # as the toymodels command does in its own process
    sparse_table(args.rounds or (3 if args.quick else 5), args.quick, threads=args.threads, densities=densities,
                 batch=args.batch)


if __name__ == "__main__":
    main()
