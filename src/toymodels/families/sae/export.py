"""Export a trained SAE in the layout SAELens loads: ``cfg.json`` beside ``sae_weights.safetensors``.

``toymodels export-sae RUN_DIR RUN_ID OUT`` (or :func:`export_sae`) writes one SAE of a results folder so that
``sae_lens.SAE.load_from_disk(OUT)`` gives the same encoder and decoder: SAELens computes
``f = act((x - b_dec) @ W_enc + b_enc)`` and ``x_hat = f @ W_dec + b_dec`` with ``W_enc`` (d_in, d_sae) and ``W_dec``
(d_sae, d_in), which is our per-instance layout (``toymodels.families.sae``) without the instance axis. The
architectures map as relu_l1 -> ``standard``, topk -> ``topk`` (``k``), jumprelu -> ``jumprelu`` (``threshold`` =
exp(log_threshold)); batchtopk has no per-sample inference rule (its threshold is a batch statistic we do not
learn), so it is refused. SAELens' names and file names follow its own ``save_model`` (its conventions win).

Example:
    >>> export_sae("runs/SAE-L0-quick/SAE-L0-topk", "r0003", "exports/topk-k4")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import torch

from toymodels.results import store
from toymodels.config import ConfigError
from toymodels.results.store import ResultsError

CFG_FILENAME = "cfg.json"
WEIGHTS_FILENAME = "sae_weights.safetensors"
#: our architecture -> SAELens' ``architecture`` name
SAELENS_ARCHITECTURES = {"relu_l1": "standard", "topk": "topk", "jumprelu": "jumprelu"}


def saelens_files(results: store.Results, run_id: str, step: int | None = None
                  ) -> tuple[dict, dict[str, torch.Tensor]]:
    """(cfg.json contents, weights) of one SAE of ``results`` in SAELens' layout; ConfigError (one line) if it is
    not an SAE, diverged, or has no SAELens equivalent."""
    try:
        row = results.row(run_id)
    except KeyError:
        # a group left out (damaged, copied, not what sweep.json plans) is named, and nothing is exported from it
        raise ConfigError(f"run id '{run_id}': {results.why_missing(run_id)}") from None
    if row["model"] != "sae":
        raise ConfigError(f"run id '{run_id}': a '{row['model']}' model; export-sae needs an instance of model 'sae'")
    if row["status"] != "ok":
        raise ConfigError(f"run id '{run_id}': {row['status']}; only a trained SAE can be exported")
    arch = row["sae_arch"]
    if arch not in SAELENS_ARCHITECTURES:
        raise ConfigError(f"field 'sae_arch': SAELens' layout takes {', '.join(SAELENS_ARCHITECTURES)} "
                          f"(got {arch!r}: its latents depend on the whole batch, with no per-sample form)")
    t = results.params(run_id, step)
    weights = {name: t[name].detach().float().contiguous() for name in ("W_enc", "b_enc", "W_dec", "b_dec")}
    cfg = {
        "architecture": SAELENS_ARCHITECTURES[arch], "d_in": int(weights["W_enc"].shape[0]),
        "d_sae": int(weights["W_enc"].shape[1]), "dtype": "float32", "device": "cpu",
        "apply_b_dec_to_input": True, "normalize_activations": "none", "reshape_activations": "none",
        "metadata": {"toymodels_run": f"{results.folder.resolve()}#{run_id}", "toymodels_sae_arch": arch,
                     "toymodels_source": str(row["source"]), "toymodels_source_layer": str(row["source_layer"]),
                     "toymodels_version": store.package_version()},
    }
    if arch == "topk":
        cfg.update(k=int(row["sae_k"]), rescale_acts_by_decoder_norm=False)
    if arch == "jumprelu":
        weights["threshold"] = t["log_threshold"].detach().float().exp().contiguous()
    return cfg, weights


def export_sae(folder: str | Path, run_id: str, out: str | Path, step: int | None = None) -> Path:
    """Write SAE ``run_id`` of results folder ``folder`` (at checkpoint ``step``, default the final model) into the
    new folder ``out`` as SAELens' ``cfg.json`` + ``sae_weights.safetensors``; returns ``out``."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"OUT '{out}' exists and is not an empty folder; choose another")
    cfg, weights = saelens_files(store.load(folder), run_id, step)
    try:
        store.write_tensors(out / WEIGHTS_FILENAME, weights)
        store.write_json(out / CFG_FILENAME, cfg)
    except OSError as err:
        raise ResultsError(f"{out}: cannot write ({err.strerror})") from None
    return out
