"""Generation's prefill with the prefixes its prompts share read once: a tree of shared prefixes, packed in one row.

The judge's prompts all open with the same system message (policy text, constitution, few-shot pairs), and the
reviser's open with the principles chosen for each failure, which many failures of one iteration share (35% of the
reviser's prompt tokens on the 0.5B runs' iterations, 22-31% within the stage's batches). Left-padded batching reads
every row whole. Here the rows of a batch are laid out as training lays out its rows (``shared_prefix.layout``): each
row after the longest prefix it shares with an earlier row of the batch, all in one packed row, its positions
continuing after the shared part; one forward pass attends each span over its parent's keys and values and its own
(``segment_attention``). Each row's keys and values are then assembled (the parent's for the shared positions, its
own after them) into the decoding cache, left-padded:

    row i:  [pad ... pad][prompt i minus its last token]  in the cache; its last token is decode's first input

and decoding (``hf_decode``) continues from it; the position ids derived from the attention mask skip the pads, so
every token keeps the position it has in its own unpadded prompt. Greedy float32 outputs equal one-at-a-time
generation (tests/test_hf_prefill.py). Used when the batch's rows share at least ``MIN_SHARED_PREFIX`` tokens in all.

Scoring reads one prefix common to all its rows instead (``common_prefix_len``, ``prefix_kv``, ``batch_cache``: run
once, broadcast read-only to every row; ``hf_prefix``, ``hf_labels``).
"""

from __future__ import annotations

from typing import Any

#: Below this many shared tokens in a batch, the plain padded prefill (chat templates alone share ~10-30 per row).
MIN_SHARED_PREFIX = 64


def common_prefix_len(seqs: list, minimum: int) -> int:
    """Length of the longest token prefix common to all ``seqs`` that leaves each at least one token of its own
    (it predicts what follows), or 0 when that is shorter than ``minimum`` (scoring, ``hf_prefix``)."""
    first, limit = seqs[0], min(len(s) for s in seqs) - 1
    n = 0
    while n < limit and all(s[n] == first[n] for s in seqs):
        n += 1
    return n if n >= minimum else 0


def prefix_kv(model: Any, prefix: list[int] | tuple[int, ...]) -> list[tuple[Any, Any]]:
    """Per-layer (keys, values) of ``prefix`` run once at batch size 1."""
    import torch

    with torch.inference_mode():
        out = model(input_ids=torch.tensor([list(prefix)], device=model.device), use_cache=True, logits_to_keep=1)
    return [(layer.keys, layer.values) for layer in out.cache.layers]


def batch_cache(kv: list[tuple[Any, Any]], batch: int) -> Any:
    """A ``DynamicCache`` holding ``kv`` for each of ``batch`` rows as broadcast views (read-only use: scoring)."""
    from transformers import DynamicCache

    cache = DynamicCache()
    for idx, (keys, values) in enumerate(kv):
        cache.update(keys.expand(batch, -1, -1, -1), values.expand(batch, -1, -1, -1), idx)
    return cache


def tree_inputs(model: Any, pad_id: int, prompts: list[list[int]], capacity: int) -> dict[str, Any] | None:
    """Decoding inputs for ``prompts`` (left-padded ids, attention mask, and a cache of ``capacity`` positions that
    holds every prompt but its last token), their shared prefixes run once; None where that does not apply (one
    prompt, fewer than ``MIN_SHARED_PREFIX`` shared tokens, a model whose attention cannot be switched)."""
    import torch

    from iteralign.models.hf_decode import full_attention, new_cache
    from iteralign.models.segment_attention import segments_on
    from iteralign.models.shared_prefix import layout, whole

    heads = [p[:-1] for p in prompts]  # the last token of each prompt is read by decode's first step
    if len(prompts) < 2 or min(map(len, heads)) == 0 or not full_attention(model):
        return None
    width = max(map(len, heads))
    ids = torch.full((len(heads), width), pad_id, dtype=torch.long)
    for r, head in enumerate(heads):
        ids[r, : len(head)] = torch.tensor(head)
    plan = layout(ids, torch.arange(width)[None] < torch.tensor([len(h) for h in heads])[:, None])
    if sum(span.shared for span in plan.spans) < MIN_SHARED_PREFIX:
        return None
    dev = model.device
    with segments_on(model) as switched, torch.inference_mode():
        if not switched:
            return None
        out = model(input_ids=plan.ids.to(dev), position_ids=plan.positions.to(dev), segment_tree=plan.spans,
                    use_cache=True, logits_to_keep=1)
    cache = new_cache(model, capacity)
    for idx, layer in enumerate(out.cache.layers):
        cache.update(_left_padded(whole(plan.spans, layer.keys, 2), width),
                     _left_padded(whole(plan.spans, layer.values, 2), width), idx)
    pads = [width - len(h) for h in heads]
    return {"input_ids": torch.tensor([[pad_id] * n + p for n, p in zip(pads, prompts)], device=dev),
            "attention_mask": torch.tensor([[0] * n + [1] * len(p) for n, p in zip(pads, prompts)], device=dev),
            "cache": cache}


def _left_padded(rows: list[Any], width: int) -> Any:
    """Per-row ``(1, heads, length, dim)`` tensors as one ``(rows, heads, width, dim)``, zeros on the left."""
    import torch

    return torch.cat([torch.nn.functional.pad(r, (0, 0, width - r.shape[2], 0)) for r in rows])
