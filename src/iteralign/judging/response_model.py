"""The response class asked of a model: refusal / compliance / partial for a (request, reply) pair.

The ``judge_response`` prompt is read by label log-probabilities (one forward pass per item, batched) or, on
backends without them, by an anchored ``FINAL:`` line (``label_scores``). Long replies are cut to ``max_chars``:
whether a reply refuses or complies shows in its first paragraphs, and the cost of a forward pass grows with length.
"""

from __future__ import annotations

from typing import Any

from iteralign.judging.label_scores import label_probs
from iteralign.judging.response_class import RESPONSE_CLASSES
from iteralign.templates import load_prompt


def response_conversation(prompt: str, response: str, max_chars: int = 1500) -> list[dict]:
    tpl = load_prompt("judge_response")
    cut = response if len(response) <= max_chars else response[:max_chars] + " [...]"
    return [{"role": "system", "content": tpl["system"].strip()},
            {"role": "user", "content": tpl["user"].format(prompt=prompt, response=cut)}]


def ask_response_class(model: Any, prompts: list[str], responses: list[str],
                       max_chars: int = 1500) -> list[dict[str, float] | None]:
    """Per item, ``{refusal, compliance, partial: probability}``, or None when the model gave no usable label."""
    convs = [response_conversation(p, r, max_chars) for p, r in zip(prompts, responses)]
    return label_probs(model, convs, list(RESPONSE_CLASSES))
