"""Where an SAE's activations come from, with their true features (docs/dictionary_learning.md §Sources).

Config field ``source``:

* ``synthetic``: a fixed dictionary of N unit feature directions in m dims (rows drawn from ``structure_seed``'s
  dictionary stream, shared by every instance with that seed); activations x = v D for feature activations v drawn
  with the config's data and firing sections. Truth: the rows of D.
* a results folder of a trained toymodels instance (``source_run``, ``source_layer``), frozen; features v are drawn
  with that run's own data and firing fields and passed through the family's own model (``get_family(...)
  .from_tensors``, no re-implementation). The layers it can read, their activations and true features are the
  source family's (its ``activation_layers`` hook, ``families/base.py``):

  - EM, layer ``x``: the embedding x = E v (m dims, N features in superposition); truth: the columns of E;
  - EM, layer ``h``: the hidden layer h = act(W1 x + b1) (k dims); truth: each feature's single-feature response
    h(e_j) (``metrics.single_feature_activations``, the neuron metrics' reference);
  - TMS, layer ``h``: the hidden layer W v (ReLU'd for hidden_relu; m dims); truth: the columns of W.

Every instance draws fresh activations each step from its own seed's data stream, so an SAE sees the same data alone
or in any group; evaluation draws from the probe stream, the same samples at every checkpoint.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import torch
from jaxtyping import Float, Int
from torch import Tensor

from toymodels.results import store
from toymodels.config import FIELDS, ExperimentConfig
from toymodels.engine.data import STRUCTURE_STREAM, Sampler, feature_sampler, firing_structure, generator
from toymodels.config.registry import family_names, get_family
from toymodels.families.base import ActivationLayer, family_hook
from toymodels.results.tables import py_value
from toymodels.results.verify import run_index, signature

#: the synthetic dictionary's directions come from this stream of ``structure_seed`` (the correlation matrix uses
#: STRUCTURE_STREAM), so changing the firing never changes the dictionary
DICTIONARY_STREAM = STRUCTURE_STREAM + 1


def source_layers(model: str) -> dict[str, ActivationLayer]:
    """Layer name -> the layer an SAE can read in a trained model of family ``model``: the family's own
    ``activation_layers`` hook (none for a family without it)."""
    return family_hook(get_family(model), "activation_layers")()


def layers_text() -> str:
    """Every family's readable layers, e.g. 'em: x, h; tms: h'."""
    return "; ".join(f"{name}: {', '.join(layers)}" for name in family_names() if (layers := source_layers(name)))


@dataclass
class Source:
    """One instance's activation source: the feature law (``cfg``'s or the source run's), the map from features to
    activations and the truth. ``model`` is the frozen toy model (None for a synthetic dictionary)."""

    feature_cfg: ExperimentConfig
    truth: Float[Tensor, "features hidden"]
    parents: Int[Tensor, " features"]
    dictionary: Float[Tensor, "features hidden"] | None = None
    model: torch.nn.Module | None = None
    layer: ActivationLayer | None = None

    @torch.no_grad()
    def activations(self, v: Float[Tensor, "batch features"]) -> Float[Tensor, "batch hidden"]:
        if self.model is None:
            return v @ self.dictionary.to(v.device, v.dtype)
        model = self.model.to(v.device)
        return self.layer.forward(model, v.float().unsqueeze(0))[0].to(v.dtype)

    def features(self, batch: int, gen: torch.Generator, device: torch.device) -> Sampler:
        c = self.feature_cfg
        return feature_sampler(c.data, c.firing, batch, gen, device, signed=c.task.task == "abs")


def synthetic_dictionary(N: int, d: int, seed: int) -> Float[Tensor, "features hidden"]:
    """N random unit directions in d dims from ``seed``'s dictionary stream."""
    D = torch.randn(N, d, generator=generator(seed, DICTIONARY_STREAM))
    return D / D.norm(dim=-1, keepdim=True).clamp(min=1e-12)


@functools.lru_cache(maxsize=16)
def _results(folder: str, state: tuple) -> store.Results:
    return store.load(folder)


def source_results(folder: str | Path) -> store.Results:
    """The results folder, verified (``store.load``: only groups whose files match DONE) and read once per state
    (a group finishing or changing there makes a fresh read)."""
    return _results(str(Path(folder).resolve()), signature(Path(folder)))


def source_fingerprint(cfg: ExperimentConfig) -> dict[str, str]:
    """The source model an SAE reads, with a fingerprint that changes when it is retrained or replaced (its group's
    checkpoints checksum, as DONE recorded it, and its place in the group); none for a synthetic source."""
    s = cfg.sae
    if s.source == "synthetic":
        return {}
    name = f"source {s.source} {s.source_run}"
    try:
        res = source_results(s.source)
        row = res.row(s.source_run)
    except KeyError as err:
        return {name: f"missing ({err.args[0]})"}
    except (store.ResultsError, OSError) as err:
        return {name: f"unreadable ({err})"}
    gid = str(row["group"])
    sha = store.done_record(res.folder, gid).get("files", {}).get("checkpoints.safetensors", {}).get("sha256", "?")
    return {name: f"group {gid} #{int(row['index_in_group'])}, checkpoints sha256 {str(sha)[:16]}"}


