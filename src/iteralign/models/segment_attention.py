"""Attention over a packed row, one sequence (or span) at a time: training without padding, prefills that share.

A padding-free batch (``sft_loss.unpad``, or TRL's packing) lays its sequences end to end in one row, with position
ids restarting at each. transformers' ``sdpa`` then attends over the whole row under a block-diagonal mask: work
quadratic in the row's length, most of it masked out, and on CPU the backward of SDPA's flash kernel with a mask
was the largest single cost of a LoRA step (24% of bf16 SFT time in the profile of BENCHMARKS.md). Here each
sequence of the row is attended on its own (causal SDPA, grouped-query heads without copies, in float32, whose CPU
kernel ran forward + backward in 14 ms where bf16 took 22 and the masked row 29: bench note in BENCHMARKS.md): the
same result, without the masked blocks. A row laid out by ``shared_prefix.layout`` comes with its spans
(``segment_tree``): a span that continues an earlier row's prefix attends over that row's keys and values for the
shared positions and its own after them (training's shared prefixes, and generation's prefill in ``hf_prefill``).
Anything else (several rows, a cache, one sequence) goes to transformers' ``sdpa``.

``use_segment_attention(model)`` registers the function under ``NAME`` with transformers' ``AttentionInterface``
(masks built as for ``sdpa``) and switches a model that uses ``sdpa`` to it (training); ``segments_on(model)`` does
so only for the calls inside a ``with`` block (generation, whose scoring path packs rows under its own 4D masks).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

NAME = "iteralign_segments"


def segments(position_ids: Any) -> list[tuple[int, int]]:
    """``(start, end)`` of each sequence of a packed row: a new one wherever the position does not grow by 1."""
    import torch

    pos = position_ids[0]
    starts = (torch.diff(pos, prepend=pos[:1] - 2) != 1).nonzero().flatten().tolist()
    return list(zip(starts, starts[1:] + [pos.shape[0]]))


def segment_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, dropout: float = 0.0,
                      scaling: float | None = None, **kwargs) -> tuple[Any, None]:
    """transformers attention-function signature: ``(B, heads, L, dim)`` in, ``(B, L, heads, dim)`` out."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    from iteralign.models.shared_prefix import Span

    tree = kwargs.pop("segment_tree", None)
    if tree is not None:
        return _tree_attention(module, query, key, value, tree, dropout, scaling)
    position_ids = kwargs.get("position_ids")
    spans = None
    if position_ids is not None and query.shape[0] == 1 and query.shape[2] == key.shape[2] > 1:
        spans = segments(position_ids)
    if not spans or len(spans) == 1:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    roots = [Span(start, end, -1, 0) for start, end in spans]  # sequences laid end to end share nothing
    return _tree_attention(module, query, key, value, roots, dropout, scaling)


def _tree_attention(module: Any, query: Any, key: Any, value: Any, tree: list, dropout: float,
                    scaling: float | None) -> tuple[Any, None]:
    """Attention over a packed row, span by span: each span's queries over its parent's keys and values for the
    shared positions (all visible) and its own (causal); a span without a parent over its own only."""
    import torch

    from iteralign.models.shared_prefix import whole

    q, k, v = query, key, value
    if query.device.type == "cpu":  # CPU's flash kernel: float32 forward + backward ~1.5x faster than bf16
        q, k, v = query.float(), key.float(), value.float()
    gqa = getattr(module, "num_key_value_groups", 1) > 1
    keys, values = whole(tree, k, 2), whole(tree, v, 2)
    outs = []
    for span, ks, vs in zip(tree, keys, values):
        n = span.end - span.start
        if n == 0:  # a row that is all padding
            continue
        mask = None if span.parent < 0 else torch.ones(n, span.shared + n, dtype=torch.bool,
                                                        device=q.device).tril(span.shared)
        outs.append(torch.nn.functional.scaled_dot_product_attention(
            q[:, :, span.start:span.end], ks, vs, attn_mask=mask, dropout_p=dropout, scale=scaling,
            is_causal=mask is None, enable_gqa=gqa))
    return torch.cat(outs, dim=2).to(query.dtype).transpose(1, 2).contiguous(), None


def use_segment_attention(model: Any) -> bool:
    """Switch ``model`` (its base causal LM under PEFT) from ``sdpa`` to ``NAME``; False if it uses another kernel."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    base = _base(model)
    impl = getattr(base.config, "_attn_implementation", None)
    if impl == NAME:
        return True
    if impl != "sdpa":
        return False
    AttentionInterface.register(NAME, segment_attention)
    AttentionMaskInterface.register(NAME, sdpa_mask)
    base.set_attn_implementation(NAME)
    return base.config._attn_implementation == NAME


@contextmanager
def segments_on(model: Any) -> Iterator[bool]:
    """``model`` attends with ``NAME`` inside the block and with its own kernel again after it; yields False (and
    changes nothing) for a model that uses neither ``sdpa`` nor ``NAME``. The switch is the model's, not the call's:
    a local backend's calls run one at a time (``iteralign serve`` gives the model to one worker thread)."""
    base = _base(model)
    impl = getattr(base.config, "_attn_implementation", None)
    if impl == NAME or not use_segment_attention(model):
        yield impl == NAME
        return
    try:
        yield True
    finally:
        base.set_attn_implementation(impl)


def _base(model: Any) -> Any:
    """The causal LM itself, under a PEFT wrapper or not."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model
