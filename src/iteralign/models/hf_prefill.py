"""Generation over a shared prompt prefix: the prefix is prefilled once and its key/value cache reused by the batch.

The judge's prompts all open with the same system message (policy text, constitution, few-shot pairs): in the
default run about two thirds of every judge prompt is that preamble. Left-padded batching reads it once per row;
here it is read once per batch:

    row i:  [shared prefix][pad ... pad][rest of prompt i]     attention mask 0 on the pads

The prefix's cache (computed with batch size 1) is copied to every row and decoding (``hf_decode``) continues from
it; the position ids derived from the attention mask skip the pads, so every token keeps the position it has in its
own unpadded prompt. Greedy float32 outputs equal the plain batched path (tests/test_hf_prefill.py).
Used only when the common prefix is at least ``MIN_SHARED_PREFIX`` tokens and the batch has two or more prompts.
"""

from __future__ import annotations

from typing import Any

#: Below this many shared tokens the extra forward pass is not worth it (chat templates alone share ~10-30).
MIN_SHARED_PREFIX = 64


def common_prefix_len(seqs: list, minimum: int) -> int:
    """Length of the longest token prefix common to all ``seqs`` that leaves each at least one token of its own
    (it predicts what follows), or 0 when that is shorter than ``minimum``. Shared with scoring (``hf_prefix``)."""
    first, limit = seqs[0], min(len(s) for s in seqs) - 1
    n = 0
    while n < limit and all(s[n] == first[n] for s in seqs):
        n += 1
    return n if n >= minimum else 0


def shared_prefix_len(prompts: list[list[int]]) -> int:
    """Length of the common token prefix of all prompts (each keeps >= 1 own token), or 0 if not worth sharing."""
    return common_prefix_len(prompts, MIN_SHARED_PREFIX) if len(prompts) >= 2 else 0


def prefix_kv(model: Any, prefix: list[int] | tuple[int, ...]) -> list[tuple[Any, Any]]:
    """Per-layer (keys, values) of ``prefix`` run once at batch size 1."""
    import torch

    with torch.inference_mode():
        out = model(input_ids=torch.tensor([list(prefix)], device=model.device), use_cache=True, logits_to_keep=1)
    return [(layer.keys, layer.values) for layer in out.cache.layers]


def batch_cache(kv: list[tuple[Any, Any]], batch: int, cache: Any = None) -> Any:
    """A cache holding ``kv`` for each of ``batch`` rows. Without ``cache``: a ``DynamicCache`` of broadcast views
    (read-only use: scoring). Given an empty ``cache`` to fill (generation appends to each row's cache), the prefix is
    copied into it row by row (``hf_decode.PreallocatedLayer`` copies straight into its buffers)."""
    from transformers import DynamicCache

    cache = DynamicCache() if cache is None else cache
    for idx, (keys, values) in enumerate(kv):
        cache.update(keys.expand(batch, -1, -1, -1), values.expand(batch, -1, -1, -1), idx)
    return cache


def prefix_inputs(model: Any, pad_id: int, prompts: list[list[int]], n: int, cache: Any) -> dict[str, Any]:
    """Decoding inputs: ids ``[prefix | pads | tail]``, the attention mask and ``cache`` filled with the prefix."""
    import torch

    prefix = prompts[0][:n]
    cache = batch_cache(prefix_kv(model, prefix), len(prompts), cache)
    tails = [p[n:] for p in prompts]
    width = max(len(t) for t in tails)
    ids = [prefix + [pad_id] * (width - len(t)) + t for t in tails]
    mask = [[1] * n + [0] * (width - len(t)) + [1] * len(t) for t in tails]
    return {"input_ids": torch.tensor(ids, device=model.device),
            "attention_mask": torch.tensor(mask, device=model.device), "cache": cache}
