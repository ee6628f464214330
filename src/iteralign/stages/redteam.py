"""Red teaming: the target model answers each red-team prompt. Output: ``redteam.jsonl``.

Each record: ``{id, prompt, category, response, finish_reason}``. Batched through the model (and its call cache).
"""

from __future__ import annotations

from pathlib import Path

from iteralign.models.base import ChatModel
from iteralign.stages.batching import process
from iteralign.types import GenerationParams, user


def redteam(prompts: list[dict], target: ChatModel, params: GenerationParams, out: Path, batch_size: int,
            desc: str = "red team") -> list[dict]:
    """Answer ``prompts`` (dicts with id, text, category) with ``target``; append records to ``out``."""

    def answer(batch: list[dict]) -> list[dict]:
        completions = target.generate([user(p["text"]) for p in batch], params)
        return [
            {"id": p["id"], "prompt": p["text"], "category": p.get("category"),
             "response": c.text.strip(), "finish_reason": c.finish_reason}
            for p, c in zip(batch, completions)
        ]

    return process(prompts, out, answer, batch_size, desc=desc)
