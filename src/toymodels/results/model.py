"""One trained instance of a results folder as a ``torch.nn.Module``: what ``Results.model(run_id, step)`` returns.

A family's own module holds many instances side by side (the instance axis first, ``families/base.py``);
:class:`TrainedModel` wraps one instance of it, rebuilt from its checkpoint by the family's ``from_tensors`` (reached
through the registry), and hides the instance axis: inputs and outputs are ``(batch, ...)`` (or any leading axes,
or one sample without a batch axis).

* ``model(inputs)``: the family's forward pass, its first output (EM: the outputs; TMS: the reconstruction; the
  quadratic model: the prediction ``||W x||^2 + b``; an SAE: the reconstruction);
* ``model.run_with_cache(inputs)``: ``(output, cache)``, the cache holding every named layer's activations,
  ``(batch, width)``: the layers an SAE can read (the family's ``activation_layers``: EM ``x`` and ``h``, TMS
  ``h``), else the forward pass's other outputs under their axis' name (the quadratic model: ``hidden``); an SAE's
  ``pre_activations``, ``latents`` and ``reconstruction``;
* ``model.axes``: each of ``input``, ``output`` and the cached layers with its axis names (from the family's
  jaxtyping annotations, docs/architecture.md §Tensor axes) and ``model.sizes`` the size of each axis;
* an SAE's model also has ``encode`` (``(batch, hidden) -> (batch, latents)``) and ``decode``, as SAELens' SAEs;
* ``model.params``: the trained tensors without the instance axis; ``model.inner`` the family's own module (one
  instance, its parameters keep the instance axis of size 1); ``model.sample_inputs(n)`` a batch drawn like the
  instance's training data.

Example:
    >>> res = tm.load("runs/LR1-quick")                  # doctest: +SKIP
    >>> model = res.model("r0005")                       # doctest: +SKIP
    >>> model.axes["h"], model.sizes["neurons"]          # doctest: +SKIP
    (('batch', 'neurons'), 256)
    >>> out, cache = model.run_with_cache(model.sample_inputs(64))   # doctest: +SKIP
    >>> cache["h"].shape                                 # doctest: +SKIP
    torch.Size([64, 256])
"""

from __future__ import annotations

import inspect
import typing
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

import torch
from torch import Tensor, nn

from toymodels.config import FIELDS, ExperimentConfig, stored_configs
from toymodels.config.registry import get_family
from toymodels.results.tables import py_value

if TYPE_CHECKING:
    import pandas as pd

#: the rows of the probe batch that ``axes`` and ``sizes`` are measured on (two, so that equal values are no accident)
PROBE_ROWS = 2


class Checkpoints(Protocol):
    """What this module reads of a ``Results`` (``store.py``, which imports this module: named here, not imported)."""

    def row(self, run_id: str) -> "pd.Series": ...

    def checkpoint_steps(self, run_id: str) -> list[int]: ...

    def params(self, run_id: str, step: int | None = None) -> dict[str, Tensor]: ...


def instance_config(results: Checkpoints, run_id: str) -> ExperimentConfig:
    """The ExperimentConfig of one instance of ``results``, rebuilt from its row of instances.parquet (validated as
    a stored config: an SAE's source folder need not still exist)."""
    row = results.row(run_id)
    with stored_configs():
        return ExperimentConfig.from_flat({f: py_value(row[f]) for f in FIELDS if f in row.index})


def annotated_axes(annotation: Any) -> tuple[str, ...] | None:
    """The axis names of a jaxtyping annotation without the instance axis (``Float[Tensor, "instances batch
    hidden"]`` -> ``("batch", "hidden")``), or None when it is no jaxtyping array type."""
    dims = getattr(annotation, "dim_str", None)
    if not isinstance(dims, str):
        return None
    words = dims.split()
    return tuple(words[1:] if words[:1] == ["instances"] else words)


