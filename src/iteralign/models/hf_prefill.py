"""Generation over a shared prompt prefix: the prefix is prefilled once and its key/value cache reused by the batch.

The judge's prompts all open with the same system message (policy text, constitution, few-shot pairs): in the
default run about two thirds of every judge prompt is that preamble. Left-padded batching reads it once per row;
here it is read once per batch:

    row i:  [shared prefix][pad ... pad][rest of prompt i]     attention mask 0 on the pads

The prefix's cache (computed with batch size 1) is copied to every row and ``generate`` continues from it; the
position ids transformers derives from the attention mask skip the pads, so every token keeps the position it has
in its own unpadded prompt. Greedy float32 outputs equal the plain batched path (tests/test_hf_prefill.py).
Used only when the common prefix is at least ``MIN_SHARED_PREFIX`` tokens and the batch has two or more prompts.
"""

from __future__ import annotations

from typing import Any

#: Below this many shared tokens the extra forward pass is not worth it (chat templates alone share ~10-30).
MIN_SHARED_PREFIX = 64


def shared_prefix_len(prompts: list[list[int]]) -> int:
    """Length of the common token prefix of all prompts (each keeps >= 1 own token), or 0 if not worth sharing."""
    if len(prompts) < 2:
        return 0
    first, limit = prompts[0], min(len(p) for p in prompts) - 1
    n = 0
    while n < limit and all(p[n] == first[n] for p in prompts):
        n += 1
    return n if n >= MIN_SHARED_PREFIX else 0


def prefix_inputs(model: Any, pad_id: int, prompts: list[list[int]], n: int) -> dict[str, Any]:
    """``generate`` keyword arguments: ids ``[prefix | pads | tail]``, the attention mask and the prefix's cache."""
    import torch
    from transformers import DynamicCache

    prefix = prompts[0][:n]
    with torch.inference_mode():
        out = model(input_ids=torch.tensor([prefix], device=model.device), use_cache=True, logits_to_keep=1)
    batch = len(prompts)
    cache = DynamicCache()
    for idx, layer in enumerate(out.cache.layers):  # a real copy per row: generation appends to each row's cache
        cache.update(layer.keys.expand(batch, -1, -1, -1).contiguous(),
                     layer.values.expand(batch, -1, -1, -1).contiguous(), idx)
    tails = [p[n:] for p in prompts]
    width = max(len(t) for t in tails)
    ids = [prefix + [pad_id] * (width - len(t)) + t for t in tails]
    mask = [[1] * n + [0] * (width - len(t)) + [1] * len(t) for t in tails]
    return {"input_ids": torch.tensor(ids, device=model.device),
            "attention_mask": torch.tensor(mask, device=model.device), "cache": cache}
