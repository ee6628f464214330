"""Answer a list of single-turn prompts with a ChatModel, in chunks with a progress bar (generation benchmarks).

The model batches inside a chunk; chunking only gives the progress bar something to count and bounds the work lost
to an interrupt. Prompts are sent as one user turn, no system message: the model's own chat template decides the
rest, so that over-refusal and attack success are measured on the model as users meet it.
"""

from __future__ import annotations

from typing import Sequence

from iteralign.models.base import ChatModel
from iteralign.types import GenerationParams, user


def answer(model: ChatModel, prompts: Sequence[str], params: GenerationParams, chunk_size: int = 32,
           progress: bool = True, desc: str = "generating") -> list[str]:
    """The text of ``model``'s reply to each prompt, in order."""
    from iteralign.progress import Progress

    if not isinstance(model, ChatModel):
        raise TypeError(f"{type(model).__name__} cannot generate; generation benchmarks need a ChatModel")
    replies: list[str] = []
    with Progress(len(prompts), desc, "prompt", enabled=progress) as bar:
        for start in range(0, len(prompts), chunk_size):
            chunk = prompts[start:start + chunk_size]
            completions = model.generate([user(p) for p in chunk], params)
            if len(completions) != len(chunk):
                raise RuntimeError(f"model returned {len(completions)} completions for {len(chunk)} prompts")
            replies += [c.text for c in completions]
            bar.update(len(chunk))
    return replies