def method_axes(method: Callable) -> tuple[list[tuple[str, ...] | None], Any]:
    """(axes of each parameter, the return annotation) of an annotated method; ([], None) when unreadable."""
    try:
        hints = typing.get_type_hints(method)
    except Exception:  # an annotation naming what its module does not import: no axis names, not an error
        return [], None
    params = [p for p in inspect.signature(method).parameters.values() if p.name != "self"]
    return [annotated_axes(hints.get(p.name)) for p in params], hints.get("return")


def _is_sae(module: nn.Module) -> bool:
    return all(callable(getattr(module, name, None)) for name in ("encode", "decode", "pre_activations"))


class TrainedModel(nn.Module):
    """One trained instance of a family's model, its instance axis hidden (module docstring).

    Attributes: ``family`` (the config field ``model``), ``run_id``, ``step`` (the checkpoint), ``status`` (``ok``
    or ``diverged``), ``config`` (its ExperimentConfig), ``inner`` (the family's module, one instance), ``axes``
    and ``sizes``.
    """

    def __init__(self, inner: nn.Module, config: ExperimentConfig, run_id: str, step: int, status: str = "ok"):
        super().__init__()
        self.inner = inner.eval()
        self.config, self.family, self.run_id, self.step, self.status = (
            config, config.model.model, run_id, int(step), status)
        self._layers = self._named_layers()
        self.axes, self.sizes = self._measure()

    # ---- what the family provides --------------------------------------------------------------------------------
    def _named_layers(self) -> dict[str, Callable[[Tensor], Tensor]]:
        """Layer name -> its activations from an input with the instance axis (module docstring)."""
        hook = getattr(get_family(self.family), "activation_layers", None)  # an optional family hook
        layers = hook() if callable(hook) else {}
        return {name: (lambda x, layer=layer: layer.forward(self.inner, x)) for name, layer in layers.items()}

    def _input_axes(self) -> tuple[str, ...]:
        method = self.inner.encode if _is_sae(self.inner) else self.inner.forward
        params, _ = method_axes(method)
        return (params[0] if params and params[0] else None) or ("batch", "inputs")

    def _full_pass(self, x: Tensor, names: Sequence[str] | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """(output, cache) of ``x`` with the instance axis."""
        inner, cache = self.inner, {}
        if _is_sae(inner):
            pre, latents = inner.pre_activations(x), inner.encode(x)
            out = inner.decode(latents)
            cache = {"pre_activations": pre, "latents": latents, "reconstruction": out}
        else:
            result = inner(x)
            outputs = result if isinstance(result, tuple) else (result,)
            out = outputs[0]
            if self._layers:
                cache = {name: fn(x) for name, fn in self._layers.items() if names is None or name in names}
            else:  # no named layers: the forward pass's other outputs, under the name of their last axis
                _, ret = method_axes(inner.forward)
                kinds = typing.get_args(ret) if typing.get_origin(ret) is tuple else (ret,)
                for i, value in enumerate(outputs[1:], 1):
                    axes = annotated_axes(kinds[i]) if i < len(kinds) else None
                    cache[axes[-1] if axes and len(axes) > 1 else f"output_{i}"] = value
        if names is not None:
            cache = {name: value for name, value in cache.items() if name in names}
        return out, cache

    def _candidates(self, x: Tensor) -> list[tuple[tuple[str, ...], Tensor]]:
        """(axes, value) of every annotated tensor the inner module computes from ``x`` alone: its forward pass'
        outputs and its one-argument methods that take the same input (EM's ``embed``), to name the named layers'
        axes by the method that computes them."""
        inner, found = self.inner, []
        in_axes, ret = method_axes(inner.forward)
        kinds = typing.get_args(ret) if typing.get_origin(ret) is tuple else (ret,)
        result = inner(x)
        for kind, value in zip(kinds, result if isinstance(result, tuple) else (result,)):
            if annotated_axes(kind) and isinstance(value, Tensor):
                found.append((annotated_axes(kind), value))
        own = {name for cls in type(inner).__mro__ if cls not in (nn.Module, object) for name in vars(cls)}
        for name in sorted(own):
            method = getattr(inner, name, None)
            if name.startswith("_") or name == "forward" or not inspect.ismethod(method):
                continue
            params, ret = method_axes(method)
            if len(params) == 1 and params == in_axes[:1] and annotated_axes(ret):
                value = method(x)
                if isinstance(value, Tensor):
                    found.append((annotated_axes(ret), value))
        return found

    @torch.no_grad()
    def _measure(self) -> tuple[dict[str, tuple[str, ...]], dict[str, int]]:
        """``axes`` and ``sizes`` from one pass over a small random batch."""
        in_axes = self._input_axes()
        width = get_family(self.family).input_size(self.config)
        gen = torch.Generator().manual_seed(0)
        x = torch.rand(1, PROBE_ROWS, width, generator=gen, dtype=self._dtype()).to(self._device())
        out, cache = self._full_pass(x)
        if _is_sae(self.inner):
            _, ret = method_axes(self.inner.decode)
            axes = {"input": in_axes, "output": annotated_axes(ret) or in_axes}
            for name, method in (("pre_activations", self.inner.pre_activations), ("latents", self.inner.encode),
                                 ("reconstruction", self.inner.decode)):
                axes[name] = annotated_axes(method_axes(method)[1]) or ("batch", name)
        else:
            candidates = self._candidates(x)
            axes = {"input": in_axes, "output": candidates[0][0] if candidates else ("batch",) * (out.dim() - 1)}
            for name, value in cache.items():
                same = [a for a, v in candidates if v.shape == value.shape and torch.equal(v, value)]
                axes[name] = same[0] if same else ("batch",) + tuple(f"{name}_{i}" for i in range(1, value.dim() - 1))
        sizes: dict[str, int] = {}
        for name, value in {"input": x, "output": out, **cache}.items():
            for axis, size in zip(axes[name], value.shape[1:]):
                if axis != "batch":
                    sizes.setdefault(axis, int(size))
        return axes, sizes

    # ---- the model as users call it ------------------------------------------------------------------------------
    def _dtype(self) -> torch.dtype:
        floats = [t for t in self.inner.state_dict().values() if t.is_floating_point()]
        return floats[0].dtype if floats else torch.get_default_dtype()

    def _device(self) -> torch.device:
        tensors = list(self.inner.state_dict().values())
        return tensors[0].device if tensors else torch.device("cpu")

    def _with_instance_axis(self, inputs: Tensor, axes: tuple[str, ...], what: str) -> tuple[Tensor, torch.Size]:
        """(inputs as (1, samples, width) in the model's dtype and device, their leading shape)."""
        inputs = torch.as_tensor(inputs)
        width = self.sizes.get(axes[-1])
        if inputs.dim() == 0 or (width is not None and inputs.shape[-1] != width):
            raise ValueError(f"{what}: the last axis must be {axes[-1]}={width} (got shape {tuple(inputs.shape)})")
        lead = inputs.shape[:-1]
        x = inputs.to(device=self._device(), dtype=self._dtype() if inputs.is_floating_point() else None)
        return x.reshape(1, -1, inputs.shape[-1]), lead

    @staticmethod
    def _without_instance_axis(value: Tensor, lead: torch.Size) -> Tensor:
        return value[0].reshape((*lead, *value.shape[2:]))

    def forward(self, inputs: Tensor) -> Tensor:
        """The family's forward pass of ``inputs`` (``(*batch, input)``; ``axes["input"]`` names the last axis):
        its output, ``(*batch, ...)`` as ``axes["output"]`` says. Gradients flow (no ``no_grad`` here)."""
        x, lead = self._with_instance_axis(inputs, self.axes["input"], "inputs")
        if _is_sae(self.inner):
            out = self.inner.decode(self.inner.encode(x))
        else:
            result = self.inner(x)
            out = result[0] if isinstance(result, tuple) else result
        return self._without_instance_axis(out, lead)

    @torch.no_grad()
    def run_with_cache(self, inputs: Tensor, names: Sequence[str] | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """``(output, cache)``: the forward pass of ``inputs`` and every named layer's activations (``names``: only
        these), each ``(*batch, width)`` with the axes of ``axes[name]``. Without gradients (as an analysis is)."""
        unknown = [n for n in names or () if n not in self.axes or n in ("input", "output")]
        if unknown:
            layers = ", ".join(n for n in self.axes if n not in ("input", "output"))
            raise KeyError(f"names: no layer '{unknown[0]}' in a '{self.family}' model; layers: {layers}")
        x, lead = self._with_instance_axis(inputs, self.axes["input"], "inputs")
        out, cache = self._full_pass(x, names)
        return (self._without_instance_axis(out, lead),
                {name: self._without_instance_axis(value, lead) for name, value in cache.items()})

    @property
    def params(self) -> dict[str, Tensor]:
        """The trained tensors (parameters and fixed buffers, e.g. EM's embedder E) without the instance axis."""
        state = self.inner.state_tensors() if hasattr(self.inner, "state_tensors") else self.inner.state_dict()
        return {name: value[0] for name, value in state.items()}

    def sample_inputs(self, n: int = 64, seed: int | None = None) -> Tensor:
        """``n`` inputs drawn like the instance's training data (its family's sampler: its feature law, its own
        seed's data stream, so the first batch it trained on; ``seed`` draws another stream), ``(n, input)``."""
        values = {"batch_size": int(n), **({} if seed is None else {"seed": int(seed)})}
        with stored_configs():
            cfg = self.config.replace(**values)
        return get_family(self.family).sampler(cfg, torch.device("cpu")).sample().to(self._dtype())

    def extra_repr(self) -> str:
        def shape(name: str) -> str:
            sized = (a if a == "batch" else f"{a}={self.sizes.get(a, '?')}" for a in self.axes[name])
            return "(" + ", ".join(sized) + ")"

        layers = ", ".join(f"{name} {shape(name)}" for name in self.axes if name not in ("input", "output"))
        return (f"family={self.family}, run_id={self.run_id}, step={self.step}, status={self.status}\n"
                f"input {shape('input')} -> output {shape('output')}\ncache: {layers or 'none'}")


class TrainedSAE(TrainedModel):
    """A trained SAE: :class:`TrainedModel` plus ``encode`` and ``decode``, as SAELens' ``SAE`` has them."""

    def encode(self, x: Tensor) -> Tensor:
        """The latents of activations ``x`` (``(*batch, hidden)`` -> ``(*batch, latents)``), as at evaluation
        (BatchTopK's latents depend on the whole batch)."""
        inputs, lead = self._with_instance_axis(x, self.axes["input"], "x")
        return self._without_instance_axis(self.inner.encode(inputs), lead)

    def decode(self, latents: Tensor) -> Tensor:
        """The reconstruction from ``latents`` (``(*batch, latents)`` -> ``(*batch, hidden)``)."""
        f, lead = self._with_instance_axis(latents, self.axes["latents"], "latents")
        return self._without_instance_axis(self.inner.decode(f), lead)


def trained_model(results: Checkpoints, run_id: str, step: int | None = None) -> TrainedModel:
    """Instance ``run_id`` of ``results`` at checkpoint ``step`` (default: the final model) as a
    :class:`TrainedModel` (an SAE's as a :class:`TrainedSAE`); KeyError naming the run id or step if none."""
    row = results.row(run_id)
    steps = results.checkpoint_steps(run_id)
    step = steps[-1] if step is None else step
    cfg = instance_config(results, run_id)
    tensors = {name: value[None] for name, value in results.params(run_id, step).items()}
    inner = get_family(cfg.model.model).from_tensors(tensors, cfg)
    cls = TrainedSAE if _is_sae(inner) else TrainedModel
    return cls(inner, cfg, run_id, step, str(row.get("status", "ok")))
