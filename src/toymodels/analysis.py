"""Mechanism of an EM model's neurons, in particular the residual polysemantic ones (docs/papers.md §1.6, check 6).

Engineering Monosemanticity (Jermyn et al. 2022, Sec. 5) interprets the models that remain partly polysemantic.
The evidence collected in docs/papers.md §1.6 suggests this picture, which the functions here measure on one instance:

* **mono** neurons (paper criterion) have negative biases: each is silent until its feature's amplitude passes a
  threshold ``-b / (W1 E)[n, f]`` and then adds a ramp of fixed slope to the output;
* **poly** neurons (live but not mono) have positive biases and fire for (nearly) every lone feature, so they sit in
  the linear regime. Their joint map ``M = W2[:, poly] W1[poly] E`` is then linear in the features with rank at most
  m: a low-rank approximation of the identity, expected to look like ``c * E^T E + d``;
* **dead** neurons fire for no lone feature.

All functions take ONE instance (no instance axis): ``W1`` (k, m), ``b1`` (k,), ``W2`` (out, k), ``E`` (m, N).
Computation is in float64 (single instances are small, and exact numbers make the tables readable).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch
from einops import einsum
from jaxtyping import Bool, Float
from torch import Tensor

from toymodels import store
from toymodels.activations import Nonlinearity, activation
from toymodels.config import FIELDS, ExperimentConfig
from toymodels.families.em.evaluate import em_probe
from toymodels.metrics import (
    MONO_THRESHOLD,
    is_dead,
    is_mono,
    mono_ratio,
    own_feature,
    participation,
    single_feature_activations,
)

# The tensors every function here reads (the EM model's): a results folder whose checkpoints hold them can be explained.
NEURON_TENSORS = ("W1", "b1", "W2", "E")
# Singular values above this fraction of the largest count towards the numerical rank.
RANK_TOLERANCE = 0.01
# Amplitudes of the lone-feature loss: an even grid on [0, 1].
N_AMPLITUDES = 21


def _f64(x: Any) -> Tensor:
    return torch.as_tensor(x).detach().to(torch.float64)


def _sfa(W1: Tensor, b1: Tensor, E: Tensor, nonlinearity: Nonlinearity) -> Float[Tensor, "k N"]:
    """Single-feature activations of one instance (the batched probe with I = 1)."""
    return single_feature_activations(W1[None], b1[None], E[None], nonlinearity)[0]


def neuron_kinds(sfa: Float[Tensor, "k N"], threshold: float = MONO_THRESHOLD) -> list[str]:
    """``"mono"`` (paper criterion), ``"dead"`` (fires on no lone feature) or ``"poly"`` (live, not mono)."""
    mono, dead = is_mono(sfa[None], threshold)[0], is_dead(sfa[None])[0]
    return ["mono" if mo else "dead" if de else "poly" for mo, de in zip(mono.tolist(), dead.tolist())]


def explain_instance(
    W1: Float[Tensor, "k m"],
    b1: Float[Tensor, "k"],
    W2: Float[Tensor, "out k"],
    E: Float[Tensor, "m N"],
    nonlinearity: Nonlinearity,
    threshold: float = MONO_THRESHOLD,
) -> pd.DataFrame:
    """One row per neuron describing its role.

    Columns:
      ``neuron``; ``kind`` (mono / poly / dead); ``feature`` (sfa argmax, -1 for dead neurons); ``bias``;
      ``threshold``: for mono neurons the feature amplitude where the pre-activation crosses zero,
        ``-b / (W1 E)[n, f]`` (negative: already firing at amplitude 0; NaN if ``(W1 E)[n, f] = 0``); NaN otherwise;
      ``slope``: for mono neurons the rate at which its output contribution grows with its feature's amplitude in
        the linear regime, ``(W1 E)[n, f] * W2[f, n]`` when out = N (decoder, abs); for the re-projector (out != N)
        the output has no feature index, so ``(W1 E)[n, f] * ||W2[:, n]||``; NaN for other neurons;
      ``participation``: participation ratio of its sfa row (0 for dead);
      ``mono_ratio``: the paper's ratio (positive part); ``features_firing``: how many lone features make it fire.
    """
    W1, b1, W2, E = map(_f64, (W1, b1, W2, E))
    sfa = _sfa(W1, b1, E, nonlinearity)
    kinds = neuron_kinds(sfa, threshold)
    feature = own_feature(sfa[None])[0]
    gain = (W1 @ E).gather(1, feature.clamp(min=0)[:, None])[:, 0]  # (W1 E)[n, f]
    out_weight = W2.gather(0, feature.clamp(min=0)[None])[0] if W2.shape[0] == E.shape[1] else W2.norm(dim=0)
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
            "features_firing": (sfa > 0).sum(-1).tolist(),
        }
    )


def block_map(W1: Tensor, W2: Tensor, E: Tensor, neurons: Bool[Tensor, "k"]) -> Float[Tensor, "out N"]:
    """End-to-end map of a block of neurons treated as linear: ``W2[:, S] @ W1[S] @ E``."""
    return W2[:, neurons] @ W1[neurons] @ E


def fit_gram(M: Float[Tensor, "N N"], E: Float[Tensor, "m N"]) -> tuple[float, float, float]:
    """Least-squares fit ``M ~ c * E^T E + d`` over all entries; returns ``(c, d, relative residual)``.

    The relative residual is ``||M - c E^T E - d||_F / ||M||_F`` (0 for M = 0). ``E^T E`` is the interference
    pattern of the embedding, so a small residual means the block decodes every feature with the same read-out
    ``c * E^T x`` plus a constant.
    """
    gram = E.T @ E
    design = torch.stack([gram.flatten(), torch.ones_like(gram.flatten())], dim=1)
    c, d = torch.linalg.lstsq(design, M.flatten()[:, None]).solution[:, 0].tolist()
    norm = M.norm()
    residual = (M - c * gram - d).norm() / norm if norm > 0 else torch.zeros(())
    return c, d, float(residual)


def lone_feature_loss(
    W1: Tensor,
    b1: Tensor,
    W2: Tensor,
    E: Tensor,
    nonlinearity: Nonlinearity,
    neurons: Bool[Tensor, "k"],
    amplitudes: Float[Tensor, "A"],
) -> float:
    """Decoder loss of the model restricted to a block of neurons, on lone features.

    Inputs are ``v = a e_j`` for every feature j and amplitude a in ``amplitudes``; the target is ``v`` (the decoder
    task; for the abs task |v| = v here). The loss is the paper's per-sample summed squared error
    ``sum_o (out_o - v_o)^2``, averaged over the (a, j) grid. Neurons outside the block are removed (their
    activations set to 0). An empty block gives the zero-output loss, mean over the grid of ``a^2``.
    """
    N = E.shape[1]
    v = einsum(amplitudes, torch.eye(N, dtype=E.dtype), "A, j N -> A j N")
    h = activation(einsum(W1 @ E, v, "k N, A j N -> A j k") + b1, nonlinearity) * neurons
    out = einsum(W2, h, "o k, A j k -> A j o")
    return float(((out - v) ** 2).sum(-1).mean())


def explain_summary(
    W1: Float[Tensor, "k m"],
    b1: Float[Tensor, "k"],
    W2: Float[Tensor, "out k"],
    E: Float[Tensor, "m N"],
    nonlinearity: Nonlinearity,
    threshold: float = MONO_THRESHOLD,
    amplitudes: int | Tensor = N_AMPLITUDES,
    rank_tolerance: float = RANK_TOLERANCE,
) -> dict[str, Any]:
    """How the mono and polysemantic blocks of one EM instance compute (docs/papers.md §1.6).

    Keys:
      ``neurons``: the ``explain_instance`` table; ``mono``, ``poly``, ``dead``: neuron indices;
        ``n_mono``, ``n_poly``, ``n_dead``: their counts.
      ``poly_map``: ``M = W2[:, poly] W1[poly] E`` (out, N), the poly block taken as linear (diag(1) in place of
        the nonlinearity); ``poly_offset``: its constant output ``W2[:, poly] b1[poly]``;
        ``poly_singular_values``: singular values of M (descending);
        ``poly_rank``: how many exceed ``rank_tolerance`` (1%) of the largest (0 for an empty or zero block;
        at most m); ``poly_linear_fraction``: fraction of (poly neuron, lone feature, amplitude) triples with
        pre-activation > 0, i.e. how well "linear regime" holds (NaN without poly neurons).
      ``gram_c``, ``gram_d``, ``gram_residual``: least-squares fit ``M ~ c E^T E + d`` (``fit_gram``);
        NaN when out != N (re-projector: M is not feature-to-feature).
      ``loss_full``, ``loss_mono``, ``loss_poly``, ``loss_zero``: lone-feature decoder loss
        (``lone_feature_loss``) of the full model, the mono block alone, the poly block alone and no neurons,
        on ``amplitudes`` (an even grid of that many points on [0, 1], or the given values); NaN when out != N.
    """
    W1, b1, W2, E = map(_f64, (W1, b1, W2, E))
    table = explain_instance(W1, b1, W2, E, nonlinearity, threshold)
    kinds = table["kind"].to_numpy()
    masks = {kind: torch.as_tensor(kinds == kind) for kind in ("mono", "poly", "dead")}
    amps = torch.linspace(0, 1, amplitudes, dtype=E.dtype) if isinstance(amplitudes, int) else _f64(amplitudes)

    poly = masks["poly"]
    M = block_map(W1, W2, E, poly)
    sv = torch.linalg.svdvals(M)
    rank = int((sv > rank_tolerance * sv[0]).sum()) if sv.numel() and sv[0] > 0 else 0
    pre_poly = einsum(W1[poly] @ E, amps, "k N, A -> k N A") + b1[poly, None, None]
    is_decoder = W2.shape[0] == E.shape[1]
    nan = float("nan")
    c, d, residual = fit_gram(M, E) if is_decoder else (nan, nan, nan)

    def loss(neurons: Tensor) -> float:
        return lone_feature_loss(W1, b1, W2, E, nonlinearity, neurons, amps) if is_decoder else nan

    return {
        "neurons": table,
        **{kind: torch.nonzero(mask)[:, 0].tolist() for kind, mask in masks.items()},
        **{f"n_{kind}": int(mask.sum()) for kind, mask in masks.items()},
        "poly_map": M,
        "poly_offset": W2[:, poly] @ b1[poly],
        "poly_singular_values": sv,
        "poly_rank": rank,
        "poly_linear_fraction": float((pre_poly > 0).double().mean()) if poly.any() else nan,
        "gram_c": c,
        "gram_d": d,
        "gram_residual": residual,
        "loss_full": loss(torch.ones_like(poly)),
        "loss_mono": loss(masks["mono"]),
        "loss_poly": loss(poly),
        "loss_zero": loss(torch.zeros_like(poly)),
    }


def has_neurons(results: Any, run_id: str | None = None) -> bool:
    """Whether an instance's checkpoint (default: the first instance's) holds ``NEURON_TENSORS``, i.e. whether the
    neuron analysis, the dashboard's per-neuron panels and the report's mechanism numbers apply to this sweep."""
    return store.holds_tensors(results, NEURON_TENSORS, run_id)


def most_monosemantic(results: Any) -> str | None:
    """The run_id with the highest final mono_per_feature among instances that did not diverge (else the first):
    the instance the mechanism figure, the probe figure and the report's mechanism numbers describe by default."""
    inst = results.instances
    if inst.empty:
        return None
    ok = inst[inst["status"] == "ok"]
    if ok.empty or "mono_per_feature" not in ok:
        return str(inst["run_id"].iloc[0])
    return str(ok.loc[ok["mono_per_feature"].idxmax(), "run_id"])


