"""What a classifier reads from one forward pass: label-token log-probabilities, or a hidden state.

**Label log-probabilities.**
A classifier prompt ends where the model would write its answer (the chat template's generation prompt, or a
prefilled assistant turn such as ``"Label:"``). The log-probability of each label's *first token* at that position
is the model's vote for the label: no text is generated and nothing is parsed. Labels must differ in their first
token (``"refusal"`` / ``"compliance"`` / ``"partial"``, ``"A"`` / ``"B"``), which is checked.

Batches are left-padded with explicit position ids so every prompt ends in the last column and only that column is
projected to the vocabulary (``logits_to_keep=1``). A prefix common to every prompt of the call (the classifier's
instructions and few-shot examples) runs once and its key/value cache is shared by all batches, as in ``hf_prefix``.
Batched values equal one-at-a-time values to float rounding (tests/test_label_scores.py).

**Hidden states.** ``hidden_features`` returns the residual stream after given decoder layers, read one or several
ways (``pool``): at the prompt's last token (``last``: the generation cue, where the model has read the whole request
and is about to answer), or averaged (``mean``) or maximised per dimension (``max``) over the positions from ``skip``
on (a prompt's shared opening, whose first tokens carry outsized "attention sink" states, left out). These are the
features of the linear probes (``judging.linear_probe``). The forward pass stops after the deepest layer asked.
Given an ``opening`` (the judge's question with its blanks empty), each prompt runs alone after the part it shares
with the opening, whose keys and values are computed once: the verdict probe's question is about half instructions,
so its pass costs about half (1.8x on 53 tuned replies), and no prompt's features depend on the others in its call.
In bf16 the states differ from the whole pass's by rounding (a different summation order): the verdict probe's P
moved by 0.0002-0.002 on average over 608 labelled replies, at most 0.11, and no verdict changed (BENCHMARKS.md).
Short prompts (the intent probe's requests alone, a shared part of ~20 tokens) stay in padded batches, which are
faster there.
"""

from __future__ import annotations

from typing import Any, Literal, Sequence

from iteralign.models.hf_prefill import batch_cache, common_prefix_len, prefix_kv
from iteralign.models.hf_scoring import token_batches

#: A shared prefix shorter than this is not worth its own forward pass.
MIN_SHARED_PREFIX = 32


def label_token_ids(tokenizer: Any, labels: list[str]) -> list[int]:
    """The first token of each label as the tokenizer encodes it alone; an error when two labels share it."""
    if not labels:
        raise ValueError("label_logprobs needs at least one label")
    ids = []
    for label in labels:
        encoded = tokenizer(label, add_special_tokens=False).input_ids
        if not encoded:
            raise ValueError(f"label {label!r} encodes to no token")
        ids.append(encoded[0])
    clashes = [(a, b) for i, a in enumerate(labels) for j, b in enumerate(labels) if i < j and ids[i] == ids[j]]
    if clashes:
        raise ValueError(f"labels {clashes[0][0]!r} and {clashes[0][1]!r} start with the same token; choose label "
                         "words whose first tokens differ")
    return ids


def label_logprobs(model: Any, tokenizer: Any, prompts: list[list[int]], labels: list[str],
                   batch_size: int) -> list[dict[str, float]]:
    """Per prompt (token ids ending where the answer starts): ``{label: log-prob of its first token}``.

    The values are log-probabilities over the whole vocabulary (not renormalised over the labels), so a caller can
    also see how much probability the labels got at all.
    """
    ids = label_token_ids(tokenizer, labels)
    if not prompts:
        return []
    shared = common_prefix_len(prompts, MIN_SHARED_PREFIX) if len(prompts) > 1 else 0
    kv = prefix_kv(model, prompts[0][:shared]) if shared else None
    tails = [p[shared:] for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: len(tails[i]), reverse=True)
    out: list[dict[str, float]] = [{} for _ in prompts]
    for chunk in token_batches([len(tails[i]) + shared for i in order], batch_size):
        batch = order[chunk]
        rows = _last_logprobs(model, tokenizer.pad_token_id, [tails[i] for i in batch], shared, kv)
        for i, row in zip(batch, rows):
            out[i] = {label: float(row[t]) for label, t in zip(labels, ids)}
    return out


