"""The grokking family's metrics at a checkpoint (docs/papers.md §5.3): accuracy and loss on each instance's own
train and test pairs, and the paper's progress measures.

Every metric is one number per instance. The key frequencies here are the checkpoint's own (its embedding's,
``fourier.key_frequencies``); the paper's curves use the final model's at every step, which
``analysis.progress_measures`` computes from a finished folder. Restricted and excluded loss are defined for add
and subtract (their waves are cos / sin(w (a +- b))); for multiply they are NaN.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from jaxtyping import Float
from torch import Tensor

from toymodels.config import ExperimentConfig
from toymodels.families.grokking import fourier
from toymodels.families.grokking.data import all_tokens, answers, train_mask
from toymodels.families.grokking.model import (
    GrokTransformer,
    ModularModel,
    from_tensors,
)

#: operation -> the sign s of its waves cos(w (a + s b)); multiply has none
WAVE_SIGN = {"add": 1, "subtract": -1}
#: the metrics of one checkpoint, in the order ``evaluate`` returns them
METRICS = ("train_loss", "test_loss", "train_acc", "test_acc", "weight_norm", "embed_gini", "logit_gini",
           "n_key_freqs", "top_freq", "restricted_loss", "excluded_loss", "neuron_fve", "neurons_explained")


def embedding(t: dict[str, Tensor]) -> Float[Tensor, "instances tokens features"]:
    """What maps a token to the model's first features, (instances, P, ...): the transformer's W_E without "=";
    the MLP's one-hot weights of both operands side by side."""
    if "W_E" in t:
        return t["W_E"][:, :-1]
    return torch.cat([t["W_in"][:, 0], t["W_in"][:, 1]], dim=-1)


def neuron_logit_map(t: dict[str, Tensor]) -> Float[Tensor, "instances outputs neurons"]:
    """W_L, the neurons' direct effect on the logits, (instances, P, neurons): (W_out W_U)^T, or the MLP's W_out^T."""
    W = torch.bmm(t["W_out"], t["W_U"]) if "W_U" in t else t["W_out"]
    return W.transpose(1, 2)


def weight_norm(t: dict[str, Tensor]) -> Float[Tensor, " instances"]:
    """The sum of squared weights over every parameter (biases included), the paper's §5.1."""
    return sum(v.double().pow(2).flatten(1).sum(1) for v in t.values())


def all_outputs(model: ModularModel) -> tuple[Float[Tensor, "instances pairs outputs"], Tensor, Tensor]:
    """(logits of every pair, the answers, the neurons), (instances, P^2, ...)."""
    tokens = all_tokens(model.P).unsqueeze(0).expand(model.n_instances, -1, -1)
    logits, neurons = model(tokens)
    labels = answers(tokens[..., 0], tokens[..., 1], model.operation.view(-1, 1), model.P)
    return logits, labels, neurons


def cross_entropy(logits: Tensor, labels: Tensor, mask: Tensor) -> Tensor:
    """Mean float64 cross entropy over the pairs where ``mask`` (per instance)."""
    nll = -torch.log_softmax(logits.double(), -1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    return (nll * mask).sum(-1) / mask.sum(-1).clamp(min=1)


def key_mask(t: dict[str, Tensor]) -> Tensor:
    """Each instance's own key frequencies (its embedding's), (instances, frequencies) bool."""
    return fourier.key_frequencies(fourier.frequency_norms(fourier.component_norms(embedding(t).double())))


def wave_losses(logits: Tensor, labels: Tensor, train: Tensor, keep: Tensor, operations: Sequence[str]
                ) -> tuple[Tensor, Tensor]:
    """(restricted loss on every pair, excluded loss on the training pairs) with the frequencies ``keep``; NaN for
    an operation without waves."""
    restricted = torch.full((logits.shape[0],), float("nan"), dtype=torch.float64)
    excluded = restricted.clone()
    everywhere = torch.ones_like(train, dtype=torch.float64)
    for i, op in enumerate(operations):
        if op in WAVE_SIGN:
            x = logits[i:i + 1].double()
            s = WAVE_SIGN[op]
            restricted[i] = cross_entropy(fourier.restricted_logits(x, keep[i:i + 1], s), labels[i:i + 1],
                                          everywhere[i:i + 1])[0]
            excluded[i] = cross_entropy(fourier.excluded_logits(x, keep[i:i + 1], s), labels[i:i + 1],
                                        train[i:i + 1].double())[0]
    return restricted, excluded


@torch.no_grad()
def grok_evaluate(cfgs: Sequence[ExperimentConfig], t: dict[str, Tensor]) -> dict[str, Tensor]:
    """The metrics of a checkpoint (``METRICS``), each (instances,) float64:

    ``train_loss`` / ``test_loss`` (float64 cross entropy on the instance's own split), ``train_acc`` / ``test_acc``;
    ``weight_norm`` (sum of squared weights); ``embed_gini`` and ``logit_gini`` (Gini coefficient of the norms of the
    Fourier components of the embedding and of W_L); ``n_key_freqs`` and ``top_freq`` (the embedding's key
    frequencies: how many, and the strongest); ``restricted_loss`` / ``excluded_loss`` with those key frequencies;
    ``neuron_fve`` (mean over neurons of the share of variance their best frequency explains) and
    ``neurons_explained`` (the share of neurons above ``fourier.NEURON_EXPLAINED``).
    """
    t = {k: v.float() for k, v in t.items()}
    train = torch.stack([train_mask(c) for c in cfgs])
    test = ~train
    ops = [c.grokking.operation for c in cfgs]
    keep = key_mask(t)
    freq_norms = fourier.frequency_norms(fourier.component_norms(embedding(t).double()))
    out: dict[str, Tensor] = {name: torch.zeros(len(cfgs), dtype=torch.float64) for name in METRICS}
    for i in range(len(cfgs)):  # one instance at a time: its neurons over every pair are the largest tensor
        one = from_tensors({k: v[i:i + 1] for k, v in t.items()}, cfgs[i:i + 1])
        logits, labels, neurons = all_outputs(one)
        correct = (logits.argmax(-1) == labels).double()
        tr, te = train[i:i + 1].double(), test[i:i + 1].double()
        out["train_loss"][i], out["test_loss"][i] = cross_entropy(logits, labels, tr)[0], cross_entropy(
            logits, labels, te)[0]
        out["train_acc"][i] = (correct * tr).sum() / tr.sum().clamp(min=1)
        out["test_acc"][i] = (correct * te).sum() / te.sum().clamp(min=1)
        r, e = wave_losses(logits, labels, train[i:i + 1], keep[i:i + 1], ops[i:i + 1])
        out["restricted_loss"][i], out["excluded_loss"][i] = r[0], e[0]
        _, share = fourier.neuron_frequencies(neurons[0])
        out["neuron_fve"][i] = share.double().mean()
        out["neurons_explained"][i] = (share > fourier.NEURON_EXPLAINED).double().mean()
    out["weight_norm"] = weight_norm(t)
    out["embed_gini"] = fourier.gini(fourier.component_norms(embedding(t).double()))
    out["logit_gini"] = fourier.gini(fourier.component_norms(neuron_logit_map(t).double()))
    out["n_key_freqs"] = keep.sum(-1).double()
    out["top_freq"] = (freq_norms.argmax(-1) + 1).double()
    return out


def is_transformer(t: dict[str, Tensor]) -> bool:
    return set(GrokTransformer.param_names) <= set(t)
