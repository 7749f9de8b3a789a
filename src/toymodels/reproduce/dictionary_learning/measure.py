"""What the dictionary-learning judges read, measured once from the trained models (each after its last step,
``rules.CHECKPOINT``): one table per question, one row per model, with the numbers the SAE family's own evaluation
does not give.

* :func:`lr_table` (SAE-LR): per LR1 source model, the features its neurons cover and the features the SAE on h
  (and on x) covers, by the one criterion ``metrics.dictionary.covered_features``, at each selectivity of
  ``rules.SELECTIVITIES`` (the thresholds of the sensitivity line), with the SAEs' decoder-|cos| recovery and MCC.
* :func:`l0_table` (SAE-L0): the SAEs' rows with ``best_cos``, the mean over true features of their best |cos|
  (comparable across widths, unlike MCC).
* :func:`absorption_table` (SAE-ABS): the SAEs' rows with ``gap``, ``metrics.dictionary.pair_gap`` on
  ``rules.GAP_SAMPLES`` fresh samples, over the hierarchy's parent-child pairs: on hierarchical features it is the
  absorption gap, on independent ones (the same SAEs without a hierarchy) the null baseline.
* :func:`tms_table` (SAE-TMS): the SAEs' rows with their source's density and seed, the features it represents
  (||W_i|| > ``represented_norm``, read off the SAE's true directions, which are W's columns) and the fraction of
  those the latents cover (selectivity over the represented features only: the others give the SAE no input).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from toymodels.engine.data import firing_structure
from toymodels.families.sae.architecture import SAE, get_architecture
from toymodels.families.sae.evaluate import eval_batch
from toymodels.families.sae.sources import run_config, source_layers
from toymodels.metrics.dictionary import (
    abs_cosines,
    covered_features,
    mean_best_cos,
    pair_gap,
)
from toymodels.reproduce.dictionary_learning.rules import (
    GAP_SAMPLES,
    RULES,
    SELECTIVITIES,
    coverage_column,
)
from toymodels.results.store import Results


def sae_instances(results: dict[str, Results]) -> pd.DataFrame:
    """The instance rows of the SAE folders (names not starting with 'source:'), with their folder name."""
    frames = [r.instances.assign(sweep=k) for k, r in results.items() if not k.startswith("source:")]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def sparsity_label(row: pd.Series) -> str:
    """'k=4' for the k architectures, 'l1=0.3' for the penalty ones (the other field is unused there)."""
    return f"k={row['sae_k']}" if row["sae_arch"] in ("topk", "batchtopk") else f"l1={row['l1']:g}"


def load_sae(res: Results, run_id: str) -> SAE:
    """One trained SAE (an instance axis of 1) after its last step."""
    arch = str(res.row(run_id)["sae_arch"])
    sae = get_architecture(arch).from_tensors({k: v[None] for k, v in res.params(run_id).items()})
    return sae.requires_grad_(False)  # read, never trained: no graph behind the numbers


@torch.no_grad()
def latent_responses(sae: SAE) -> Tensor:
    """(1, latents, features): each latent's activation when one feature alone is on at amplitude 1, i.e. the
    SAE's ``encode`` of the layer's single-feature activations (its true directions)."""
    return sae.encode(sae.truth.float()).transpose(1, 2)


def coverage(responses: Tensor, prefix: str, keep: Tensor | None = None) -> dict[str, float]:
    """The covered fraction of the features (of ``keep``'s, when given; NaN for none) at every selectivity of
    ``SELECTIVITIES``, by ``covered_features``; ``responses``: (1, units, features)."""
    if keep is not None:
        responses = responses[..., keep]
    out = {}
    for s in SELECTIVITIES:
        cov = covered_features(responses.double(), s)
        out[coverage_column(prefix, s)] = float(cov.double().mean()) if cov.numel() else float("nan")
    return out


def _ok(res: Results) -> pd.DataFrame:
    return res.instances[res.instances["status"] == "ok"]


# ---- SAE-LR ----------------------------------------------------------------------------------------------------
def neuron_responses(res: Results, run_id: str) -> Tensor:
    """(1, neurons, features): the hidden layer's single-feature activations of one source model (its sfa)."""
    cfg = run_config(res, run_id)
    t = {k: v[None] for k, v in res.params(run_id).items()}
    return source_layers(cfg.model.model)["h"].truth(t, cfg).T[None]


def lr_table(results: dict[str, Results]) -> pd.DataFrame:
    """One row per source model (module docstring): lr, seed, ``cover_neurons@s``, ``mono_per_feature`` and per
    layer L in (h, x) ``cover_L@s``, ``recovered_L`` (decoder |cos| > 0.9), ``mcc_L``, ``best_cos_L``."""
    saes = sae_instances(results)
    rows = []
    for key, src in results.items():
        if not key.startswith("source:"):
            continue
        for _, s in _ok(src).iterrows():
            row = {"lr": float(s["lr"]), "seed": int(s["seed"]), "run_id": s["run_id"],
                   "mono_per_feature": s.get("mono_per_feature"), "features_covered": s.get("features_covered"),
                   **coverage(neuron_responses(src, s["run_id"]), "cover_neurons")}
            for layer in ("h", "x"):
                sel = saes[(saes["source"].astype(str) == str(src.folder.resolve())) & (saes["status"] == "ok")
                           & (saes["source_run"] == s["run_id"]) & (saes["source_layer"] == layer)] \
                    if len(saes) else saes
                per = []
                for _, a in sel.iterrows():
                    sae = load_sae(results[a["sweep"]], a["run_id"])
                    cos = abs_cosines(sae.W_dec, sae.truth)
                    per.append({**coverage(latent_responses(sae), f"cover_{layer}"),
                                f"recovered_{layer}": float(a["features_recovered"]), f"mcc_{layer}": float(a["mcc"]),
                                f"best_cos_{layer}": float(mean_best_cos(cos)[0])})
                row.update(pd.DataFrame(per).mean().to_dict() if per else {})
            rows.append(row)
    return pd.DataFrame(rows)


# ---- SAE-L0 ----------------------------------------------------------------------------------------------------
def l0_table(results: dict[str, Results]) -> pd.DataFrame:
    """The SAEs' rows (ok ones) with ``sparsity`` and ``best_cos``."""
    d = sae_instances(results)
    if d.empty:
        return d
    d = d[d["status"] == "ok"].reset_index(drop=True)
    best = []
    for _, a in d.iterrows():
        sae = load_sae(results[a["sweep"]], a["run_id"])
        best.append(float(mean_best_cos(abs_cosines(sae.W_dec, sae.truth))[0]))
    return d.assign(best_cos=best, sparsity=d.apply(sparsity_label, axis=1))


# ---- SAE-ABS ---------------------------------------------------------------------------------------------------
def hierarchy_pairs(res: Results, run_id: str) -> Tensor:
    """The parent of each feature (-1 for roots) in the hierarchy of this instance's data fields, whatever firing
    it trained on: the pairs the null baseline measures on features without a hierarchy."""
    cfg = run_config(res, run_id).replace(firing="hierarchical")
    return firing_structure(cfg.data, cfg.firing).parents


@torch.no_grad()
def gap_of(res: Results, run_id: str, samples: int = GAP_SAMPLES) -> float:
    """``pair_gap`` of one SAE over ``samples`` fresh samples of its own source (probe stream)."""
    sae = load_sae(res, run_id)
    x, feats = eval_batch(run_config(res, run_id), samples)
    acts = sae.encode(x[None])
    cos = abs_cosines(sae.W_dec, sae.truth)
    return float(pair_gap(acts, feats[None], cos, [hierarchy_pairs(res, run_id)])[0])


def absorption_table(results: dict[str, Results], samples: int = GAP_SAMPLES) -> pd.DataFrame:
    """The SAEs' rows (ok ones) with ``sparsity`` and ``gap`` (independent and hierarchical arms; NaN for the
    correlated one, which has no pairs)."""
    d = sae_instances(results)
    if d.empty:
        return d
    d = d[d["status"] == "ok"].reset_index(drop=True)
    gaps = [gap_of(results[a["sweep"]], a["run_id"], samples) if a["firing"] in ("independent", "hierarchical")
            else np.nan for _, a in d.iterrows()]
    return d.assign(gap=gaps, sparsity=d.apply(sparsity_label, axis=1))


# ---- SAE-TMS ---------------------------------------------------------------------------------------------------
def tms_table(results: dict[str, Results]) -> pd.DataFrame:
    """The SAEs' rows (ok ones) with ``eps``, ``S`` (the sparsity 1 - eps), ``source_seed``, ``represented``,
    ``cover_rep@s``, ``recovered_rep`` (decoder |cos| > ``recovered_cos`` among the represented features)."""
    srcs = [r for k, r in results.items() if k.startswith("source:")]
    d = sae_instances(results)
    if not srcs or d.empty:
        return pd.DataFrame()
    d = d[d["status"] == "ok"].reset_index(drop=True)
    src = pd.concat([s.instances for s in srcs]).set_index("run_id")
    extra = []
    for _, a in d.iterrows():
        sae = load_sae(results[a["sweep"]], a["run_id"])
        rep = sae.truth[0].norm(dim=-1) > RULES.represented_norm
        cos = abs_cosines(sae.W_dec, sae.truth)[0][:, rep]
        extra.append({"represented": int(rep.sum()), **coverage(latent_responses(sae), "cover_rep", rep),
                      "recovered_rep": float((cos.amax(0) > RULES.recovered_cos).double().mean())
                      if rep.any() else np.nan})
    d = pd.concat([d, pd.DataFrame(extra)], axis=1)
    d["eps"] = d["source_run"].map(src["eps"]).astype(float)
    d["source_seed"] = d["source_run"].map(src["seed"]).astype(int)
    d["S"] = 1 - d["eps"]
    return d
