"""The decoding loop of the transformers backend: a pre-allocated key/value cache, and finished rows leave the batch.

``model.generate`` with its default ``DynamicCache`` appends each step's keys and values with ``torch.cat``: every
layer's whole cache is copied at every step (quadratic in the answer length; 16% of bf16 decoding time in the
profile of BENCHMARKS.md). And a row that has finished (end of turn, stop string) keeps being computed as padding
until the longest answer of its batch ends. Here:

* ``PreallocatedLayer`` writes each step into buffers allocated once for the prompt plus ``max_new_tokens`` and
  hands attention a view of the filled part: no copy of the past, no attention over unused slots (unlike
  transformers' ``StaticCache``, which attends over its whole length and is meant for ``torch.compile``);
* ``decode`` drops finished rows from the batch (inputs, mask and every layer's cache) as soon as they end, so a
  batch costs what its live rows cost: the length-aware complement of sorting prompts by length;
* each step of a grouped-query model hands ``sdpa`` its padding mask as a ready 4D boolean mask (``step_mask``) on
  CPU. Given a 2D mask with no padding in it (one row, rows of equal length, the rows left after the padded ones
  finished) transformers drops the mask and calls SDPA with ``enable_gqa``, whose CPU kernel is slow for one query
  token in bf16 (a step of 16 rows over 300 keys: 113 ms against 51 on the grouped-query path transformers takes
  when there is a mask; BENCHMARKS.md, "One query token"). With the mask always there, every step takes that path,
  padded or not.

What each step computes is what ``generate`` computes (same position ids from the attention mask, same float32
logits, transformers' own logits processors and stop-string criterion), so greedy float32 answers equal
``generate``'s and batched answers equal one-at-a-time answers (tests/test_hf.py, tests/test_hf_decode.py).
Models whose layers are not all full attention (sliding windows, linear attention) get transformers'
``DynamicCache`` instead, with the same loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from transformers.cache_utils import Cache, DynamicCache, DynamicLayer, get_layer_types_and_kwargs


class PreallocatedLayer(DynamicLayer):
    """One layer's keys and values in buffers of ``capacity`` positions; ``keys``/``values`` are views of the filled
    part, so attention never sees unused slots. Grows (one copy) if a caller overruns the capacity."""

    def __init__(self, capacity: int):
        super().__init__()
        self.capacity, self.length = capacity, 0
        self._keys = self._values = None

    def lazy_initialization(self, key_states: Any, value_states: Any) -> None:
        batch, heads, _, _ = key_states.shape
        self.device = key_states.device
        self._keys = key_states.new_empty((batch, heads, self.capacity, key_states.shape[-1]))
        self._values = value_states.new_empty((batch, heads, self.capacity, value_states.shape[-1]))
        self.is_initialized = True

    def update(self, key_states: Any, value_states: Any, *args, **kwargs) -> tuple[Any, Any]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        start, end = self.length, self.length + key_states.shape[-2]
        if end > self._keys.shape[2]:
            self._resize(self._keys.shape[0], max(end, 2 * self._keys.shape[2]))
        self._keys[:, :, start:end].copy_(key_states)  # also materialises a broadcast (expanded) prefix
        self._values[:, :, start:end].copy_(value_states)
        self.length = end
        return self._views()

    def _views(self) -> tuple[Any, Any]:
        self.keys, self.values = self._keys[:, :, : self.length], self._values[:, :, : self.length]
        return self.keys, self.values

    def _resize(self, batch: int, capacity: int) -> None:
        keys, values = self._keys, self._values
        self._keys = keys.new_empty((batch, keys.shape[1], capacity, keys.shape[3]))
        self._values = values.new_empty((batch, values.shape[1], capacity, values.shape[3]))
        self._keys[:, :, : self.length].copy_(keys[:, :, : self.length])
        self._values[:, :, : self.length].copy_(values[:, :, : self.length])

    def get_seq_length(self) -> int:
        return self.length

    def batch_select_indices(self, indices: Any) -> None:
        """Keep only the rows ``indices`` (finished rows leave the batch); the past is copied once, not per step."""
        if self.is_initialized:
            self._keys = self._keys.index_select(0, indices)
            self._values = self._values.index_select(0, indices)
            self._views()

    def reorder_cache(self, beam_idx: Any) -> None:
        self.batch_select_indices(beam_idx)

    def batch_repeat_interleave(self, repeats: int) -> None:
        import torch

        if self.is_initialized:
            self.batch_select_indices(torch.arange(self._keys.shape[0], device=self.device).repeat_interleave(repeats))

    def crop(self, tokens_to_remove: int) -> None:
        if tokens_to_remove > 0:
            raise ValueError("crop takes a negative count of tokens to remove")
        self.length = max(0, self.length + tokens_to_remove)
        if self.is_initialized:
            self._views()

    def reset(self) -> None:
        self.length = 0
        self.keys = self.values = None
        if self.is_initialized:
            self._views()


def _layer_types(model: Any) -> list[str]:
    return get_layer_types_and_kwargs(model.config.get_text_config(decoder=True))[0]  # as DynamicCache builds it


def full_attention(model: Any) -> bool:
    """Whether every layer of ``model`` attends over the whole past (no sliding window, no linear attention)."""
    return all(t == "full_attention" for t in _layer_types(model))


def new_cache(model: Any, capacity: int) -> Cache:
    """A pre-allocated cache for ``capacity`` positions, or a ``DynamicCache`` for models with other layer types."""
    if not full_attention(model):
        return DynamicCache(config=model.config.get_text_config(decoder=True))
    return Cache(layers=[PreallocatedLayer(capacity) for _ in _layer_types(model)])


def step_mask(model: Any) -> Callable[[Any], Any]:
    """How a decoding step passes its 2D padding mask: as a ``(rows, 1, 1, keys)`` boolean mask for a grouped-query
    model that attends with ``sdpa`` over its whole past on CPU (used as given by transformers), as is otherwise
    (other kernels read other mask forms; sliding-window layers need transformers' own masks; on GPU a missing mask
    is the fast case; a model with as many key as query heads has no grouped path, and a mask only costs it)."""
    config = model.config.get_text_config(decoder=True)
    grouped = (getattr(config, "num_key_value_heads", None) or config.num_attention_heads) < config.num_attention_heads
    if model.device.type == "cpu" and grouped and config._attn_implementation == "sdpa" and full_attention(model):
        return lambda mask: mask.bool()[:, None, None, :]
    return lambda mask: mask


#: ``choose(sequences, float32 logits of the last position) -> next token ids``; ``finished(sequences, next ids)
#: -> bool per row``. Both see only the rows still in the batch.
Choose = Callable[[Any, Any], Any]
Finished = Callable[[Any, Any], Any]


def decode(model: Any, input_ids: Any, attention_mask: Any, cache: Cache, max_new_tokens: int, choose: Choose,
           finished: Finished, on_token: Callable[[Any], None] | None = None) -> list[list[int]]:
    """New token ids of each row (the finishing token included). ``cache`` may already hold a prefix of the rows
    (``hf_prefill``): only the columns after it are run. Rows that finish leave the batch at once. ``on_token``
    sees each step's chosen tokens (the rows still in the batch), e.g. a streamer's ``put``."""
    import torch

    positions = attention_mask.long().cumsum(-1) - 1
    positions.masked_fill_(attention_mask == 0, 1)  # as generate does; pads are masked anyway
    past = cache.get_seq_length()
    rows = list(range(input_ids.shape[0]))
    new: list[list[int]] = [[] for _ in rows]
    seqs, mask, last = input_ids, attention_mask, positions[:, -1:]
    as_step_mask = step_mask(model)
    with torch.inference_mode():
        logits = model(input_ids=input_ids[:, past:], attention_mask=mask, position_ids=positions[:, past:],
                       cache=cache, use_cache=True, logits_to_keep=1).logits
        for step in range(max_new_tokens):
            token = choose(seqs, logits[:, -1, :].float())
            if on_token is not None:
                on_token(token)
            seqs = torch.cat([seqs, token[:, None]], dim=1)
            for row, t in zip(rows, token.tolist()):
                new[row].append(t)
            done = finished(seqs, token)
            if step + 1 == max_new_tokens or bool(done.all()):
                break
            if bool(done.any()):
                keep = (~done).nonzero().flatten()
                rows = [rows[i] for i in keep.tolist()]
                seqs, token, mask, last = seqs[keep], token[keep], mask[keep], last[keep]
                cache.batch_select_indices(keep)
            mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
            last = last + 1
            logits = model(input_ids=token[:, None], attention_mask=as_step_mask(mask), position_ids=last,
                           cache=cache, use_cache=True).logits
    return new
