"""Greedy generation with llama.cpp (``llama-cpp-python``'s C API) for several prompts in one batch.

Used by bench/generation.py to set llama.cpp beside the transformers backend on the *same prompt tokens*: prompts
come in as token ids (encoded with our tokenizer), so both engines read identical inputs. Up to ``batch`` sequences
share one ``llama_batch`` per step (llama.cpp's own ``examples/batched`` scheme: one KV cache, a sequence id per
prompt); batch 1 is the plain one-prompt-at-a-time loop. Greedy = argmax of the logits, stopping at an end-of-
generation token or after ``max_new_tokens``. Counted tokens include the end token, like the transformers runs.

llama.cpp runs the GGUF's Q4_1 weights (4-bit blocks, ~0.6 byte/weight, int8 dot products), while transformers
runs the float32/bfloat16 weights dequantized from the same file: the outputs are close but not identical.
"""

from __future__ import annotations

import ctypes
import time


def _silence(llama_cpp) -> None:
    """Mute llama.cpp's stderr logging (it prints every tensor on load)."""
    cb = llama_cpp.llama_log_callback(lambda level, text, user: None)
    _silence.keep = cb  # keep a reference: the C side calls it later
    llama_cpp.llama_log_set(cb, ctypes.c_void_p())


def greedy(gguf: str, prompts: list[list[int]], max_new_tokens: int, batch: int,
           threads: int) -> tuple[list[list[int]], float]:
    """Token ids generated for each prompt, and the seconds spent generating (model load excluded)."""
    import llama_cpp
    import numpy as np

    _silence(llama_cpp)
    llama_cpp.llama_backend_init()
    mparams = llama_cpp.llama_model_default_params()
    model = llama_cpp.llama_model_load_from_file(gguf.encode(), mparams)
    longest = max(len(p) for p in prompts) + max_new_tokens + 8
    cparams = llama_cpp.llama_context_default_params()
    cparams.n_ctx, cparams.n_seq_max = longest * batch, batch
    cparams.n_batch = cparams.n_ubatch = max(512, longest * batch)
    cparams.n_threads = cparams.n_threads_batch = threads
    cparams.kv_unified = False
    ctx = llama_cpp.llama_init_from_model(model, cparams)
    vocab = llama_cpp.llama_model_get_vocab(model)
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
    lbatch = llama_cpp.llama_batch_init(cparams.n_batch, 0, batch)
    outputs: list[list[int]] = []
    start = time.perf_counter()
    try:
        for first in range(0, len(prompts), batch):
            group = prompts[first:first + batch]
            llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(ctx), True)
            outputs += _run_group(llama_cpp, np, ctx, vocab, n_vocab, lbatch, group, max_new_tokens)
    finally:
        seconds = time.perf_counter() - start
        llama_cpp.llama_batch_free(lbatch)
        llama_cpp.llama_free(ctx)
        llama_cpp.llama_model_free(model)
    return outputs, seconds


def _fill(lbatch, entries: list[tuple[int, int, int, bool]]) -> None:
    """entries: (token, position, sequence id, wants logits)."""
    for i, (tok, pos, seq, logits) in enumerate(entries):
        lbatch.token[i], lbatch.pos[i], lbatch.n_seq_id[i] = tok, pos, 1
        lbatch.seq_id[i][0], lbatch.logits[i] = seq, logits
    lbatch.n_tokens = len(entries)


def _run_group(llama_cpp, np, ctx, vocab, n_vocab, lbatch, group, max_new_tokens) -> list[list[int]]:
    """Prefill every prompt of the group in one batch, then decode one token per live sequence per step."""
    entries = [(t, pos, s, pos == len(p) - 1) for s, p in enumerate(group) for pos, t in enumerate(p)]
    out: list[list[int]] = [[] for _ in group]
    live = list(range(len(group)))
    logit_row = {s: i for i, (_, _, s, want) in enumerate(entries) if want}
    _fill(lbatch, entries)
    for _ in range(max_new_tokens):
        if llama_cpp.llama_decode(ctx, lbatch) != 0:
            raise RuntimeError("llama_decode failed")
        step = []
        for s in live:
            row = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, logit_row[s]), shape=(n_vocab,))
            tok = int(row.argmax())
            out[s].append(tok)
            if not llama_cpp.llama_vocab_is_eog(vocab, tok):
                step.append(s)
        live = [s for s in step if len(out[s]) < max_new_tokens]
        if not live:
            break
        entries = [(out[s][-1], len(group[s]) + len(out[s]) - 1, s, True) for s in live]
        logit_row = {s: i for i, s in enumerate(live)}
        _fill(lbatch, entries)
    return out
