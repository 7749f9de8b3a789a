"""Mechanism of an EM model's neurons, in particular the residual polysemantic ones (docs/papers.md §1.6, check 6).

Engineering Monosemanticity (Jermyn et al. 2022, Sec. 5) interprets the models that remain partly polysemantic.
The evidence collected in docs/papers.md §1.6 suggests a picture that the functions here measure on one instance.
Each neuron gets one of four kinds from the single-feature probe (``metrics.single_feature_activations``):

* **dead**: fires for no lone feature (``metrics.is_dead``);
* **mono**: the paper's criterion, max/sum > 0.999 (``metrics.is_mono``). In the paper's picture these have
  negative biases: each is silent until its feature's amplitude passes ``-b / (W1 E)[n, f]`` and then adds a ramp;
* **broad**: live, not mono, fires for at least ``BROAD_FRACTION`` (a quarter) of the N lone features. These are
  the paper's *residual polysemantic neurons*: positive bias, firing for (nearly) every feature, so in the linear
  part of the ReLU. Their joint output there is the affine map ``x -> W2_B (W1_B x + b_B)`` of the m-dim input;
  the hypothesis is a low-rank approximation of the identity ``c E^T x`` plus an output offset ``W2_B b_B``;
* **narrow**: live, not mono, fires for fewer than a quarter of the lone features: near-mono neurons that read a
  few features (just under the 0.999 cut); not the neurons the paper's Sec. 5 is about, reported separately.

Why a quarter: the paper's residual neurons fire for "(nearly) all" features; in trained quick-scale LR3 models
(N = 128) most live non-mono neurons are near-mono (median 3-4 lone features, bias about -0.75, ratio about 0.8)
and breadth rises steeply as the bias approaches 0, where a minority fires for 32 or more. N/4 lies well above the
near-mono bulk and is lenient towards the paper (it counts as broad neurons that fire for far fewer than "all"
features), so a failed criterion cannot come from cutting the paper's neurons away. It is a convention, not a
measurement: ``features_firing`` is in every neuron table.

The abs task (output |v|, inputs v in [-1, 1]) needs both signs of a feature: a neuron answering ReLU(-v_i) is
silent on +e_i. Its probe (``signed_probe``) has 2N columns, ``+e_0 .. +e_{N-1}, -e_0 .. -e_{N-1}``; the paper's
ratio over those columns makes a ReLU(-v_i) neuron mono with feature i and sign -1, and only a neuron silent on
all 2N inputs is dead.

All functions take ONE instance (no instances axis): ``W1`` (neurons, hidden), ``b1`` (neurons,), ``W2``
(outputs, neurons), ``E`` (hidden, features).
Computation is in float64 (single instances are small, and exact numbers make the tables readable).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from einops import einsum, rearrange
from jaxtyping import Bool, Float, Int
from torch import Tensor

if TYPE_CHECKING:
    import pandas as pd

from toymodels.results import store
from toymodels.results.store import Results
from toymodels.engine.activations import Nonlinearity, activation
from toymodels.engine.threads import one_thread
from toymodels.config import FIELDS, ExperimentConfig
from toymodels.engine.data import PROBE_STREAM, feature_sampler, generator
from toymodels.families.em.evaluate import em_probe
from toymodels.metrics import (
    MONO_THRESHOLD,
    is_dead,
    is_mono,
    mono_ratio,
    own_feature,
    participation,
    signed_embedding,
    single_feature_activations,
)

# The tensors every function here reads (the EM model's): a results folder whose checkpoints hold them can be explained.
NEURON_TENSORS = ("W1", "b1", "W2", "E")
KINDS = ("mono", "narrow", "broad", "dead")
# A live non-mono neuron firing for at least this fraction of the N lone features is broad (module docstring).
BROAD_FRACTION = 0.25
# Singular values above this fraction of the largest count towards the numerical rank.
RANK_TOLERANCE = 0.01
# Amplitudes of the lone-feature loss: an even grid on [0, 1] (on [-1, 1] for the abs task).
N_AMPLITUDES = 21
# Training-like inputs drawn to measure how often the broad neurons are in the linear region.
REAL_INPUT_SAMPLES = 2048


def _f64(x: Any) -> Tensor:
    return torch.as_tensor(x).detach().to(torch.float64)


def signed_probe(
    W1: Float[Tensor, "neurons hidden"], b1: Float[Tensor, " neurons"], E: Float[Tensor, "hidden features"],
    nonlinearity: Nonlinearity, signed: bool = False,
) -> Float[Tensor, "neurons probes"]:
    """Single-feature activations of one instance at amplitude +1 (probes: the N features); with ``signed`` (the abs
    task) also at amplitude -1, after them (2N probes: ``+e_0 .. +e_{N-1}, -e_0 .. -e_{N-1}``,
    ``metrics.signed_embedding``)."""
    probed = signed_embedding(E[None]) if signed else E[None]
    return single_feature_activations(W1[None], b1[None], probed, nonlinearity)[0]


def features_firing(sfa: Float[Tensor, "neurons probes"], n_features: int) -> Int[Tensor, " neurons"]:
    """How many of the ``n_features`` lone features make each neuron fire (activation > 0) at either probed sign."""
    fires = rearrange(sfa > 0, "neurons (sign features) -> neurons sign features", features=n_features)
    return fires.any(1).sum(-1)


def neuron_kinds(sfa: Float[Tensor, "neurons probes"], n_features: int | None = None,
                 threshold: float = MONO_THRESHOLD) -> list[str]:
    """The kind of each neuron (module docstring): ``"mono"`` (paper criterion over the probe columns),
    ``"dead"`` (fires on none), ``"broad"`` (live, not mono, at least ``BROAD_FRACTION * n_features`` features fire
    it) or ``"narrow"`` (the other live neurons). ``n_features`` defaults to the number of probes (the unsigned
    probe)."""
    n_features = sfa.shape[-1] if n_features is None else n_features
    mono, dead = is_mono(sfa[None], threshold)[0], is_dead(sfa[None])[0]
    broad = features_firing(sfa, n_features) >= BROAD_FRACTION * n_features
    return ["mono" if mo else "dead" if de else "broad" if br else "narrow"
            for mo, de, br in zip(mono.tolist(), dead.tolist(), broad.tolist())]


def explain_instance(
    W1: Float[Tensor, "neurons hidden"],
    b1: Float[Tensor, " neurons"],
    W2: Float[Tensor, "outputs neurons"],
    E: Float[Tensor, "hidden features"],
    nonlinearity: Nonlinearity,
    threshold: float = MONO_THRESHOLD,
    signed: bool = False,
) -> pd.DataFrame:
    """One row per neuron describing its role; ``signed=True`` for the abs task (module docstring).

    Columns:
      ``neuron``; ``kind`` (mono / narrow / broad / dead); ``feature`` (the probe's argmax feature, -1 for dead
      neurons); ``bias``;
      ``threshold``: for mono neurons the feature amplitude (along ``sign``) where the pre-activation crosses zero,
        ``-b / (sign (W1 E)[n, f])`` (negative: already firing at amplitude 0; NaN if ``(W1 E)[n, f] = 0``); NaN
        otherwise;
      ``slope``: for mono neurons the rate at which its output contribution grows with its feature's amplitude in
        the linear regime, ``sign (W1 E)[n, f] * W2[f, n]`` when out = N (decoder, abs); for the re-projector
        (out != N) the output has no feature index, so ``sign (W1 E)[n, f] * ||W2[:, n]||``; NaN for other neurons;
      ``participation``: participation ratio of its probe row (0 for dead);
      ``mono_ratio``: the paper's ratio (positive part); ``features_firing``: how many lone features make it fire;
      ``sign``: the sign of the lone input it answers most (+1, or -1 for ReLU(-v_i) neurons of the abs task; +1
        for dead neurons).
    """
    import pandas as pd  # deferred: ~70 MB that a training process does not need

    W1, b1, W2, E = map(_f64, (W1, b1, W2, E))
    N = E.shape[1]
    sfa = signed_probe(W1, b1, E, nonlinearity, signed)
    kinds = neuron_kinds(sfa, N, threshold)
    column = own_feature(sfa[None])[0]  # column of the signed probe, -1 for dead neurons
    feature = torch.where(column >= 0, column % N, -1)
    sign = torch.where(column >= N, -1.0, 1.0).to(E.dtype)
    gain = sign * (W1 @ E).gather(1, feature.clamp(min=0)[:, None])[:, 0]  # d pre / d amplitude along the sign
    out_weight = W2.gather(0, feature.clamp(min=0)[None])[0] if W2.shape[0] == N else W2.norm(dim=0)
    mono = torch.tensor([kind == "mono" for kind in kinds])
    nan = torch.full_like(b1, float("nan"))
    thresholds = torch.where(mono & (gain != 0), -b1 / torch.where(gain != 0, gain, 1.0), nan)
    return pd.DataFrame(
        {
            "neuron": range(len(kinds)),
            "kind": kinds,
            "feature": feature.tolist(),
            "bias": b1.tolist(),
            "threshold": thresholds.tolist(),
            "slope": torch.where(mono, gain * out_weight, nan).tolist(),
            "participation": participation(sfa[None])[0].tolist(),
            "mono_ratio": mono_ratio(sfa[None])[0].tolist(),
            "features_firing": features_firing(sfa, N).tolist(),
            "sign": sign.long().tolist(),
        }
    )


def block_map(
    W1: Tensor, W2: Tensor, E: Tensor, neurons: Bool[Tensor, " neurons"]
) -> Float[Tensor, "outputs features"]:
    """Linear part of a block of neurons in its linear region, on the features: ``W2[:, S] @ W1[S] @ E``."""
    return W2[:, neurons] @ W1[neurons] @ E


def fit_gram(M: Float[Tensor, "features features"], E: Float[Tensor, "hidden features"]) -> tuple[float, float]:
    """Least-squares fit of the linear part ``M ~ c * E^T E`` (no free constant); returns ``(c, relative residual)``.

    ``E^T E`` is the interference pattern of the embedding, so a small residual means the block reads every feature
    with the same read-out ``c * E^T x``: a rank-m approximation of ``c`` times the identity. The block's constant
    output (``W2_B b_B``, per output) is not fitted but computed (``explain_summary``'s ``broad_offset``).
    The relative residual is ``||M - c E^T E||_F / ||M||_F``: 0 for an exact fit, 1 when ``M`` is orthogonal to the
    Gram pattern (``c = 0``); ``(0, 0)`` for ``M = 0``.
    """
    gram = E.T @ E
    norm = M.norm()
    if norm == 0:
        return 0.0, 0.0
    c = float((M * gram).sum() / (gram * gram).sum())
    return c, float((M - c * gram).norm() / norm)


def lone_feature_loss(
    W1: Tensor,
    b1: Tensor,
    W2: Tensor,
    E: Tensor,
    nonlinearity: Nonlinearity,
    neurons: Bool[Tensor, " neurons"],
    amplitudes: Float[Tensor, " amplitudes"],
    task: str = "decoder",
) -> float:
    """Loss of the model restricted to a block of neurons, on lone features.

    Inputs are ``v = a e_j`` for every feature j and amplitude a in ``amplitudes`` (include negative ones for the abs
    task); the target is ``v`` for the decoder and ``|v|`` for the abs task. The loss is the paper's per-sample
    summed squared error ``sum_o (out_o - target_o)^2``, averaged over the (a, j) grid. Neurons outside the block
    are removed (their activations set to 0). An empty block gives the zero-output loss, the mean of ``a^2``.
    """
    # lone feature j at amplitude a: pre-activation a (W1 E)[:, j] + b1, target a (or |a|) on output j only
    pre = einsum(amplitudes, W1 @ E, "amplitudes, neurons features -> amplitudes features neurons") + b1
    out = einsum(W2, activation(pre, nonlinearity) * neurons,
                 "outputs neurons, amplitudes features neurons -> amplitudes features outputs")
    target = amplitudes.abs() if task == "abs" else amplitudes
    eye = torch.eye(E.shape[1], W2.shape[0], dtype=E.dtype)
    target = einsum(target, eye, "amplitudes, features outputs -> amplitudes features outputs")
    return float(((out - target) ** 2).sum(-1).mean())


def _median(x: Tensor) -> float:
    return float(x.quantile(0.5)) if x.numel() else math.nan  # the mean of the middle two, as pandas


def explain_summary(
    W1: Float[Tensor, "neurons hidden"],
    b1: Float[Tensor, " neurons"],
    W2: Float[Tensor, "outputs neurons"],
    E: Float[Tensor, "hidden features"],
    nonlinearity: Nonlinearity,
    threshold: float = MONO_THRESHOLD,
    amplitudes: int | Tensor = N_AMPLITUDES,
    rank_tolerance: float = RANK_TOLERANCE,
    task: str = "decoder",
    inputs: Float[Tensor, "samples features"] | None = None,
) -> dict[str, Any]:
    """How the mono and broad (residual polysemantic) neurons of one EM instance compute (docs/papers.md §1.6).

    ``task``: ``"decoder"``, ``"abs"`` (signed probe, target |v|) or ``"reprojector"`` (no per-feature output:
    fit and losses NaN). ``inputs``: training-like feature vectors (``training_like_inputs``), for the linear
    fraction.

    Keys:
      ``neurons``: the ``explain_instance`` table; ``mono``, ``narrow``, ``broad``, ``dead``: neuron indices;
        ``n_mono``, ``n_narrow``, ``n_broad``, ``n_dead``: their counts.
      Broad block B (the paper's residual polysemantic neurons), NaN where it is empty:
        ``broad_positive_bias``: fraction with ``b > 0``; ``broad_median_bias``; ``broad_features_firing``: median
        number of lone features firing one; ``broad_linear_fraction``: fraction of (input, broad neuron) pairs with
        pre-activation > 0 on ``inputs`` (NaN without inputs), i.e. how often "linear region" holds;
        ``broad_map``: ``W2_B W1_B E`` (outputs, features), the linear part of the block's affine map on the features;
        ``broad_offset``: its constant output ``W2_B b_B`` (outputs,); ``offset_mean``, ``offset_std`` over outputs and
        ``offset_same_sign``: the fraction of outputs whose offset has the sign of the mean (1: a uniform shift);
        ``broad_singular_values`` (descending) and ``broad_rank``: how many exceed ``rank_tolerance`` (1%) of the
        largest. ``broad_rank <= m`` holds by construction (the block sees the m-dim input), it is no evidence.
        ``gram_c``, ``gram_residual``: fit of the linear part ``broad_map ~ c E^T E`` (``fit_gram``).
      Narrow block: ``narrow_features_firing``, ``narrow_median_bias``, ``narrow_median_mono_ratio`` (medians).
      Losses (``lone_feature_loss`` on ``amplitudes``: that many even points on [0, 1], mirrored to [-1, 1] for
        abs): ``loss_full``; ``loss_without_broad`` (every neuron but the broad ones); ``loss_broad`` and
        ``loss_mono`` (that block alone); ``loss_zero`` (no neurons).
    """
    W1, b1, W2, E = map(_f64, (W1, b1, W2, E))
    table = explain_instance(W1, b1, W2, E, nonlinearity, threshold, signed=task == "abs")
    kinds = table["kind"].to_numpy()
    masks = {kind: torch.as_tensor(kinds == kind) for kind in KINDS}
    amps = torch.linspace(0, 1, amplitudes, dtype=E.dtype) if isinstance(amplitudes, int) else _f64(amplitudes)
    if task == "abs":
        amps = torch.cat([-amps.flip(0), amps[amps != 0]])  # mirrored, 0 once
    nan = math.nan
    bias, ratio = b1, torch.tensor(table["mono_ratio"].tolist(), dtype=E.dtype)
    firing = torch.tensor(table["features_firing"].tolist(), dtype=E.dtype)

    broad, narrow = masks["broad"], masks["narrow"]
    M = block_map(W1, W2, E, broad)
    offset = W2[:, broad] @ b1[broad]
    with one_thread():  # engine.threads.one_thread: fast when busy, the same bits everywhere
        sv = torch.linalg.svdvals(M)
    rank = int((sv > rank_tolerance * sv[0]).sum()) if sv.numel() and sv[0] > 0 else 0
    per_feature = task in ("decoder", "abs") and W2.shape[0] == E.shape[1]
    c, residual = fit_gram(M, E) if per_feature and broad.any() else (nan, nan)
    linear = nan
    if inputs is not None and broad.any():
        pre = einsum(_f64(inputs), W1[broad] @ E, "samples features, neurons features -> samples neurons") + b1[broad]
        linear = float((pre > 0).double().mean())
    mean_offset = float(offset.mean()) if broad.any() else nan

    def loss(neurons: Tensor) -> float:
        return lone_feature_loss(W1, b1, W2, E, nonlinearity, neurons, amps, task) if per_feature else nan

    return {
        "neurons": table,
        **{kind: torch.nonzero(mask)[:, 0].tolist() for kind, mask in masks.items()},
        **{f"n_{kind}": int(mask.sum()) for kind, mask in masks.items()},
        "broad_positive_bias": float((bias[broad] > 0).double().mean()) if broad.any() else nan,
        "broad_median_bias": _median(bias[broad]),
        "broad_features_firing": _median(firing[broad]),
        "broad_linear_fraction": linear,
        "broad_map": M,
        "broad_offset": offset,
        "offset_mean": mean_offset,
        "offset_std": float(offset.std(correction=0)) if broad.any() else nan,
        "offset_same_sign": float((torch.sign(offset) == math.copysign(1, mean_offset)).double().mean())
        if broad.any() and mean_offset != 0 else nan,
        "broad_singular_values": sv,
        "broad_rank": rank,
        "gram_c": c,
        "gram_residual": residual,
        "narrow_features_firing": _median(firing[narrow]),
        "narrow_median_bias": _median(bias[narrow]),
        "narrow_median_mono_ratio": _median(ratio[narrow]),
        "loss_full": loss(torch.ones_like(broad)),
        "loss_without_broad": loss(~broad),
        "loss_broad": loss(broad),
        "loss_mono": loss(masks["mono"]),
        "loss_zero": loss(torch.zeros_like(broad)),
    }


def training_like_inputs(
    cfg: ExperimentConfig, n_samples: int = REAL_INPUT_SAMPLES
) -> Float[Tensor, "samples features"]:
    """``n_samples`` training-like feature vectors of one instance (its feature law; the abs task's signed
    v1 - v2), drawn from its probe stream (``data.PROBE_STREAM``), not its training stream: the same every call."""
    gen = generator(cfg.run.seed, PROBE_STREAM)
    sampler = feature_sampler(cfg.data, cfg.firing, n_samples, gen, torch.device("cpu"),
                              signed=cfg.task.task == "abs")
    return sampler.sample().double()


def instance_summary(results: Results, run_id: str, step: int | None = None) -> dict[str, Any]:
    """``explain_summary`` of one instance of a results folder at a checkpoint (default: the final model), with its
    task and ``training_like_inputs``."""
    cfg = instance_config(results, run_id)
    p = results.params(run_id) if step is None else results.params(run_id, step)
    return explain_summary(p["W1"], p["b1"], p["W2"], p["E"], cfg.model.nonlinearity, task=cfg.task.task,
                           inputs=training_like_inputs(cfg))


def has_neurons(results: Results, run_id: str | None = None) -> bool:
    """Whether an instance's checkpoint (default: the first instance's) holds ``NEURON_TENSORS``, i.e. whether the
    neuron analysis, the dashboard's per-neuron panels and the report's mechanism numbers apply to this sweep."""
    return store.holds_tensors(results, NEURON_TENSORS, run_id)


def most_monosemantic(results: Results) -> str | None:
    """The run_id with the highest final mono_per_feature among instances that did not diverge (else the first):
    the instance the mechanism figure, the probe figure and the report's mechanism numbers describe by default."""
    inst = results.instances
    if inst.empty:
        return None
    ok = inst[inst["status"] == "ok"]
    if ok.empty or "mono_per_feature" not in ok:
        return str(inst["run_id"].iloc[0])
    return str(ok.loc[ok["mono_per_feature"].idxmax(), "run_id"])


def instance_config(results: Results, run_id: str) -> ExperimentConfig:
    """The ExperimentConfig of one instance of a results folder, rebuilt from its instances.parquet row."""
    row = results.row(run_id)
    # parquet gives numpy scalars; pydantic wants plain Python values
    values = {f: (row[f].item() if hasattr(row[f], "item") else row[f]) for f in FIELDS if f in row.index}
    return ExperimentConfig.from_flat(values)


def explain(results: Results, run_id: str, step: int | None = None) -> pd.DataFrame:
    """The neuron table of one instance of a results folder (``explain_instance``) at a checkpoint step.

    ``step`` defaults to the final model. Besides ``explain_instance``'s columns (neuron, kind, feature, bias,
    threshold, slope, participation, mono_ratio, features_firing, sign) the table has the multi-feature probe of
    that instance (``evaluate.em_probe``: the same inputs as the ``false_mono`` metric):
      ``fires_all_but_one``: how many of the N all-but-one inputs make the neuron fire;
      ``context_features``: features that help make it fire in random inputs without its own feature;
      ``false_mono``: mono by the single-feature probe but firing without its own feature.
    ``table.attrs`` holds the instance's ``explain_summary`` scalars (n_mono, n_narrow, n_broad, n_dead,
    broad_positive_bias, broad_linear_fraction, gram_c, gram_residual, offset_mean, loss_full, ...) and ``run_id``,
    ``step``.

    Example:
        >>> import toymodels as tm
        >>> res = tm.load("runs/LR1-quick")                               # doctest: +SKIP
        >>> tm.analysis.explain(res, "r0005").query("kind == 'broad'")    # doctest: +SKIP
    """
    cfg = instance_config(results, run_id)
    if not has_neurons(results, run_id):
        raise ValueError(f"explain needs a model with the tensors {', '.join(NEURON_TENSORS)} (the EM model); "
                         f"instance {run_id} is a '{cfg.model.model}' model")
    steps = results.checkpoint_steps(run_id)
    step = steps[-1] if step is None else step
    summary = instance_summary(results, run_id, step)
    table = summary["neurons"]
    p = results.params(run_id, step)
    probe = em_probe([cfg], {k: _f64(p[k])[None] for k in ("W1", "b1", "E")})
    table["fires_all_but_one"] = probe["fires_all_but_one"][0].tolist()
    table["context_features"] = probe["context_features"][0].tolist()
    table["false_mono"] = probe["false_mono_neurons"][0].tolist()
    scalars = {k: v for k, v in summary.items() if isinstance(v, (int, float))}
    table.attrs.update(run_id=run_id, step=int(step), **scalars)
    return table