def instance_config(results: Any, run_id: str) -> Any:
    """The ExperimentConfig of one instance of a results folder, rebuilt from its instances.parquet row."""
    row = results.row(run_id)
    # parquet gives numpy scalars; pydantic wants plain Python values
    values = {f: (row[f].item() if hasattr(row[f], "item") else row[f]) for f in FIELDS if f in row.index}
    return ExperimentConfig.from_flat(values)


def explain(results: Any, run_id: str, step: int | None = None) -> pd.DataFrame:
    """The neuron table of one instance of a results folder (``explain_instance``) at a checkpoint step.

    ``step`` defaults to the final model. Besides ``explain_instance``'s columns (neuron, kind, feature, bias,
    threshold, slope, participation, mono_ratio, features_firing) the table has the multi-feature probe of that
    instance (``evaluate.em_probe``: the same inputs as the ``false_mono`` metric):
      ``fires_all_but_one``: how many of the N all-but-one inputs make the neuron fire;
      ``context_features``: features that help make it fire in random inputs without its own feature;
      ``false_mono``: mono by the single-feature probe but firing without its own feature.
    ``table.attrs`` holds the instance's ``explain_summary`` scalars (n_mono, n_poly, n_dead, poly_rank, gram_c,
    gram_d, gram_residual, loss_full, loss_mono, loss_poly, loss_zero, ...) and ``run_id``, ``step``.

    Example:
        >>> import toymodels as tm
        >>> res = tm.load("runs/LR1-quick")                               # doctest: +SKIP
        >>> tm.analysis.explain(res, "r0005").query("kind == 'mono'")     # doctest: +SKIP
    """
    cfg = instance_config(results, run_id)
    if not has_neurons(results, run_id):
        raise ValueError(f"explain needs a model with the tensors {', '.join(NEURON_TENSORS)} (the EM model); "
                         f"instance {run_id} is a '{cfg.model.model}' model")
    steps = results.checkpoint_steps(run_id)
    step = steps[-1] if step is None else step
    p = results.params(run_id, step)
    summary = explain_summary(p["W1"], p["b1"], p["W2"], p["E"], cfg.model.nonlinearity)
    table = summary["neurons"]
    probe = em_probe([cfg], {k: _f64(p[k])[None] for k in ("W1", "b1", "E")})
    table["fires_all_but_one"] = probe["fires_all_but_one"][0].tolist()
    table["context_features"] = probe["context_features"][0].tolist()
    table["false_mono"] = probe["false_mono_neurons"][0].tolist()
    scalars = {k: v for k, v in summary.items() if isinstance(v, (int, float))}
    table.attrs.update(run_id=run_id, step=int(step), **scalars)
    return table
