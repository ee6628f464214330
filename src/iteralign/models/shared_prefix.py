"""Prefixes that the rows of a batch share, run through the model once: in training and in generation's prefill.

A DPO batch holds every prompt twice (the chosen row and the rejected row are prompt + answer), and the rows of
any batch open with the same chat-template header (the system message). Under causal attention a token's hidden
states depend only on the tokens before it, so a prefix two rows share can be run once: ``layout`` gives each row of
a padded batch a *parent*, the earlier row with which it shares the longest prefix (at least ``MIN_SHARED`` tokens),
and lays only the rest of the row in the packed row, its positions continuing after the shared part;
``segment_attention`` attends such a span over its parent's keys and values for the shared positions (the parent's
own parent's for theirs, and so on) and over its own after them; ``rows`` lays the hidden states back in the batch's
shape. The values are those of running every row whole (tests/test_sft_loss.py); on the DPO pairs of the 0.5B runs
a quarter fewer tokens go through the model (BENCHMARKS.md, "Prefixes run once in DPO and SFT"). Generation
(``hf_prefill``) lays out its prompts the same way: the reviser's prompts share their principle blocks.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch

#: Shorter common prefixes are not worth a span of their own (each span is one attention call per layer).
MIN_SHARED = 8


class Span(NamedTuple):
    """One row of the batch in the packed row: tokens ``start:end`` there are its positions ``shared`` onwards; its
    first ``shared`` positions are those of row ``parent`` (-1: none, ``shared`` is then 0)."""

    start: int
    end: int
    parent: int
    shared: int


class Layout(NamedTuple):
    ids: Any  # (1, packed length): each row's own tokens, rows in batch order
    positions: Any  # (1, packed length)
    spans: list[Span]  # one per row of the batch


def common_prefix(a: Any, b: Any) -> int:
    """The number of leading tokens two 1-D id tensors share."""
    n = min(a.shape[0], b.shape[0])
    differ = (a[:n] != b[:n]).nonzero()
    return int(differ[0]) if differ.numel() else n


def layout(input_ids: Any, keep: Any) -> Layout:
    """The packed row of a padded batch (``keep``: its attention mask, as booleans): each row's tokens after the
    prefix it shares with its parent. Every row keeps at least its last token, so that only a row that is all padding
    has an empty span."""
    seqs = [input_ids[r][keep[r]] for r in range(input_ids.shape[0])]
    spans, own, positions, start = [], [], [], 0
    for r, tokens in enumerate(seqs):
        parent, shared = -1, 0
        for q in range(r):
            k = min(common_prefix(tokens, seqs[q]), tokens.shape[0] - 1)
            if k > shared:
                parent, shared = q, k
        if shared < MIN_SHARED:
            parent, shared = -1, 0
        n = tokens.shape[0] - shared
        spans.append(Span(start, start + n, parent, shared))
        own.append(tokens[shared:])
        positions.append(torch.arange(shared, tokens.shape[0], device=tokens.device))
        start += n
    return Layout(torch.cat(own)[None], torch.cat(positions)[None], spans)


def whole(spans: list[Span], packed: Any, dim: int) -> list[Any]:
    """Per row, ``packed`` (a tensor over the packed row along ``dim``) extended to the whole row: the parent's
    values for the shared positions, the span's own after them."""
    out: list[Any] = []
    for s in spans:
        mine = packed.narrow(dim, s.start, s.end - s.start)
        out.append(mine if s.parent < 0 else torch.cat([out[s.parent].narrow(dim, 0, s.shared), mine], dim))
    return out


def rows(plan: Layout, hidden: Any, keep: Any) -> Any:
    """The packed row's hidden states (packed length x hidden) laid back in the batch's shape, zeros at padding."""
    full = torch.cat(whole(plan.spans, hidden, 0))
    return full.new_zeros(*keep.shape, full.shape[-1]).masked_scatter(keep[..., None], full)
