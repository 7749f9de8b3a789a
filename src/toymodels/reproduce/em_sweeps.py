"""The sweeps behind the EM claims (docs/papers.md §4 rows 1-7), how ``--steps`` cuts them, and running them.

Each claim trains presets of ``toymodels.presets`` (sometimes on a reduced grid, see the constants below). When
``steps`` cuts training short, the bias decay follows a rule of :func:`toymodels.presets.scaled_bias_decay`: LR3
runs with the paper's per-step decay (``LR3``), the cumulative-pull decay (``LR3-rescaled``, only for the LR3 claim)
and the sqrt compromise (``LR3-sqrt``); the other claims with bias decay (B, K1, RG1) use the sqrt rule, which
behaved most like the paper in the LR3 check (the presets module docstring has the measurements). Results folder
names follow the variant (``-unrescaled``, ``-sqrtdecay``), so an earlier run of the same sweep is resumed.
"""

from __future__ import annotations

from pathlib import Path

from ..config import ConfigError, SweepConfig
from ..presets import PAPER_STEPS, preset, scaled_bias_decay, with_steps
from ..store import Results, load
from ..sweep import run_sweep

EM_CLAIMS = ["LR1", "LR2", "LR3", "B", "K1", "MECH", "RG1"]
B_BIASES = [-2.0, -1.4, -0.8, -0.2, 0.4, 1.0]
B_EPSS = {"16": 1 / 16, "64": 1 / 64, "256": 1 / 256}
K1_PAPER_KS = [64, 128, 256, 512, 1024, 2048]  # quick scale (/4): 16 .. 512 (docs/papers.md §4 row 5)
RG1_L1S = [1e-1, 1e-2, 1e-3, 1e-4, 1e-5]
LONG_LRS = [0.003, 0.01, 0.03]  # LR3's longer check (4x the steps)
#: the rule for the claims with bias decay other than LR3 when steps are cut (module docstring)
CUT_DECAY_RULE = "sqrt"


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


def cut_with_decay_rule(sweep: SweepConfig, steps: int | None) -> SweepConfig:
    """The sweep cut to ``steps`` with its bias decay scaled by ``CUT_DECAY_RULE`` from the paper's 2^17 steps
    (name suffix ``-s<steps>-sqrtdecay``); only cut, with the per-step decay, when it has no bias decay; unchanged
    when ``steps`` is None."""
    if not steps:
        return sweep
    cut = with_steps(sweep, steps)
    if cut.base.optim.bias_decay == 0 and not cut.grid.get("bias_decay"):
        return cut
    scaled = with_steps(sweep, steps, CUT_DECAY_RULE, reference_steps=PAPER_STEPS)
    return SweepConfig(name=cut.name + "-sqrtdecay", base=scaled.base, grid=scaled.grid, seeds=scaled.seeds)


def lr3_sweeps(name: str, scale: str, seeds: int, steps: int | None) -> dict[str, SweepConfig]:
    """LR3's variants (see the module docstring); ``MECH`` needs only the per-step and the sqrt one."""
    sw = preset("LR3", scale, seeds)
    n_steps = steps or sw.base.optim.steps
    stem = sw.name + (f"-s{steps}" if steps else "")
    paper_decay = preset("LR3", "paper").base.optim.bias_decay

    def variant(suffix: str, rule: str) -> SweepConfig:
        decay = scaled_bias_decay(paper_decay, PAPER_STEPS, n_steps, rule)
        return SweepConfig(name=stem + suffix, base=sw.base.replace(steps=n_steps, bias_decay=decay), grid=sw.grid,
                           seeds=seeds)

    out = {"LR3": variant("-unrescaled", "per_step")}
    if n_steps != PAPER_STEPS:
        if name == "LR3":
            out["LR3-rescaled"] = variant("", "cumulative")
        out["LR3-sqrt"] = variant("-sqrtdecay", "sqrt")
    if name == "LR3" and steps and steps < sw.base.optim.steps:
        # does the LR3 effect appear with longer training? LR3 (per-step decay) and LR1 at 4x the steps
        long = min(4 * steps, sw.base.optim.steps)
        for label, base in (("LR3-long", out["LR3"].base), ("LR1-long", preset("LR1", scale, seeds).base)):
            out[label] = SweepConfig(name=f"{label}-{scale}-s{long}", base=base.replace(steps=long),
                                     grid={"lr": LONG_LRS}, seeds=seeds)
    return out


def claim_sweeps(name: str, scale: str, seeds: int, steps: dict[str, int] | int | None = None
                 ) -> dict[str, SweepConfig]:
    """The sweeps (label -> SweepConfig) that claim ``name`` needs; MECH reuses LR3's (at LR3's steps)."""
    steps = claim_steps(steps, "LR3" if name == "MECH" else name)
    if name in ("LR1", "LR2"):
        sw = preset(name, scale, seeds)
        return {name: with_steps(sw, steps) if steps else sw}
    if name in ("LR3", "MECH"):
        return lr3_sweeps(name, scale, seeds, steps)
    if name == "B":
        base = preset("B3", scale, seeds)
        biases = B_BIASES if scale != "smoke" else [B_BIASES[0], B_BIASES[2], B_BIASES[4]]
        return {f"B-eps{tag}": cut_with_decay_rule(SweepConfig(
            name=f"B-eps{tag}-{scale}", base=base.base.replace(eps=eps), grid={"bias_offset": biases}, seeds=seeds),
            steps) for tag, eps in B_EPSS.items()}
    if name == "K1":
        sw = preset("K1", scale, seeds)
        ks = [k for k in sw.grid["k"] if k in {max(1, k0 // (512 // sw.base.data.N)) for k0 in K1_PAPER_KS}]
        sw = SweepConfig(name=sw.name, base=sw.base, grid={"k": ks or sw.grid["k"]}, seeds=seeds)
        return {"K1": cut_with_decay_rule(sw, steps)}
    if name == "RG1":
        sw = preset("RG1", scale, seeds)
        l1s = RG1_L1S if scale != "smoke" else [RG1_L1S[0], RG1_L1S[2], RG1_L1S[4]]
        sw = SweepConfig(name=sw.name, base=sw.base, grid={"l1": l1s}, seeds=seeds)
        return {"RG1": cut_with_decay_rule(sw, steps)}
    raise ConfigError(f"unknown claim '{name}'; available: {', '.join(EM_CLAIMS)} (or TMS-*/PC-* presets)")


def run_sweeps(sweeps: dict[str, SweepConfig], out_dir: Path, progress: bool = False,
               train: bool = True) -> dict[str, Results]:
    """Train (or resume, or just load) each sweep into ``out_dir/<sweep name>``. With ``train=False`` only what is
    already there is loaded (finished groups; a sweep never started is left out)."""
    results = {}
    for label, sw in sweeps.items():
        folder = Path(out_dir) / sw.name
        if train:
            results[label] = run_sweep(sw, folder, resume=True, progress=progress)
        elif (folder / "sweep.json").exists():
            results[label] = load(folder)
    return results
