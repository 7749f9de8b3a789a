"""What a model family is: the small interface that train, sweep, report, figures and the dashboard dispatch through.

A *family* is one kind of toy model (the EM two-layer model, the TMS model, the P&C quadratic model, ...). Everything
the rest of the package needs to know about it lives in its own module under ``toymodels/families/`` and is reached
through :func:`toymodels.config.registry.get_family` with the value of the config field ``model``. Nothing outside
the family's module branches on its name.

Adding a family: write a class that satisfies :class:`ModelFamily` (and a ``nn.Module`` satisfying
:class:`InstanceModel`), then ``register(MyFamily())``. The registry refuses a second family of the same name.

A family may also bring its own extras, none required: the methods of :class:`FamilyHooks` (layers an SAE can read,
sections of ``report.html``), reached only through :func:`family_hook`, which gives a family without one the
default of ``HOOK_DEFAULTS``; and the optional fields of its :class:`Presentation` (extra lines on the swept
figure), which default to none. The dashboard's panel of one instance is such a hook (``dashboard_panel``: a
:class:`DashboardPanel`, streamlit-free, which the app renders whatever the family).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence, runtime_checkable

import torch
from jaxtyping import Float
from torch import Tensor

from toymodels.metrics.polytope import ReluNet

if TYPE_CHECKING:  # type names only: config imports the registry, so a runtime import would be a cycle
    from toymodels.config import ExperimentConfig
    from toymodels.engine.data import Sampler
    from toymodels.results.store import Results


@runtime_checkable
class InstanceModel(Protocol):
    """A batch of independent models: every parameter and buffer has the instance axis first.

    Optional hook: a model may define ``post_step(alive: Bool[Tensor, " instances"]) -> None``; the training loop
    calls it under ``torch.no_grad()`` after every optimizer update (and bias decay), and it must change only the
    instances where ``alive`` is True (frozen and diverged instances stay untouched). The SAE family uses it to keep
    decoder directions at unit norm by projection (docs/dictionary_learning.md).

    Optional hook: ``sample_losses(inputs, task) -> Float[Tensor, "instances batch"]``, each sample's task loss in one
    pass (what ``losses`` gives for a batch of that sample alone); the divergence rule's reference uses it, and
    otherwise calls ``losses`` once per sample.
    """

    #: names of the trained parameters (attributes of the module), in the optimizer's order
    param_names: tuple[str, ...]

    @property
    def n_instances(self) -> int: ...

    def losses(
        self, inputs: Float[Tensor, "instances batch features"], task: str, with_l1: bool = True
    ) -> tuple[Float[Tensor, " instances"], Float[Tensor, " instances"] | None]:
        """Per-instance task loss and (when ``with_l1``) the L1 term of the hidden activations."""
        ...

    def decayed_params(self) -> list[Tensor]:
        """The tensors that bias decay pulls toward 0 (instance axis first)."""
        ...

    def state_tensors(self) -> dict[str, Tensor]:
        """Everything needed to rebuild the model (parameters and fixed buffers), instance axis first."""
        ...


@dataclass(frozen=True)
class SweptOverlay:
    """A dotted line a family adds to one panel of the swept figure (``report/swept.py``): per setting, the mean of
    ``value(rows)`` (one number per instance row; the setting's non-diverged rows), drawn when the instance table has
    every column of ``columns``. EM's: the mono neurons per feature that the multi-feature probe confirms."""

    panel: str
    label: str
    columns: tuple[str, ...]
    value: Callable[[Any], Any]


@dataclass(frozen=True)
class Presentation:
    """What the report, the figures and the dashboard show for a family's results.

    * ``labels``: metric name -> axis/column label (a missing name is shown with ``_`` as spaces);
    * ``summary_metrics``: final metrics of the printed summary table and report, in order;
    * ``training_metrics``: curves of the training figure (``loss`` plus metrics logged at checkpoints);
    * ``swept_metrics``: final metrics drawn against the swept field;
    * ``table_metrics``: metric columns the dashboard's instance table shows first;
    * ``instance_figures``: names of the family's per-instance figures (see ``figures``);
    * ``swept_overlays``: extra lines on the swept figure's panels (:class:`SweptOverlay`; default none);
    * ``descriptions``: metric name -> what the number is, in one sentence (the report's legend of the summary
      table, the dashboard's column tooltips; ``describe``).

    The dashboard's panel of one instance is the family's ``dashboard_panel`` hook (:class:`DashboardPanel`).
    """

    labels: dict[str, str] = field(default_factory=dict)
    summary_metrics: tuple[str, ...] = ("final_loss",)
    training_metrics: tuple[str, ...] = ("loss",)
    swept_metrics: tuple[str, ...] = ("final_loss",)
    table_metrics: tuple[str, ...] = ()
    swept_overlays: tuple[SweptOverlay, ...] = ()
    descriptions: dict[str, str] = field(default_factory=dict)

    def label(self, name: str) -> str:
        return self.labels.get(name, name.replace("_", " "))

    def describe(self, name: str) -> str:
        """What metric ``name`` is ('' when the family does not say)."""
        return self.descriptions.get(name, "")


@runtime_checkable
class ModelFamily(Protocol):
    """One kind of toy model, as train, sweep, report, figures and dashboard see it."""

    #: the value of the config field ``model`` that selects this family
    name: str
    #: one line for ``toymodels presets`` and the docs
    summary: str
    #: tasks the family can train on (config field ``task``); the first is the default
    tasks: tuple[str, ...]
    #: flat config fields the family reads, beyond the optimisation and run fields every family uses
    fields: tuple[str, ...]
    #: what the report, the figures and the dashboard show
    presentation: Presentation

    def check(self, cfg: "ExperimentConfig") -> str | None:
        """Why this config cannot train (one line naming the field), or None. Called before any work."""
        ...

    def build(self, cfgs: Sequence["ExperimentConfig"]) -> InstanceModel:
        """A model with one instance per config, each initialised from its own seed (on the CPU)."""
        ...

    def from_tensors(self, tensors: dict[str, Tensor], cfg: "ExperimentConfig") -> InstanceModel:
        """Rebuild a model from ``state_tensors()`` as saved in a results folder."""
        ...

    def sampler(self, cfg: "ExperimentConfig", device: torch.device) -> "Sampler":
        """This instance's input stream (its own seed), filling one (batch, input) slice per step."""
        ...

    def input_size(self, cfg: "ExperimentConfig") -> int:
        """The width of one input row the sampler fills."""
        ...

    def flops_per_step(self, cfg: "ExperimentConfig") -> float:
        """Matmul FLOPs of one training step of one instance (for the cost estimate and thread choice)."""
        ...

    def instance_bytes(self, cfg: "ExperimentConfig") -> int:
        """An upper bound of one instance's training memory in bytes (groups are split to bound memory)."""
        ...

    def evaluate(self, cfgs: Sequence["ExperimentConfig"], tensors: dict[str, Tensor]) -> dict[str, Tensor]:
        """Metrics of a checkpoint: metric name -> (instances,) tensor; columns of the results tables."""
        ...

    def figures(self) -> Sequence["FigureSpec"]:
        """The family's own per-instance figures (the generic training and swept figures are added by the report)."""
        ...


@dataclass(frozen=True)
class FigureSpec:
    """A figure the report draws: ``plot(results, out_dir=...) -> written paths`` and the caption under it."""

    name: str
    plot: Callable[..., list[Any]]
    caption: str


@dataclass(frozen=True)
class ActivationLayer:
    """A layer of a trained model that an SAE can read (``families/sae/sources.py``): its width, its activations
    from feature activations (``forward(model, v)`` with an instance axis first) and its true feature directions
    (``truth(tensors, cfg)``: one row per feature, from the instance's ``state_tensors`` with an instance axis)."""

    dims: Callable[["ExperimentConfig"], int]
    forward: Callable[[torch.nn.Module, Tensor], Tensor]
    truth: Callable[[dict[str, Tensor], "ExperimentConfig"], Tensor]


@dataclass(frozen=True)
class ReluLayers:
    """What the polytope lens reads of trained models of a family with ReLU layers (the ``relu_layers`` hook;
    ``families/polytope.py``, docs/papers.md §6), instance axis first: ``net``, the ReLU layers reading the hidden
    space (EM's embedding x = E v, TMS's hidden layer W x, an SAE's input) and the readout after them;
    ``directions`` (instances, features, hidden), where a unit coefficient of each true feature lands there;
    ``draw(n)``, n samples per instance drawn like the training data from the probe stream: (their points in the
    hidden space (instances, samples, hidden), each feature's coefficient (instances, samples, features));
    ``note``: what the lens should say about this family's reading (e.g. an approximation), or ``""``."""

    net: ReluNet
    directions: Float[Tensor, "instances features hidden"]
    draw: Callable[[int], tuple[Float[Tensor, "instances samples hidden"], Float[Tensor, "instances samples features"]]]
    note: str = ""


def no_figures(*args: Any) -> list["PanelFigure"]:
    """A :class:`DashboardPanel` without sweep-level figures."""
    return []


@dataclass(frozen=True)
class PanelFigure:
    """A figure of a dashboard panel: ``figure`` (a plotly figure; None shows the caption alone, e.g. "nothing to
    draw at this step") under the page key ``key`` (unique in the panel; the page's element gets the CSS class
    ``st-key-<key>``), with ``caption`` under it."""

    key: str
    figure: Any
    caption: str = ""


@dataclass(frozen=True)
class PanelTable:
    """A table of a dashboard panel: ``table`` (a pandas DataFrame) under the page key ``key``, with ``caption``
    (markdown) above it; ``index``: the column shown as row labels (None: no row labels); ``folded``: behind an
    expander titled by the caption (a long table)."""

    key: str
    caption: str
    table: Any
    index: str | None = None
    folded: bool = False


@dataclass(frozen=True)
class DashboardPanel:
    """A family's panel of one instance at one checkpoint in the dashboard (the ``dashboard_panel`` hook), streamlit-
    free: the app picks an instance (and a checkpoint step when ``checkpoints``), computes ``view(results, run_id,
    step)`` (plain numpy / pandas, which the app caches per folder, instance and step), then draws:

    * ``figures(view, heading) -> [PanelFigure]``: the first spans the page, the others sit right of the tables;
      ``heading`` ("r0002 · lr=0.1 · step 512") names the instance and step, for the figures' titles;
    * ``tables(view) -> [PanelTable]``: the unfolded ones left of the figures, the folded ones below;
    * ``sweep_figures(instances) -> [PanelFigure]``: figures of the whole sweep (its instance table, e.g. MCC against
      L0) after the instance's other figures; default none;
    * ``split``: relative widths of the tables' column and the figures' column.
    """

    view: Callable[["Results", str, int], dict[str, Any]]
    figures: Callable[[dict[str, Any], str], list[PanelFigure]]
    tables: Callable[[dict[str, Any]], list[PanelTable]]
    sweep_figures: Callable[[Any], list[PanelFigure]] = no_figures
    checkpoints: bool = True
    split: tuple[int, int] = (1, 1)


class FamilyHooks(Protocol):
    """The optional methods of a :class:`ModelFamily`: a family defines those it needs; everyone calls them through
    :func:`family_hook`, which gives the others their default (``HOOK_DEFAULTS``)."""

    def activation_layers(self) -> dict[str, ActivationLayer]:
        """Layer name (config field ``source_layer``) -> the layer an SAE can read in a trained model of this family
        (config field ``source``). Default: none (``{}``): the family's results cannot feed an SAE."""
        ...

    def report_html(self, results: "Results") -> str:
        """The family's own sections of ``report.html``, after the figures (HTML, or ``""``; the report calls it only
        when the folder has finished instances). Default: ``""``. EM's: the mechanism numbers of its most
        monosemantic instance."""
        ...

    def dashboard_panel(self) -> DashboardPanel | None:
        """The dashboard's panel of one instance at a checkpoint (:class:`DashboardPanel`). Default: None (the
        dashboard shows no per-instance panel). EM's: single-feature activations with biases and the neuron
        mechanism; the SAE's: matched decoder vs true features and MCC against L0."""
        ...

    def input_fingerprints(self, cfg: "ExperimentConfig") -> dict[str, str]:
        """What an instance reads from outside its own sweep, each with a fingerprint that changes when it does
        (recorded in ``sweep.json``; ``--resume`` refuses when one changed). Default: nothing (``{}``). The SAE's:
        its source model, by the checksum DONE recorded for the source group's checkpoints."""
        ...

    def relu_layers(self, tensors: dict[str, Tensor], cfgs: Sequence["ExperimentConfig"]) -> ReluLayers | None:
        """The ReLU layers of trained models of this family for the polytope lens (:class:`ReluLayers`), from
        ``tensors`` (``state_tensors()`` with an instance axis, one config per instance), or None where the model
        has none (e.g. EM with GeLU). Default: None (no ReLU layer: the quadratic model). EM: the hidden layer;
        TMS: the ReLU output (and the hidden ReLU of hidden_relu); SAE: a ReLU or JumpReLU encoder."""
        ...


#: what ``family_hook`` gives a family that does not define an optional hook (:class:`FamilyHooks`)
HOOK_DEFAULTS: dict[str, Callable[..., Any]] = {
    "activation_layers": lambda: {},
    "report_html": lambda results: "",
    "dashboard_panel": lambda: None,
    "input_fingerprints": lambda cfg: {},
    "relu_layers": lambda tensors, cfgs: None,
}


def family_hook(family: Any, name: str) -> Callable[..., Any]:
    """The family's optional hook ``name`` (a method of :class:`FamilyHooks`), or its default: the one place a
    family that does not define a hook gets one. KeyError for a name that is no hook.

    >>> family_hook(object(), "activation_layers")()
    {}
    """
    return getattr(family, name, HOOK_DEFAULTS[name])
