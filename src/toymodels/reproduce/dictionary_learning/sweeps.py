"""The dictionary-learning study's sweeps and how they are trained or reloaded.

* ``SAE-L0``, ``SAE-ABS``: synthetic dictionaries (``families.sae.presets.sae_sweeps``), ``seeds`` seeds each; SAE-ABS
  on the four architectures and three firing structures (its independent arm is the null baseline).
* ``SAE-LR``: the EM claims' primary LR1 sweep (``em_claims.sweeps.claim_sweeps("LR1", ...)``, 2^15 steps at quick
  scale), in the same results folder as the EM study (``out_dir/<its name>``), then one TopK SAE per source model on
  its hidden layer h and one on its embedding x.
* ``SAE-TMS``: the TMS ReLU model (n = 20, m = 5) at seven feature densities, ``seeds`` seeds, then L1 SAEs on its
  hidden layer.

**A folder two studies share.** LR1's folder belongs to the EM claims: when this study has to train it, it trains
it under the EM claims' rules (their pre-registration record), so the EM study finds the record its own rules
expect. For this study the folder counts as pre-registered when its record was written after this study's rules
were last committed (``registration.status``): those rules existed, unchanged, before its data did.
"""

from __future__ import annotations

from pathlib import Path

from toymodels.config import SweepConfig
from toymodels.config.presets import preset
from toymodels.families.em.presets import with_steps
from toymodels.families.sae.presets import sae_sweeps, source_sweeps
from toymodels.families.sae.sources import run_config
from toymodels.families.tms.presets import TMS_BASIC_EPS
from toymodels.reproduce import confirmation
from toymodels.reproduce.dictionary_learning.rules import LR_SOURCE, SAES_PER_SOURCE
from toymodels.reproduce.em_claims.sweeps import claim_sweeps
from toymodels.reproduce.registration import (
    status,
)
from toymodels.reproduce.study import STUDIES, load_for_study, train_sweep
from toymodels.results.store import Results, load

#: the EM study whose LR1 folder SAE-LR shares
EM_STUDY = "em_claims"


def study_root(out_dir: Path, name: str, scale: str) -> Path:
    return Path(out_dir) / f"{name}-{scale}"


def run_parts(sweeps: list[SweepConfig], root: Path, train: bool, progress: bool) -> dict[str, Results]:
    """Train (or resume, or with ``train=False`` only reload) each sweep into ``root/<sweep name>``."""
    out = {}
    for sw in sweeps:
        folder = root / sw.name
        if train:
            out[sw.name] = train_sweep(sw, folder, progress)
        elif (folder / "sweep.json").exists():
            out[sw.name] = load_for_study(folder)
    return out


def lr_source_sweep(scale: str, seeds: int, steps: dict[str, int] | int | None = None) -> SweepConfig:
    """The EM claims' primary LR1 sweep at ``scale`` (its ``--steps`` value applies)."""
    return claim_sweeps(LR_SOURCE, scale, seeds, steps)[LR_SOURCE]


def tms_source_sweep(scale: str, seeds: int) -> SweepConfig:
    """The TMS ReLU model across the seven densities of TMS-basic, ``seeds`` seeds (batch 1024 and 3000 steps at
    quick scale, the TMS family's own per-matrix init, whatever the TMS-basic preset sets for the superposition
    claims)."""
    base = preset("TMS-basic", scale, 1)
    grid = {"eps": TMS_BASIC_EPS if scale == "quick" else base.grid["eps"]}
    pinned = {"tms_variant": "relu", **({"batch_size": 1024} if scale == "quick" else {}), "init_std": None}
    sw = SweepConfig(name=f"TMS-relu-{scale}", base=base.base.replace(**pinned), grid=grid, seeds=seeds)
    return with_steps(sw, 3000) if scale == "quick" else sw


def source_sweep(name: str, scale: str, seeds: int = 1, steps: dict[str, int] | int | None = None
                 ) -> list[SweepConfig]:
    """The toy models a source question reads: LR1 (SAE-LR), the TMS ReLU model across sparsity (SAE-TMS)."""
    return [lr_source_sweep(scale, seeds, steps) if name == "SAE-LR" else tms_source_sweep(scale, seeds)]


def shared_source(sw: SweepConfig, folder: Path, train: bool, progress: bool) -> Results | None:
    """The EM study's LR1 folder: trained (under the EM claims' rules) or reloaded; noted in this study's ledger
    with ``registration.status``. None when it is not there and ``train`` is False."""
    run = confirmation.current()
    if train:
        if run is None:
            res = train_sweep(sw, folder, progress)
        else:
            em = STUDIES.get(EM_STUDY).rules if EM_STUDY in STUDIES else None
            with confirmation.study_run(confirmation.StudyRun(em, run.first_seed, run.seeds)):
                res = train_sweep(sw, folder, progress)
    elif (folder / "sweep.json").exists():
        res = load(folder)
    else:
        return None
    if run is not None and run.rules is not None:
        run.ledger.entries[str(folder)] = status(Path(folder), run.rules)
    return res


def run_study(name: str, scale: str, seeds: int, out_dir: Path, train: bool = True, progress: bool = False,
              steps: dict[str, int] | int | None = None) -> dict[str, Results]:
    """Every results folder of study ``name``: sources as ``source:<folder name>``, SAE sweeps by sweep name."""
    root = study_root(out_dir, name, scale)
    if name in ("SAE-L0", "SAE-ABS"):
        return run_parts(sae_sweeps(name, scale, seeds), root, train, progress)
    if name == "SAE-LR":
        sw = lr_source_sweep(scale, seeds, steps)
        found = shared_source(sw, Path(out_dir) / sw.name, train, progress)
        sources = {sw.name: found} if found is not None else {}
    else:
        sources = run_parts([tms_source_sweep(scale, seeds)], root / "sources", train, progress)
    out: dict[str, Results] = {f"source:{k}": v for k, v in sources.items()}
    for res in sources.values():
        ok = res.instances[res.instances["status"] == "ok"]
        if ok.empty or not res.complete:
            continue
        runs = sorted(ok["run_id"])
        sweeps = source_sweeps(name, res.folder, runs, run_config(res, runs[0]), scale, SAES_PER_SOURCE)
        out.update(run_parts(sweeps, root, train, progress))
    return out
