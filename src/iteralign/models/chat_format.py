"""How a conversation becomes prompt tokens: the model's chat template, or a plain fallback for models without one.

One module for every place that turns messages into token ids (the transformers and vLLM backends, and SFT, which
must train on exactly the tokens generation feeds the model), so that training and generation cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from iteralign.types import Conversation, GenerationParams

#: Used when the tokenizer has no chat template and none is configured. Its stop string keeps a base model from
#: writing the next user turn itself.
PLAIN_STOP = "\nUser:"


def render_plain(conversation: Conversation) -> str:
    """The fallback prompt format: ``System: ...\\nUser: ...\\nAssistant:`` (a trailing assistant turn is continued)."""
    lines = [f"{m['role'].capitalize()}: {m['content']}" for m in conversation]
    if not conversation or conversation[-1]["role"] != "assistant":
        lines.append("Assistant:")
    return "\n".join(lines)


def encode_chat(tokenizer: Any, conversation: Conversation) -> list[int]:
    """Prompt token ids for a conversation: the chat template (or the plain fallback) + the generation cue.

    A trailing assistant turn is continued (prefill) rather than closed. Shared with the vLLM backend so that both
    backends see exactly the same prompt tokens.
    """
    if not tokenizer.chat_template:
        return tokenizer(render_plain(conversation)).input_ids
    prefill = bool(conversation) and conversation[-1]["role"] == "assistant"
    text = tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=not prefill,
                                         continue_final_message=prefill)
    return tokenizer(text, add_special_tokens=False).input_ids  # the template already wrote the special tokens


def stop_strings(tokenizer: Any, params: GenerationParams) -> list[str]:
    """The caller's stop strings, plus ``PLAIN_STOP`` when the plain fallback format is in use."""
    stops = list(params.stop)
    if not tokenizer.chat_template and PLAIN_STOP not in stops:
        stops.append(PLAIN_STOP)
    return stops