def _last_logprobs(model: Any, pad_id: int, tails: list[list[int]], shared: int, kv: Any) -> Any:
    """Log-softmax of the next-token logits after each ``prefix + tail`` (rows of a ``(batch, vocab)`` tensor)."""
    import torch

    width = max(len(t) for t in tails)
    ids = torch.tensor([[pad_id] * (width - len(t)) + t for t in tails])
    mask = torch.tensor([[1] * shared + [0] * (width - len(t)) + [1] * len(t) for t in tails])
    positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, shared:]
    dev = model.device
    with torch.inference_mode():
        logits = model(input_ids=ids.to(dev), attention_mask=mask.to(dev), position_ids=positions.to(dev),
                       cache=None if kv is None else batch_cache(kv, len(tails)), use_cache=kv is not None,
                       logits_to_keep=1).logits
    return torch.log_softmax(logits[:, -1].float(), dim=-1)


class _Stop(Exception):
    """Raised by a forward hook to end the forward pass once the wanted layer has run."""


#: How a probe reads a layer's states: at the last token, or pooled over the positions from ``skip`` on.
Pool = Literal["last", "mean", "max"]


def hidden_features(model: Any, tokenizer: Any, prompts: list[list[int]], layer: int | Sequence[int],
                    batch_size: int, pool: Sequence[Pool] = ("last",), skip: int = 0,
                    opening: list[int] | None = None, kept: dict[tuple, Any] | None = None) -> list[list[float]]:
    """Per prompt, float32 features from the output of decoder layer ``layer`` (1-based: ``hidden_states[layer]`` in
    transformers' numbering) or of several layers: for each way in ``pool`` (in order), the layers side by side (in the
    order given). ``mean`` and ``max`` read the prompt's positions from ``skip`` on (all of them when it is shorter);
    layers after the deepest are not run.

    Without ``opening`` the prompts run in left-padded batches. With it (token ids: the question's text before its
    first blank), each prompt runs alone, after the longest prefix it shares with ``opening`` (``opening_len``), whose
    keys and values are computed once (per call, or once for all calls that pass the same dict ``kept``, where they are
    kept by their tokens): a judge's instructions are read once instead of once per item, and no prompt's features
    depend on the rest of its call (no padding, and a shared part fixed by the prompt alone)."""
    wanted = [layer] if isinstance(layer, int) else list(layer)
    layers = model.get_decoder().layers
    if not wanted or not all(1 <= n <= len(layers) for n in wanted):
        raise ValueError(f"layer {layer} out of range: the model has {len(layers)} decoder layers")
    if not pool or any(way not in ("last", "mean", "max") for way in pool):
        raise ValueError(f"pool {list(pool)}: each must be one of last, mean, max")
    out: list[list[float]] = [[] for _ in prompts]
    if opening is None:
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]), reverse=True)
        with _LayerReader(model, wanted, pool, skip) as reader:
            for chunk in token_batches([len(prompts[i]) for i in order], batch_size):
                batch = order[chunk]
                enc = tokenizer.pad({"input_ids": [prompts[i] for i in batch]}, padding=True, padding_side="left",
                                    return_tensors="pt")
                for i, row in zip(batch, reader.read(enc["input_ids"], enc["attention_mask"])):
                    out[i] = row
        return out
    shared = [opening_len(ids, opening, skip if set(pool) - {"last"} else None) for ids in prompts]
    kvs = kept if kept is not None else {}
    for ids, n in zip(prompts, shared):
        if n and tuple(ids[:n]) not in kvs:
            kvs[tuple(ids[:n])] = prefix_kv(model, ids[:n])
    with _LayerReader(model, wanted, pool, skip) as reader:
        for i, (ids, n) in enumerate(zip(prompts, shared)):
            out[i] = reader.read_after(ids, n, kvs.get(tuple(ids[:n])))
    return out


