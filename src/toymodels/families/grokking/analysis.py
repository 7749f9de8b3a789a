"""What a finished grokking folder says, instance by instance (docs/papers.md §5.3-5.4): when train and test accuracy
first pass a threshold, the final model's key frequencies, restricted and excluded loss over training with those
frequencies (the paper's curves), the weight norm, the three phases and the phase diagram over weight decay and
training fraction. The pieces a study's rules call; pandas in, pandas out.

Example:
    >>> res = tm.load("runs/GROK-quick")                                   # doctest: +SKIP
    >>> accuracy_steps(res)                                                # doctest: +SKIP
    >>> progress_measures(res, "r0000")[["step", "restricted_loss", "excluded_loss"]]   # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from toymodels.families.grokking import fourier
from toymodels.families.grokking.data import train_mask
from toymodels.families.grokking.evaluate import (
    WAVE_SIGN,
    all_outputs,
    cross_entropy,
    embedding,
    key_mask,
    neuron_logit_map,
    weight_norm,
)
from toymodels.families.grokking.model import from_tensors
from toymodels.results.model import instance_config
from toymodels.results.store import Results

#: train accuracy at which memorisation has ended (the first phase boundary drawn on the figures)
MEMORISED = 0.99
#: test accuracy at which an instance counts as grokked (and cleanup as ended on the figures)
GROKKED = 0.99
#: cleanup has begun once the test loss fell below this share of its peak after memorisation
DROP = 0.5


def curve(results: Results, run_id: str, name: str) -> pd.Series:
    """A metric of one instance over its checkpoints (``loss``: every 16 steps), indexed by step."""
    c = results.curve(run_id, name)
    return pd.Series(c["value"].to_numpy(), index=c["step"].to_numpy(), name=name)


def first_step(results: Results, run_id: str, name: str, threshold: float, above: bool = True) -> int | None:
    """The first checkpoint step at which ``name`` is above (or, ``above=False``, below) ``threshold``; None if
    never. A checkpoint step t is the model after t + 1 updates."""
    c = curve(results, run_id, name)
    hit = c[c > threshold] if above else c[c < threshold]
    return int(hit.index[0]) if len(hit) else None


def accuracy_steps(results: Results, train: float = MEMORISED, test: float = GROKKED) -> pd.DataFrame:
    """Per instance: the first checkpoint steps with train accuracy above ``train`` and test accuracy above
    ``test`` (NaN if never), the gap between them, and the final accuracies."""
    rows = []
    for rid in results.instances["run_id"]:
        tr, te = first_step(results, rid, "train_acc", train), first_step(results, rid, "test_acc", test)
        row = results.row(rid)
        rows.append({"run_id": rid, "train_acc_step": tr, "test_acc_step": te,
                     "gap": None if tr is None or te is None else te - tr,
                     "final_train_acc": row.get("train_acc"), "final_test_acc": row.get("test_acc")})
    return pd.DataFrame(rows).astype({"train_acc_step": "Float64", "test_acc_step": "Float64", "gap": "Float64"})


def key_frequencies(results: Results, run_id: str, step: int | None = None, source: str = "embedding") -> list[int]:
    """The key frequencies k (w = 2 pi k / P) of a checkpoint (default: the final model): those whose Fourier norm
    is at least ``fourier.KEY_FRACTION`` of the largest, read from the embedding (``source="embedding"``, the
    paper's §4.1) or from the neuron-logit map W_L (``"logit_map"``, its App. C.2)."""
    t = {k: v[None].double() for k, v in results.params(run_id, step).items()}
    if source == "embedding":
        keep = key_mask(t)[0]
    elif source == "logit_map":
        keep = fourier.key_frequencies(fourier.frequency_norms(fourier.component_norms(neuron_logit_map(t))))[0]
    else:
        raise ValueError(f"source: must be 'embedding' or 'logit_map' (got {source!r})")
    return [int(k) + 1 for k in torch.nonzero(keep).flatten()]


def spectrum(results: Results, run_id: str, step: int | None = None) -> pd.DataFrame:
    """The embedding's Fourier norm per frequency k at a checkpoint, with the key ones marked."""
    t = {k: v[None].double() for k, v in results.params(run_id, step).items()}
    norms = fourier.frequency_norms(fourier.component_norms(embedding(t)))[0]
    keep = fourier.key_frequencies(norms)
    return pd.DataFrame({"frequency": np.arange(1, norms.numel() + 1), "norm": norms.numpy(), "key": keep.numpy()})


@torch.no_grad()
def progress_measures(results: Results, run_id: str, key_freqs: list[int] | None = None,
                      steps: list[int] | None = None) -> pd.DataFrame:
    """The paper's progress measures at every checkpoint (§5.1, Figure 7): train and test loss, restricted loss (on
    every pair) and excluded loss (on the training pairs) with ONE set of key frequencies for the whole run (default:
    the final model's, as the paper), the Gini coefficients of W_E's and W_L's Fourier norms and the sum of squared
    weights. Restricted / excluded are NaN for multiply."""
    cfg = instance_config(results, run_id)
    steps = results.checkpoint_steps(run_id) if steps is None else steps
    freqs = key_frequencies(results, run_id) if key_freqs is None else list(key_freqs)
    K = fourier.n_frequencies(cfg.grokking.modulus)
    keep = torch.zeros(1, K, dtype=torch.bool)
    keep[0, [k - 1 for k in freqs]] = True
    train = train_mask(cfg)[None]
    sign = WAVE_SIGN.get(cfg.grokking.operation)
    rows = []
    for step in steps:
        t = {k: v[None].float() for k, v in results.params(run_id, step).items()}
        logits, labels, _ = all_outputs(from_tensors(t, [cfg]))
        x = logits.double()
        row: dict[str, Any] = {"step": step, "train_loss": float(cross_entropy(x, labels, train.double())[0]),
                               "test_loss": float(cross_entropy(x, labels, (~train).double())[0])}
        if sign is None:
            row["restricted_loss"] = row["excluded_loss"] = float("nan")
        else:
            everywhere = torch.ones_like(train, dtype=torch.float64)
            row["restricted_loss"] = float(cross_entropy(fourier.restricted_logits(x, keep, sign), labels,
                                                         everywhere)[0])
            row["excluded_loss"] = float(cross_entropy(fourier.excluded_logits(x, keep, sign), labels,
                                                       train.double())[0])
        td = {k: v.double() for k, v in t.items()}
        row["embed_gini"] = float(fourier.gini(fourier.component_norms(embedding(td)))[0])
        row["logit_gini"] = float(fourier.gini(fourier.component_norms(neuron_logit_map(td)))[0])
        row["weight_norm"] = float(weight_norm(td)[0])
        rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs["key_frequencies"] = freqs
    return out


def phases(results: Results, run_id: str) -> dict[str, int | None]:
    """Our reading of the paper's three phases (§5.2) from the curves: memorisation ends at the first checkpoint
    with train accuracy above ``MEMORISED``; cleanup, in which "test loss suddenly drops", begins at the first
    checkpoint after the test loss's peak (from the end of memorisation on) where it is below ``DROP`` times that
    peak, and ends at the first checkpoint with test accuracy above ``GROKKED`` (None where a boundary is never
    reached). The paper reads its boundaries off the progress measures by eye (docs/papers.md §5.4); these rules
    are ours."""
    end_memorising = first_step(results, run_id, "train_acc", MEMORISED)
    grokked = first_step(results, run_id, "test_acc", GROKKED)
    start = None
    if end_memorising is not None and grokked is not None:
        test = curve(results, run_id, "test_loss")
        test = test[(test.index >= end_memorising) & (test.index <= grokked)]
        if len(test):
            after = test[test.index >= test.idxmax()]
            dropped = after[after < DROP * after.iloc[0]]
            start = int(dropped.index[0]) if len(dropped) else grokked
    return {"memorisation_end": end_memorising, "cleanup_start": start, "cleanup_end": grokked}


def phase_diagram(results: Results, x: str = "train_frac", y: str = "weight_decay") -> pd.DataFrame:
    """Per (x, y) setting (default training fraction x weight decay, Power et al.'s and the paper's App. C.2 / D.1
    sweeps): the mean final test accuracy, the share of instances that grokked (final test accuracy above
    ``GROKKED``), the median first step with test accuracy above ``GROKKED``, and how many instances."""
    rows = []
    for (xv, yv), group in results.instances.groupby([x, y]):
        steps = [first_step(results, rid, "test_acc", GROKKED) for rid in group["run_id"]]
        reached = [s for s in steps if s is not None]
        rows.append({x: xv, y: yv, "test_acc": float(group["test_acc"].mean()),
                     "grokked": float((group["test_acc"] > GROKKED).mean()),
                     "grok_step": float(np.median(reached)) if reached else float("nan"), "n": len(group)})
    return pd.DataFrame(rows)
