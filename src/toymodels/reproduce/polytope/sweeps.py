"""The polytope study's sources: three results folders other studies own, read where they exist under ``out_dir``
and trained (under their owner's rules) where they do not, exactly like the dictionary study's shared LR1 folder.

* ``EM``: the EM claims' primary LR1 sweep (``dictionary_learning.sweeps.lr_source_sweep``: ``--steps`` applies as
  for the EM claims), folder ``out_dir/<its name>``, owner ``em_claims``;
* ``TMS``: the TMS ReLU model across seven densities (``tms_source_sweep``), the dictionary study's SAE-TMS source,
  folder ``out_dir/SAE-TMS-<scale>/sources/<its name>``, owner ``dictionary_learning``;
* ``SAE``: the ``relu_l1`` part of SAE-L0 (``families.sae.presets.sae_sweeps``), folder
  ``out_dir/SAE-L0-<scale>/<its name>``, owner ``dictionary_learning``.

A folder another study trained is noted in this study's ledger with ``registration.status`` under this study's
rules: pre-registered when its record was written after these rules were last committed (and they are clean), post
hoc otherwise (no record, or trained before). The slice figure may also read the superposition study's TMS-intro
folder (n = 5, m = 2) when it is there; it is never trained for the figure and decides nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from toymodels.config import SweepConfig
from toymodels.config.presets import preset
from toymodels.families.sae.presets import sae_sweeps
from toymodels.reproduce import confirmation
from toymodels.reproduce.dictionary_learning.sweeps import (
    lr_source_sweep,
    study_root,
    tms_source_sweep,
)
from toymodels.reproduce.registration import status
from toymodels.reproduce.study import STUDIES, train_sweep
from toymodels.results.store import Results, ResultsError, load

#: the SAE architecture whose encoder the lens reads (a per-latent threshold of its pre-activation)
SAE_ARCH = "relu_l1"


@dataclass(frozen=True)
class Source:
    """One family's source: its sweep, its folder and the study that owns (trains) it."""

    family: str
    sweep: SweepConfig
    folder: Path
    owner: str


def sources(scale: str, seeds: int, out_dir: Path, steps: dict[str, int] | int | None = None) -> list[Source]:
    """The three sources (module docstring), in ``rules.FAMILIES`` order."""
    out_dir = Path(out_dir)
    em = lr_source_sweep(scale, seeds, steps)
    tms = tms_source_sweep(scale, seeds)
    sae = next(sw for sw in sae_sweeps("SAE-L0", scale, seeds) if sw.base.sae.sae_arch == SAE_ARCH)
    return [Source("EM", em, out_dir / em.name, "em_claims"),
            Source("TMS", tms, study_root(out_dir, "SAE-TMS", scale) / "sources" / tms.name, "dictionary_learning"),
            Source("SAE", sae, study_root(out_dir, "SAE-L0", scale) / sae.name, "dictionary_learning")]


def shared_source(source: Source, train: bool, progress: bool) -> Results | None:
    """``source``'s folder trained (under its owner's rules, so the owner finds the record its rules expect) or
    reloaded, and noted in this study's ledger under this study's rules; None when it is not there and ``train``
    is False."""
    run = confirmation.current()
    if train:
        owner = STUDIES.get(source.owner).rules if source.owner in STUDIES else None
        if run is None:
            res = train_sweep(source.sweep, source.folder, progress)
        else:
            with confirmation.study_run(confirmation.StudyRun(owner, run.first_seed, run.seeds)):
                res = train_sweep(source.sweep, source.folder, progress)
    elif (source.folder / "sweep.json").exists():
        res = load(source.folder)
    else:
        return None
    if run is not None and run.rules is not None:
        run.ledger.entries[str(source.folder)] = status(source.folder, run.rules)
    return res


def load_sources(scale: str, seeds: int, out_dir: Path, train: bool = True, progress: bool = False,
                 steps: dict[str, int] | int | None = None) -> dict[str, Results]:
    """family -> its source's results (``shared_source``), the families whose folder is there or was trained."""
    out = {}
    for source in sources(scale, seeds, out_dir, steps):
        res = shared_source(source, train, progress)
        if res is not None:
            out[source.family] = res
    return out


def slice_source(out_dir: Path, scale: str, tms: Results | None) -> Results | None:
    """The folder of the slice figure: the superposition study's TMS-intro (n = 5, m = 2: the pentagon) when it is
    finished under ``out_dir``, else the TMS source (its sparsest setting among those drawn), else None."""
    folder = Path(out_dir) / preset("TMS-intro", scale, 1).name
    if (folder / "sweep.json").exists():
        try:
            res = load(folder)
            if res.complete and not res.instances.empty:
                return res
        except (ResultsError, OSError):
            pass
    return tms
