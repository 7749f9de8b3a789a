"""The sweeps behind the EM claims (docs/papers.md §4 rows 1-7), how ``--steps`` cuts them, and running them.

Primary runs keep the paper's per-step bias decay (0.03 or 0.003, whatever Table 1 says) and LAMB clamp 10 at every
scale and length, fixed before any run. Two sensitivity analyses, judged by the same rules, ask whether a verdict
depends on those choices: ``LR3-rescaled`` multiplies the decay by 2^17/steps (the cumulative pull of the paper's
run, ``presets.scaled_bias_decay``) and ``LR1-clamp`` / ``LR3-clamp`` scale LAMB's clamp to the model's size
(``presets.size_scaled_lamb_clamp``: 5 at quick scale). The learning-rate sweeps keep a checkpoint at every peak and
trough of the paper's periodic lr (``checkpoint_every`` = 512: steps 511, 1023, 1535, ...), because the models
differ between the two (claim 1). Results folder names follow the variant, so an earlier run of the same sweep is
resumed.
"""

from __future__ import annotations

from pathlib import Path

from toymodels.config import ConfigError, SweepConfig
from toymodels.engine.optim import PAPER_T_MAX
from toymodels.config.presets import preset
from toymodels.families.em.presets import PAPER_STEPS, scaled_bias_decay, size_scaled_lamb_clamp, with_steps
from toymodels.results.store import Results
from toymodels.reproduce.study import load_for_study, train_sweep

EM_CLAIMS = ["LR1", "LR2", "LR3", "B", "K1", "MECH", "RG1"]
B_BIASES = [-2.0, -1.4, -0.8, -0.2, 0.4, 1.0]
#: the B check: Table 1's batches at three densities (B1 eps 1/16 decay 0.03, B3 1/64 and B5 1/256 decay 0.003)
B_PRESETS = {"16": "B1", "64": "B3", "256": "B5"}
K1_PAPER_KS = [64, 128, 256, 512, 1024, 2048]  # quick scale (/4): 16 .. 512 (docs/papers.md §4 row 5)
RG1_L1S = [1e-1, 1e-2, 1e-3, 1e-4, 1e-5]
LONG_LRS = [0.003, 0.01, 0.03]  # LR3's longer check (4x the steps), only when steps are cut
#: checkpoints of the learning-rate sweeps: every half period of paper_cosine (its peaks and troughs)
LR_CHECKPOINT_EVERY = PAPER_T_MAX


def parse_steps(text: str | int | None) -> dict[str, int]:
    """``--steps``: ``4096`` (every claim) or ``4096,B=2048,K1=2048`` (a default plus per-claim values).
    Returns {claim or "*": steps}; ConfigError naming the field for anything else.

    >>> parse_steps("4096,B=2048")
    {'*': 4096, 'B': 2048}
    """
    if text is None or text == "":
        return {}
    if isinstance(text, int):
        return {"*": text}
    out: dict[str, int] = {}
    for item in str(text).split(","):
        key, _, value = item.strip().rpartition("=")
        try:
            out[key or "*"] = int(value)
        except ValueError:
            raise ConfigError(f"field 'steps': expected N or N,CLAIM=N,... (got {text!r})") from None
        if out[key or "*"] < 1:
            raise ConfigError(f"field 'steps': must be >= 1 (got {text!r})")
    return out


def claim_steps(steps: dict[str, int] | int | None, name: str) -> int | None:
    """The steps claim ``name`` trains for: its own ``--steps`` value, else the default one, else None (the scale's)."""
    if steps is None or isinstance(steps, int):
        return steps
    return steps.get(name, steps.get("*"))


def _variant(sw: SweepConfig, suffix: str, **base: object) -> SweepConfig:
    return SweepConfig(name=sw.name + suffix, base=sw.base.replace(**base) if base else sw.base, grid=sw.grid,
                       seeds=sw.seeds)


def lr_sweep(name: str, scale: str, seeds: int, steps: int | None) -> SweepConfig:
    """A learning-rate preset (LR1, LR2, LR3) with the paper's decay, cut to ``steps``, keeping peaks and troughs."""
    sw = preset(name, scale, seeds)
    sw = with_steps(sw, steps) if steps else sw
    return _variant(sw, "", checkpoint_every=LR_CHECKPOINT_EVERY)