def run_config(results: store.Results, run_id: str) -> ExperimentConfig:
    """The config of one instance of a results folder, from its row (fields absent from older folders default)."""
    row = results.row(run_id)
    return ExperimentConfig.from_flat({f: py_value(row[f]) for f in FIELDS if f in row.index})


def source_problem(cfg: ExperimentConfig) -> str | None:
    """Why ``cfg``'s source cannot feed its SAE (one line naming the field and what is allowed), or None."""
    s = cfg.sae
    if s.source == "synthetic":
        return None
    folder = Path(s.source)
    if not (folder / "sweep.json").is_file():
        why = "no such folder" if not folder.exists() else "no sweep.json in it"
        return f"field 'source': must be 'synthetic' or a results folder ({s.source!r}: {why})"
    try:
        res = source_results(folder)
    except (store.ResultsError, OSError, ValueError) as err:
        return f"field 'source': cannot read results folder {s.source!r} ({err})"
    runs = sorted(res.instances["run_id"]) if len(res.instances) else []
    if s.source_run not in runs:
        index = run_index(s.source_run)
        if index is not None and index < res.sweep.size():  # planned there: left out, or not finished yet
            return f"field 'source_run': {res.why_missing(s.source_run)}; choose a trained instance"
        have = f"{runs[0]} .. {runs[-1]}" if runs else "none trained yet"
        return f"field 'source_run': must be a trained instance of {s.source} ({have}; got {s.source_run!r})"
    src = run_config(res, s.source_run)
    family = src.model.model
    layers = source_layers(family)
    if not layers:
        return f"field 'source': model '{family}' of {s.source} has no layer an SAE reads ({layers_text()})"
    if s.source_layer not in layers:
        return (f"field 'source_layer': model '{family}' has layers {', '.join(layers)} "
                f"(got {s.source_layer!r})")
    if res.row(s.source_run)["status"] != "ok":
        return f"field 'source_run': instance {s.source_run} of {s.source} diverged; choose a trained one"
    d = layers[s.source_layer].dims(src)
    if cfg.data.N != src.data.N:
        return f"field 'N': the source run has N={src.data.N} features (got {cfg.data.N}); set N={src.data.N}"
    if cfg.model.m != d:
        return (f"field 'm': layer '{s.source_layer}' of {s.source} {s.source_run} has {d} dims "
                f"(got {cfg.model.m}); set m={d}")
    return None


def _source_key(cfg: ExperimentConfig) -> str:
    """What decides the source: the sae source fields and the source model's fingerprint (a retrained source is a
    new one), and the data and firing sections (synthetic)."""
    return "|".join([cfg.sae.model_dump_json(include={"source", "source_run", "source_layer"}),
                     *source_fingerprint(cfg).values(), cfg.data.model_dump_json(), cfg.firing.model_dump_json(),
                     str(cfg.model.m)])


# key -> Source: instances of a sweep share their source (a frozen model is loaded once per process)
_SOURCES: dict[str, Source] = {}
MAX_CACHED_SOURCES = 64


def _load_source(cfg: ExperimentConfig) -> Source:
    s = cfg.sae
    if s.source == "synthetic":
        D = synthetic_dictionary(cfg.data.N, cfg.model.m, cfg.firing.structure_seed)
        parents = firing_structure(cfg.data, cfg.firing).parents
        return Source(cfg, D, parents, dictionary=D)
    res = source_results(s.source)
    src = run_config(res, s.source_run)
    t = {k: v[None] for k, v in res.params(s.source_run).items()}  # the family's models want an instance axis
    model = get_family(src.model.model).from_tensors(t, src)
    model.requires_grad_(False)
    layer = source_layers(src.model.model)[s.source_layer]
    parents = firing_structure(src.data, src.firing).parents
    return Source(src, layer.truth(t, src).float().contiguous(), parents, model=model, layer=layer)


def source_for(cfg: ExperimentConfig) -> Source:
    """The (cached) source of ``cfg``."""
    key = _source_key(cfg)
    if key not in _SOURCES:
        if len(_SOURCES) >= MAX_CACHED_SOURCES:
            _SOURCES.pop(next(iter(_SOURCES)))
        _SOURCES[key] = _load_source(cfg)
    return _SOURCES[key]


class SourceSampler(Sampler):
    """One instance's SAE batches: fresh features from its own stream, mapped to the source's activations."""

    def __init__(self, source: Source, batch: int, gen: torch.Generator, device: torch.device):
        self.source, self.batch, self.gen, self.device = source, batch, gen, torch.device(device)
        self.N = source.truth.shape[1]
        self.feats = source.features(batch, gen, self.device)
        self.v = torch.zeros(batch, source.truth.shape[0], device=self.device)

    def fill(self, out: Float[Tensor, "batch hidden"]) -> None:
        self.feats.fill(self.v)
        out.copy_(self.source.activations(self.v))

    def set_state(self, state: Tensor) -> None:
        self.feats.set_state(state)

    def draw(self) -> tuple[Float[Tensor, "batch hidden"], Float[Tensor, "batch features"]]:
        """A batch of (activations, feature activations)."""
        self.feats.fill(self.v)
        return self.source.activations(self.v), self.v.clone()
