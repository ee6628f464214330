"""Batched log-likelihood scoring of continuations, tokenized the way lm-evaluation-harness does.

lm-eval's ``HFLM._encode_pair`` moves the context's trailing whitespace onto the continuation, encodes
``context + continuation`` as one string (no special tokens) and splits it where the encoded context ends; an empty
context is replaced by one prefix token (BOS, else EOS). Copying that keeps our TruthfulQA/HHH accuracies comparable
with numbers reported through lm-eval.

Batches are left-padded with explicit position ids, so every sequence ends in the last column and the model only
needs to project the last ``max continuation length`` positions to the vocabulary (``logits_to_keep``), which keeps
memory small for 150k-token vocabularies. Batched scores equal one-at-a-time scores to 1e-4 (tested).
"""

from __future__ import annotations

from typing import Any

from iteralign.types import LoglikelihoodRequest


#: Padded tokens per forward pass. A fixed count of sequences is not a memory bound: 16 of HHH's longer items took a
#: 0.5B model (152k vocabulary) to 17 GB peak on CPU, 4 to 7 GB, and the smaller batches were faster, not slower.
MAX_BATCH_TOKENS = 2048


def token_batches(lengths: list[int], batch_size: int) -> list[slice]:
    """Consecutive batches of sequences sorted longest first: at most ``batch_size`` sequences and, past the first,
    at most ``MAX_BATCH_TOKENS`` padded tokens (each batch is as wide as its first sequence)."""
    out, start = [], 0
    while start < len(lengths):
        size = max(1, min(batch_size, MAX_BATCH_TOKENS // max(1, lengths[start])))
        out.append(slice(start, start + size))
        start += size
    return out


def encode_pair(tokenizer: Any, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """Context and continuation token ids, split as lm-eval splits them."""
    if context == "":
        prefix = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        return [prefix], tokenizer(continuation, add_special_tokens=False).input_ids
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
    whole = tokenizer(context + continuation, add_special_tokens=False).input_ids
    context_ids = tokenizer(context, add_special_tokens=False).input_ids
    return context_ids, whole[len(context_ids) :]


def _max_length(model: Any, tokenizer: Any) -> int:
    configured = getattr(model.config, "max_position_embeddings", None)
    return int(configured or min(tokenizer.model_max_length, 4096))


def score_requests(model: Any, tokenizer: Any, requests: list[LoglikelihoodRequest], batch_size: int) -> list[float]:
    """Sum of log-probs of each continuation; sequences longer than the model's context lose tokens on the left."""
    limit = _max_length(model, tokenizer)
    items = []  # (input ids, number of continuation tokens)
    for r in requests:
        context_ids, cont_ids = encode_pair(tokenizer, r.context, r.continuation)
        full = (context_ids + cont_ids)[-(limit + 1) :]
        items.append((full[:-1], full[len(full) - len(cont_ids) :]))
    order = sorted(range(len(items)), key=lambda i: len(items[i][0]), reverse=True)
    scores = [0.0] * len(items)
    for chunk in token_batches([len(items[i][0]) for i in order], batch_size):
        batch = [i for i in order[chunk] if items[i][1]]  # empty continuation scores 0
        if batch:
            for i, score in zip(batch, _score_batch(model, tokenizer, [items[i] for i in batch])):
                scores[i] = score
    return scores


def _score_batch(model: Any, tokenizer: Any, batch: list[tuple[list[int], list[int]]]) -> list[float]:
    import torch

    enc = tokenizer.pad({"input_ids": [ids for ids, _ in batch]}, padding=True, padding_side="left",
                        return_tensors="pt")
    mask = enc["attention_mask"].to(model.device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    keep = max(len(targets) for _, targets in batch)
    with torch.inference_mode():
        logits = model(input_ids=enc["input_ids"].to(model.device), attention_mask=mask, position_ids=positions,
                       logits_to_keep=keep).logits
    out = []
    for row, (_, targets) in enumerate(batch):
        # Row by row: a float32 log-softmax of the whole batch (batch x keep x vocab) is several GB at a 150k vocab
        # with HHH's long continuations, and killed a 0.5B run on a 24 GB machine.
        logprobs = torch.log_softmax(logits[row, keep - len(targets) :].float(), dim=-1)
        target = torch.tensor(targets, device=logprobs.device)
        out.append(float(logprobs.gather(-1, target[:, None]).sum()))
    return out
