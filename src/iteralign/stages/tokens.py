"""Training examples as token ids, built with the generation code path, so that training and generation see the same
prompt tokens.

The trainers (TRL's SFT and DPO) would otherwise tokenize the conversation themselves: with the model's chat template
only (a model without one fails), ignoring a configured ``chat_template`` override, and with their own split between
prompt and answer. Here:

- the prompt is ``chat_format.encode_chat`` of the single user turn: the exact ids the backends feed the model
  (template or plain fallback, override included);
- the answer is what follows the prompt when the whole exchange is rendered the same way, cut right after the first
  end-of-turn token (the token generation stops on), which is kept so that the model learns to stop; when rendering
  the whole exchange does not start with the prompt's ids (a tokenizer merging across the boundary), the answer is
  tokenized alone and the end-of-turn token appended.

The loss then covers exactly the answer and its end-of-turn token (``completion_mask``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from iteralign.models.chat_format import encode_chat, render_plain
from iteralign.types import user


def load_tokenizer(base: str, chat_template: str | None = None, trust_remote_code: bool = False) -> Any:
    """The tokenizer generation uses for ``base``: the configured template file wins; pad falls back to eos."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base, trust_remote_code=trust_remote_code)
    if chat_template:
        path = Path(chat_template)
        if not path.is_file():
            raise FileNotFoundError(f"chat_template: no such file {path}")
        tokenizer.chat_template = path.read_text(encoding="utf-8")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def end_of_turn_ids(base: str, tokenizer: Any) -> set[int]:
    """Every id that ends a generated turn: the generation config's eos id(s) and the tokenizer's (as ``hf.py``)."""
    from transformers import GenerationConfig

    try:
        ids = GenerationConfig.from_pretrained(base).eos_token_id
    except OSError:  # no generation_config.json
        ids = None
    found = set(ids if isinstance(ids, list) else [ids] if ids is not None else [])
    return found | ({tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set())


def encode_example(tokenizer: Any, eos_ids: set[int], prompt: str, answer: str,
                   complete: bool = True) -> tuple[list[int], list[int]]:
    """``(prompt_ids, answer_ids)``: the generation prompt of ``prompt`` and ``answer`` up to its end-of-turn token;
    without that token when the answer is not ``complete`` (cut off by a length limit: not a finished reply)."""
    prompt_ids, answer_ids = _encode_finished(tokenizer, eos_ids, prompt, answer)
    if not complete and answer_ids and answer_ids[-1] in eos_ids | set(_eos(tokenizer)):
        answer_ids = answer_ids[:-1]
    return prompt_ids, answer_ids


def _encode_finished(tokenizer: Any, eos_ids: set[int], prompt: str, answer: str) -> tuple[list[int], list[int]]:
    conversation = user(prompt)
    prompt_ids = encode_chat(tokenizer, conversation)
    if tokenizer.chat_template:
        text = tokenizer.apply_chat_template(conversation + [{"role": "assistant", "content": answer}], tokenize=False)
    else:
        text = render_plain(conversation) + " " + answer
    whole = tokenizer(text, add_special_tokens=not tokenizer.chat_template).input_ids
    if whole[: len(prompt_ids)] == prompt_ids:
        rest = whole[len(prompt_ids):]
        end = next((k for k, t in enumerate(rest) if t in eos_ids), None)
        if end is not None:
            return prompt_ids, rest[: end + 1]
        return prompt_ids, rest + _eos(tokenizer)
    return prompt_ids, tokenizer(answer, add_special_tokens=False).input_ids + _eos(tokenizer)


def _eos(tokenizer: Any) -> list[int]:
    return [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
