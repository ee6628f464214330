"""Ask a model a closed question and read its answer as probabilities over the allowed labels, never as free text.

Backends that implement ``label_logprobs(conversations, labels)`` (hf/gguf/offline, vLLM, OpenAI-compatible servers
that return logprobs, the scripted backend with a ``labels:`` section) give the log-probability of each label's
first token where the answer starts: one forward pass per conversation, batched, nothing parsed. The probabilities
are those values renormalised over the labels.

Backends without it raise ``NotImplementedError``; the question is then asked again with an instruction to end with
a line ``FINAL: <LABEL>``, answered greedily, and only that anchored last line counts (``parse_final``): a label
that merely appears in the reasoning ("is it ALIGNED or UNALIGNED?") is not an answer. A reply without such a line
gives ``None`` (unknown).
"""

from __future__ import annotations

import math
import re
from typing import Any

from iteralign.types import Conversation, GenerationParams

FINAL_INSTRUCTION = "\n\nThink briefly if you need to, then end with a last line of the form `FINAL: <label>`, " \
                    "where <label> is one of: {labels}."
FINAL_PARAMS = GenerationParams(max_new_tokens=96, temperature=0.0)


def normalise(logprobs: dict[str, float]) -> dict[str, float]:
    """Softmax of label log-probabilities: the model's choice among the labels only."""
    top = max(logprobs.values())
    weights = {k: math.exp(v - top) for k, v in logprobs.items()}
    total = sum(weights.values())
    return {k: w / total for k, w in weights.items()}


def parse_final(reply: str, labels: list[str]) -> str | None:
    """The label on the reply's last ``FINAL: <label>`` line (case-insensitive, surrounding punctuation ignored)."""
    allowed = {lab.strip().lower(): lab for lab in labels}
    pattern = re.compile(r"^\W*final(?: answer| label)?\W*[:=-]\s*\W*([a-z_ -]+?)\W*$", re.I | re.M)
    found = [m.group(1).strip().lower() for m in pattern.finditer(reply)]
    return allowed.get(found[-1]) if found else None


def ask_final(model: Any, conversations: list[Conversation], labels: list[str]) -> list[dict[str, float] | None]:
    """The fallback: generate with the FINAL instruction appended to the last user turn; one-hot on the parsed label."""
    words = ", ".join(lab.strip() for lab in labels)
    convs = []
    for conv in conversations:
        conv = [dict(m) for m in conv if m["role"] != "assistant" or m is not conv[-1]]  # drop an answer prefill
        conv[-1]["content"] += FINAL_INSTRUCTION.format(labels=words)
        convs.append(conv)
    out: list[dict[str, float] | None] = []
    for reply in model.generate(convs, FINAL_PARAMS):
        label = parse_final(reply.text, labels)
        out.append(None if label is None else {lab: float(lab == label) for lab in labels})
    return out


def label_probs(model: Any, conversations: list[Conversation], labels: list[str]) -> list[dict[str, float] | None]:
    """Per conversation, ``{label: probability}`` over ``labels`` (or None when the fallback reply had no label)."""
    if not conversations:
        return []
    try:
        raw = model.label_logprobs(conversations, labels)
    except NotImplementedError:
        return ask_final(model, conversations, labels)
    return [normalise(row) for row in raw]
