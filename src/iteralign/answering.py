"""Answering and judging prompts: the one code path of the loop's red-team stage, replay and evaluation.

``answer(model, prompts, params)`` turns ``Prompt`` records into ``Answer`` records (each prompt sent as one user
turn, no system message: the model's own chat template decides the rest, so that attack success and over-refusal
are measured on the model as users meet it). ``judge(panel, answers)`` returns the same answers with their verdicts.
``answer_all`` does the same in chunks with a progress line, for evaluation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from iteralign.progress import Progress
from iteralign.records import Answer, Prompt
from iteralign.types import GenerationParams, user

if TYPE_CHECKING:  # pragma: no cover
    from iteralign.judges import JudgePanel
    from iteralign.models.base import ChatModel


def answer(model: "ChatModel", prompts: Sequence[Prompt], params: GenerationParams) -> list[Answer]:
    """``model``'s answer to each prompt, in order (one ``generate`` call: the model batches)."""
    completions = model.generate([user(p.text) for p in prompts], params)
    if len(completions) != len(prompts):
        raise RuntimeError(f"{model.name}: {len(completions)} completions for {len(prompts)} prompts")
    return [Answer.of(p, c.text.strip(), c.finish_reason) for p, c in zip(prompts, completions)]


def judge(panel: "JudgePanel", answers: Sequence[Answer]) -> list[Answer]:
    """The answers with ``verdict`` set by the panel (prompt-aware: the prompt and its intent go with each)."""
    from iteralign.judges import JudgeItem

    verdicts = panel.judge([JudgeItem.of(a) for a in answers])
    return [a.model_copy(update={"verdict": v}) for a, v in zip(answers, verdicts)]


def answer_all(model: "ChatModel", prompts: Sequence[Prompt], params: GenerationParams, desc: str,
               chunk_size: int = 32, progress: bool = True) -> list[Answer]:
    """``answer`` in chunks, with a progress bar or log line per chunk."""
    out: list[Answer] = []
    with Progress(len(prompts), desc, "prompt", enabled=progress) as bar:
        for start in range(0, len(prompts), chunk_size):
            chunk = prompts[start:start + chunk_size]
            out += answer(model, chunk, params)
            bar.update(len(chunk))
    return out
