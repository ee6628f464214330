"""Log-likelihood scoring that reads each shared context once: packed choices over a cached common prefix.

Multiple-choice benchmarks score several continuations of one context, and TruthfulQA puts the same 6-shot
preamble before all 817 questions. Scoring every (context, continuation) as its own sequence, as
lm-evaluation-harness does, spends most of the compute re-reading the preamble and the question. Here:

1. the longest token prefix common to all contexts of the call (the preamble) runs once; its key/value cache is
   reused by every batch;
2. each distinct context is packed with all of its continuations into one sequence, under a 4D attention mask in
   which every continuation sees the prefix, the context and itself but not the other continuations, with
   position ids restarting after the context for each continuation.

A context with its continuations is a tree, like the shared prefixes that training and generation's prefill lay out
(``shared_prefix.layout``, attended span by span by ``segment_attention``). Scoring keeps its mask instead: span
attention is one attention call per span and layer, and TruthfulQA's MC1 + MC2 are 10,390 short continuations (some
310,000 calls on a 30-layer model) where the mask is one call per batch; and the preamble's cache, shared by every
batch of the call, has no place in a per-batch tree.

Token ids come from ``hf_scoring.encode_pair``, so the scores are those of ``hf_scoring.score_requests``
(lm-eval's tokenization) up to float rounding; tests/test_hf_prefix.py checks this on the real 135M model.
Falls back to ``score_requests`` for attention kernels that ignore custom 4D masks (flash-attention) and for
sequences longer than the model's context.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from iteralign.models.hf_prefill import batch_cache, common_prefix_len, prefix_kv
from iteralign.models.hf_scoring import _max_length, encode_pair, score_requests, token_batches
from iteralign.types import LoglikelihoodRequest

#: Shorter common prefixes are not worth a separate cache (HHH shares only "\nHuman:").
MIN_SHARED_PREFIX = 8
_MASKABLE = ("sdpa", "eager")


@dataclass
class _Group:
    """One distinct context (after the shared prefix) and its continuations ``(request index, token ids)``."""

    context: list[int]
    continuations: list[tuple[int, list[int]]]

    def tokens(self) -> list[int]:
        out = list(self.context)
        for _, cont in self.continuations:
            out += cont[:-1]  # the last continuation token is predicted, never read
        return out


def score_requests_shared(model: Any, tokenizer: Any, requests: list[LoglikelihoodRequest],
                          batch_size: int) -> list[float]:
    """Sum of log-probs of each continuation given its context; identical to ``score_requests`` in value."""
    if getattr(model.config, "_attn_implementation", "sdpa") not in _MASKABLE:
        return score_requests(model, tokenizer, requests, batch_size)
    by_context: dict[tuple[int, ...], list[tuple[int, list[int]]]] = {}
    for i, r in enumerate(requests):
        context, cont = encode_pair(tokenizer, r.context, r.continuation)
        if cont:  # an empty continuation scores 0
            by_context.setdefault(tuple(context), []).append((i, cont))
    scores = [0.0] * len(requests)
    if not by_context:
        return scores
    shared = _common_prefix(list(by_context))
    groups = [_Group(list(ctx[len(shared):]), conts) for ctx, conts in by_context.items()]
    if len(shared) + max(len(g.tokens()) for g in groups) > _max_length(model, tokenizer):
        return score_requests(model, tokenizer, requests, batch_size)
    kv = prefix_kv(model, shared) if shared else None
    groups.sort(key=lambda g: len(g.tokens()), reverse=True)
    for chunk in token_batches([len(g.tokens()) for g in groups], batch_size):
        for i, score in _score_packed(model, tokenizer, groups[chunk], len(shared), kv):
            scores[i] = score
    return scores


def _common_prefix(contexts: list[tuple[int, ...]]) -> tuple[int, ...]:
    """Longest common token prefix, leaving each context at least one token (it predicts the first answer token)."""
    return contexts[0][:common_prefix_len(contexts, MIN_SHARED_PREFIX)]


def _layout(batch: list[_Group], prefix_len: int, dtype: Any):
    """Left-padded ids, position ids and the additive 4D mask ``(B, 1, L, prefix + L)`` for packed groups."""
    import torch

    width = max(len(g.tokens()) for g in batch)
    ids = torch.zeros((len(batch), width), dtype=torch.long)
    pos = torch.zeros_like(ids)
    allowed = torch.zeros((len(batch), 1, width, prefix_len + width), dtype=torch.bool)
    allowed[..., :prefix_len] = True
    for b, g in enumerate(batch):
        tokens = g.tokens()
        off, c = width - len(tokens), len(g.context)
        ids[b, off:] = torch.tensor(tokens)
        diag = torch.arange(width)
        allowed[b, 0, diag, prefix_len + diag] = True  # every row (padding too) sees itself: no empty rows
        spans = [(off, c, prefix_len)]  # (start column, length, first position id)
        s = off + c
        for _, cont in g.continuations:
            spans.append((s, len(cont) - 1, prefix_len + c))
            s += len(cont) - 1
        for k, (start, n, first) in enumerate(spans):
            pos[b, start:start + n] = first + torch.arange(n)
            rows = slice(start, start + n)
            allowed[b, 0, rows, prefix_len + start:prefix_len + start + n] |= torch.ones(n, n, dtype=torch.bool).tril()
            if k:  # a continuation also sees the whole context
                allowed[b, 0, rows, prefix_len + off:prefix_len + off + c] = True
    mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)
    return ids, pos, mask


def _score_packed(model: Any, tokenizer: Any, batch: list[_Group], prefix_len: int,
                  kv: list[tuple[Any, Any]] | None) -> list[tuple[int, float]]:
    import torch

    ids, pos, mask = _layout(batch, prefix_len, model.dtype)
    width = ids.shape[1]
    # columns holding a prediction: from the last context token of the group that has the longest tail onwards
    keep = max(len(g.tokens()) - len(g.context) + 1 for g in batch)
    dev = model.device
    with torch.inference_mode():
        logits = model(input_ids=ids.to(dev), position_ids=pos.to(dev), attention_mask=mask.to(dev),
                       cache=None if kv is None else batch_cache(kv, len(batch)), use_cache=kv is not None,
                       logits_to_keep=keep).logits
    base = width - keep  # column of kept index 0
    out = []
    for b, g in enumerate(batch):
        ctx_last = width - len(g.tokens()) + len(g.context) - 1
        s = ctx_last + 1
        for i, cont in g.continuations:
            cols = [ctx_last - base] + [s + k - base for k in range(len(cont) - 1)]
            # only the predicting columns, in float32: the whole batch's would be batch x keep x vocab x 4 bytes
            logprobs = torch.log_softmax(logits[b, cols].float(), dim=-1)
            picked = logprobs.gather(-1, torch.tensor(cont, device=logprobs.device)[:, None])
            out.append((i, float(picked.sum())))
            s += len(cont) - 1
    return out
