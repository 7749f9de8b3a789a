"""One trained transformer instance as TransformerLens' ``HookedTransformer`` (the optional ``transformer-lens``
package): the same weights in its layout, its forward pass giving the same logits (tests/families/grokking).

Example:
    >>> model = tm.load("runs/GROK-quick").model("r0000")          # doctest: +SKIP
    >>> lens = to_hooked_transformer(model)                         # doctest: +SKIP
    >>> logits, cache = lens.run_with_cache(torch.tensor([[3, 5, 113]]))   # doctest: +SKIP
    >>> cache["blocks.0.mlp.hook_post"].shape                       # doctest: +SKIP
    torch.Size([1, 3, 512])
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor

from toymodels.families.grokking.model import GrokTransformer

#: our parameter -> TransformerLens' state-dict key (the layouts agree: heads first, d_model x d_head, ...)
TL_KEYS = {"W_E": "embed.W_E", "W_pos": "pos_embed.W_pos", "W_Q": "blocks.0.attn.W_Q", "W_K": "blocks.0.attn.W_K",
           "W_V": "blocks.0.attn.W_V", "W_O": "blocks.0.attn.W_O", "W_in": "blocks.0.mlp.W_in",
           "b_in": "blocks.0.mlp.b_in", "W_out": "blocks.0.mlp.W_out", "b_out": "blocks.0.mlp.b_out",
           "W_U": "unembed.W_U"}


def lens_config(model: GrokTransformer) -> dict[str, Any]:
    """The ``HookedTransformerConfig`` arguments of the paper's model: one layer, no LayerNorm, ReLU, vocabulary
    P + 1 in and P out, three positions."""
    d_model = model.W_E.shape[-1]
    return {"n_layers": 1, "d_model": d_model, "n_heads": model.n_heads, "d_head": model.W_Q.shape[-1],
            "d_mlp": model.W_in.shape[-1], "d_vocab": model.P + 1, "d_vocab_out": model.P, "n_ctx": 3,
            "act_fn": "relu", "normalization_type": None, "attn_only": False,
            "positional_embedding_type": "standard", "dtype": model.W_E.dtype}


def to_hooked_transformer(model: Any, instance: int = 0) -> Any:
    """A ``transformer_lens.HookedTransformer`` holding one instance's weights: ``model`` is what
    ``Results.model(run_id)`` returns (its ``inner`` module is used) or a ``GrokTransformer`` with ``instance``.
    Attention and unembedding biases are 0 (the paper's model has none). Its logits at the last position are this
    family's logits."""
    # deferred: transformer-lens is an optional dependency, needed only for this conversion
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    inner = getattr(model, "inner", model)
    if not isinstance(inner, GrokTransformer):
        raise TypeError(f"to_hooked_transformer: needs a grokking transformer (grok_arch=transformer), got "
                        f"{type(inner).__name__}")
    with warnings.catch_warnings():  # TransformerLens 3 announces HookedTransformer's successor; it still works
        warnings.simplefilter("ignore", DeprecationWarning)
        lens = HookedTransformer(HookedTransformerConfig(**lens_config(inner)))
    state = lens.state_dict()
    with torch.no_grad():
        for name, key in TL_KEYS.items():
            state[key].copy_(getattr(inner, name)[instance])
        for key in state:
            if key.rsplit(".", 1)[-1] in ("b_Q", "b_K", "b_V", "b_O", "b_U"):
                state[key].zero_()
    return lens.eval()


def weights_from_lens(lens: Any) -> dict[str, Tensor]:
    """The reverse: a one-layer ``HookedTransformer``'s weights as this family's tensors, instance axis of size 1
    (its attention and unembedding biases must be 0: the paper's model has none)."""
    state = lens.state_dict()
    biases = [k for k in state if k.rsplit(".", 1)[-1] in ("b_Q", "b_K", "b_V", "b_O", "b_U")]
    if any(bool(state[k].abs().max() > 0) for k in biases):
        raise ValueError("weights_from_lens: the paper's model has no attention or unembedding biases; these are "
                         "not zero: " + ", ".join(k for k in biases if bool(state[k].abs().max() > 0)))
    return {name: state[key].detach().clone()[None] for name, key in TL_KEYS.items()}
