"""Forward passes that compute only what a reward model needs.

The judge needs two logits (the verdict tokens) at one position per row, not a vocabulary's
worth at every position: we run the decoder, pick each row's last real hidden state and
multiply by the two rows of the output embedding. The BT model needs one scalar per row: the
same last hidden state through its value head. Rows are right-padded, so with causal attention
a row's real tokens never see padding and the result does not depend on the batch.
"""

from __future__ import annotations

import functools
import inspect

import torch


def decoder_of(model):
    """The transformer body of a causal LM or sequence classifier (PEFT-wrapped or not)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if hasattr(base, "get_decoder") and base.get_decoder() is not None and base.get_decoder() is not base:
        return base.get_decoder()
    return getattr(base, base.base_model_prefix)


def cache_keyword(module) -> str:
    """The name `module.forward` takes a key/value cache by: `cache` from transformers 5.x's rename
    on, `past_key_values` before it (the old name only warns until 5.40 and is then dropped, when a
    prefix cache passed by it would be swallowed by **kwargs and the rows scored without their prefix).
    Read from the class, once per class: an instance's forward may be a (*args, **kwargs) wrapper
    (accelerate's device hooks) that hides the real signature."""
    return _cache_keyword_of(type(module))


@functools.lru_cache(maxsize=None)
def _cache_keyword_of(cls) -> str:
    return "cache" if "cache" in inspect.signature(cls.forward).parameters else "past_key_values"


def last_hidden(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, past_key_values=None) -> torch.Tensor:
    """(B, H): the hidden state at each row's last real token (rows right-padded).

    No padding mask is passed to the model: with right padding and causal attention a real
    token never attends to the padding after it, so the mask changes nothing we read, and
    without it attention takes the fused causal path (~1.3x faster on long rows here).
    """
    decoder = decoder_of(model)
    out = decoder(input_ids=input_ids, use_cache=past_key_values is not None,
                  **{cache_keyword(decoder): past_key_values})
    return last_positions(out.last_hidden_state, attention_mask[:, -input_ids.shape[1]:])


def last_positions(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, H) from (B, T, H): each right-padded row's last real position."""
    positions = attention_mask.sum(dim=1) - 1
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), positions]


def candidate_logits(model, hidden: torch.Tensor, token_ids: torch.Tensor) -> torch.Tensor:
    """(B, K) logits of the K candidate tokens from (B, H) hidden states."""
    head = model.get_output_embeddings()
    weight = head.weight[token_ids]  # (K, H)
    # In fp32 whatever the model's precision: verdict logits are large (~20) and their gap small,
    # and a bf16 result (8-bit mantissa) would round the gap to steps of 0.125 — P(A) could then
    # only take a handful of values. Two rows of the head cost nothing in fp32.
    bias = head.bias[token_ids] if getattr(head, "bias", None) is not None else None
    return _fp32_linear(hidden, weight, bias)


def _fp32_linear(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """hidden @ weight.T (+ bias) in fp32, also inside a bf16 autocast region."""
    with torch.autocast(device_type=hidden.device.type, enabled=False):
        out = hidden.float() @ weight.float().T
        return out if bias is None else out + bias.float()


def value_head_of(model):
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    for name in ("score", "classifier", "v_head"):
        if hasattr(base, name):
            return getattr(base, name)
    raise AttributeError(f"{type(base).__name__} has no value head (score/classifier)")


def value_rewards(model, hidden: torch.Tensor) -> torch.Tensor:
    """(B,) the value head on (B, H) hidden states, in fp32 (see candidate_logits)."""
    head = value_head_of(model)
    return _fp32_linear(hidden, head.weight, getattr(head, "bias", None)).squeeze(-1)