def opening_len(ids: list[int], opening: list[int], skip: int | None = None) -> int:
    """How many of ``ids``' first tokens it shares with ``opening`` (``common_prefix_len``: each keeps at least one
    token of its own); for a pooled read (``skip`` given) at most ``skip`` tokens, and none when ``ids`` is no longer
    than ``skip`` (it is then pooled whole)."""
    if skip is not None and len(ids) <= skip:
        return 0
    shared = common_prefix_len([ids, opening], 0)
    return shared if skip is None else min(shared, skip)


class _LayerReader:
    """Forward hooks on the wanted decoder layers that keep each layer's states read as ``pool`` and stop the pass
    after the deepest one (pooled where the states are: only rows move)."""

    def __init__(self, model: Any, wanted: list[int], pool: Sequence[Pool], skip: int) -> None:
        self.model, self.wanted, self.pool, self.skip = model, wanted, list(pool), skip
        self.captured: dict[int, Any] = {}
        self.window: Any = None

    def __enter__(self) -> "_LayerReader":
        layers, deepest = self.model.get_decoder().layers, max(self.wanted)

        def hook_for(n: int) -> Any:
            def hook(_module: Any, _inputs: Any, output: Any) -> None:
                hidden = output[0] if isinstance(output, tuple) else output
                self.captured[n] = {way: _pooled(hidden, way, self.window).float().cpu() for way in set(self.pool)}
                if n == deepest:
                    raise _Stop
            return hook

        self.handles = [layers[n - 1].register_forward_hook(hook_for(n)) for n in sorted(set(self.wanted))]
        return self

    def __exit__(self, *exc: Any) -> None:
        for handle in self.handles:
            handle.remove()

    def read(self, ids: Any, mask: Any, cache: Any = None, start: int = 0) -> list[list[float]]:
        """The features of a batch of rows (left-padded ``ids`` and ``mask``), or of one unpadded row after
        ``cache`` (``start`` positions: no mask is passed, so rows after a cache must not be padded)."""
        import torch

        positions = (mask.cumsum(-1) - 1).clamp(min=0) + start
        self.captured.clear()
        dev = self.model.device
        self.window = _pool_window(mask, positions, self.skip).to(dev)
        try:
            with torch.inference_mode():
                self.model(input_ids=ids.to(dev), attention_mask=None if cache is not None else mask.to(dev),
                           position_ids=positions.to(dev), cache=cache, use_cache=cache is not None)
        except _Stop:
            pass
        rows = torch.cat([self.captured[n][way] for way in self.pool for n in self.wanted], dim=-1)
        return rows.tolist()

    def read_after(self, ids: list[int], shared: int, kv: Any) -> list[float]:
        """One prompt's features, its first ``shared`` tokens' keys and values ``kv`` (none when ``shared`` is 0)."""
        import torch

        tail = torch.tensor([ids[shared:]])
        cache = batch_cache(kv, 1) if shared else None
        return self.read(tail, torch.ones_like(tail), cache, shared)[0]


def _pool_window(mask: Any, positions: Any, skip: int) -> Any:
    """Which positions of each left-padded row ``mean`` and ``max`` read: the real tokens from position ``skip`` on,
    or all the real tokens of a row no longer than ``skip``."""
    window = mask.bool() & (positions >= skip)
    short = ~window.any(-1)
    return window | (short[:, None] & mask.bool())


def _pooled(hidden: Any, way: str, window: Any) -> Any:
    """One layer's ``(rows, positions, width)`` states read as ``way`` over ``window``: ``(rows, width)``; a mean is
    taken in float32."""
    if way == "last":
        return hidden[:, -1]
    if way == "mean":
        w = window[..., None].float()
        return (hidden.float() * w).sum(1) / w.sum(1)
    return hidden.masked_fill(~window[..., None], float("-inf")).amax(1)