def clamp_variant(sw: SweepConfig) -> SweepConfig:
    """The sensitivity run with LAMB's clamp scaled to the model's size (suffix ``-clamp<value>``)."""
    clamp = size_scaled_lamb_clamp(sw.base.model.k)
    return _variant(sw, f"-clamp{clamp:g}", lamb_clamp=clamp)


def lr3_sweeps(name: str, scale: str, seeds: int, steps: int | None) -> dict[str, SweepConfig]:
    """LR3 (per-step decay) and, for the LR3 claim, its sensitivity runs (module docstring); ``MECH`` needs LR3."""
    primary = lr_sweep("LR3", scale, seeds, steps)
    out = {"LR3": primary}
    if name != "LR3":
        return out
    n_steps = primary.base.optim.steps
    if n_steps != PAPER_STEPS:
        decay = scaled_bias_decay(primary.base.optim.bias_decay, PAPER_STEPS, n_steps, "cumulative")
        out["LR3-rescaled"] = _variant(primary, "-rescaled", bias_decay=decay)
    if size_scaled_lamb_clamp(primary.base.model.k) != primary.base.optim.lamb_clamp:
        out["LR3-clamp"] = clamp_variant(primary)
    full = preset("LR3", scale, seeds).base.optim.steps
    if steps and steps < full:
        # does the LR3 effect appear with longer training? LR3 and LR1 at 4x the steps
        long = min(4 * steps, full)
        for label, base in (("LR3-long", primary.base), ("LR1-long", lr_sweep("LR1", scale, seeds, None).base)):
            out[label] = SweepConfig(name=f"{label}-{scale}-s{long}", base=base.replace(steps=long),
                                     grid={"lr": LONG_LRS}, seeds=seeds)
    return out


def claim_sweeps(name: str, scale: str, seeds: int, steps: dict[str, int] | int | None = None
                 ) -> dict[str, SweepConfig]:
    """The sweeps (label -> SweepConfig) that claim ``name`` needs; MECH reuses LR3's (at LR3's steps)."""
    steps = claim_steps(steps, "LR3" if name == "MECH" else name)
    if name in ("LR1", "LR2"):
        sw = lr_sweep(name, scale, seeds, steps)
        out = {name: sw}
        if name == "LR1" and size_scaled_lamb_clamp(sw.base.model.k) != sw.base.optim.lamb_clamp:
            out["LR1-clamp"] = clamp_variant(sw)
        return out
    if name in ("LR3", "MECH"):
        return lr3_sweeps(name, scale, seeds, steps)
    if name == "B":
        biases = B_BIASES if scale != "smoke" else [B_BIASES[0], B_BIASES[2], B_BIASES[4]]
        sweeps = {f"B-eps{tag}": SweepConfig(name=f"B-eps{tag}-{scale}", base=preset(name, scale, seeds).base,
                                             grid={"bias_offset": biases}, seeds=seeds)
                  for tag, name in B_PRESETS.items()}
        return {label: with_steps(sw, steps) if steps else sw for label, sw in sweeps.items()}
    if name == "K1":
        sw = preset("K1", scale, seeds)
        ks = [k for k in sw.grid["k"] if k in {max(1, k0 // (512 // sw.base.data.N)) for k0 in K1_PAPER_KS}]
        sw = SweepConfig(name=sw.name, base=sw.base, grid={"k": ks or sw.grid["k"]}, seeds=seeds)
        return {"K1": with_steps(sw, steps) if steps else sw}
    if name == "RG1":
        sw = preset("RG1", scale, seeds)
        l1s = RG1_L1S if scale != "smoke" else [RG1_L1S[0], RG1_L1S[2], RG1_L1S[4]]
        sw = SweepConfig(name=sw.name, base=sw.base, grid={"l1": l1s}, seeds=seeds)
        return {"RG1": with_steps(sw, steps) if steps else sw}
    raise ConfigError(f"unknown claim '{name}'; available: {', '.join(EM_CLAIMS)} (or TMS-*/PC-* presets)")


def run_sweeps(sweeps: dict[str, SweepConfig], out_dir: Path, progress: bool = False,
               train: bool = True) -> dict[str, Results]:
    """Train (or resume, or just load) each sweep into ``out_dir/<sweep name>``. With ``train=False`` only what is
    already there is loaded (finished groups; a sweep never started is left out)."""
    results = {}
    for label, sw in sweeps.items():
        folder = Path(out_dir) / sw.name
        if train:
            results[label] = train_sweep(sw, folder, progress)
        elif (folder / "sweep.json").exists():
            results[label] = load_for_study(folder)
    return results
