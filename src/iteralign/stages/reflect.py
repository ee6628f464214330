"""Constitution-induced self-reflection: the reviser rewrites each failed answer with the relevant principles in
context; revisions are re-judged and only those judged aligned are kept for training. Output: ``revisions.jsonl``.

Three modes:
- ``critique_revise`` (default): system message with the principles, the original exchange, then a user turn asking
  for a revised answer that follows them: for harmful compliance, a refusal that says why in a sentence or two and
  offers a safe alternative; for an over-refusal, a real answer (``prompts/reflect.yaml``).
- ``answer``: the reviser answers the request afresh, the principles and the failure kind's instruction in its
  system message; it never sees the failed answer, so it has no "new answer" to announce. Measured worse on the
  embedded default (RESULTS.md, "Revisions that talk about revising"): asked afresh, the 1.5B reviser complies with
  half the harmful requests; it is meant for a reviser that follows its system message (a large API model).
- ``splice`` (the paper): the prompt is regenerated with the principles placed right after the request, just
  before the answer cue; no critique turn.

``meta`` handles a revision that talks about revising instead of being the answer (``judging/cues.META``: "I
apologize for the misunderstanding", "I will provide a new answer that...", "the principles above"), the reviser
echoing its instruction. ``keep`` (default) trains on it as written; ``cut`` removes those sentences before the
revision is judged (the rest of it is the answer; nothing left, nothing kept); ``drop`` drops the whole revision. A
target trained on such openings learns to open with them (RESULTS.md, "A second draw of the 0.5B recipe"); dropping
loses the refusals that carry them (on the embedded default mostly refusals that give a reason and an alternative:
over-refusal rose without them). Each record is a ``Revision``: the judged failure, the principles used, the revised
text, what was cut from it, its verdict, kept or not (and why not, where the verdict allowed it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Literal

from pydantic import Field, model_validator

from iteralign.constitution import Principle, render
from iteralign.judges import JudgeItem, JudgePanel
from iteralign.judging.cues import cut, first_match
from iteralign.models.base import ChatModel
from iteralign.records import Answer, Revision, Verdict
from iteralign.stages.batching import process
from iteralign.templates import load_prompt
from iteralign.types import GenerationParams, Strict


class ReflectConfig(Strict):
    mode: Literal["critique_revise", "answer", "splice"] = Field(
        "critique_revise", description="critique_revise: a chat turn asks the reviser to rewrite its answer to follow "
        "the principles; answer: the reviser answers the request afresh, the principles and the failure kind's "
        "instruction in its system message; splice (paper): the prompt is regenerated with the principles just "
        "before the answer cue."
    )
    meta: Literal["keep", "cut", "drop"] = Field(
        "keep", description="A revision that talks about the revision ('a new answer', 'the principles above', an "
        "apology for the earlier turn) instead of being the answer: keep it as written, cut those sentences before "
        "judging, or drop it."
    )
    principles_k: int = Field(5, ge=1, description="Most relevant principles shown per failure.")
    filter_with_judge: bool = Field(True, description="Keep only revisions the judge finds aligned (paper: no).")
    use_constitution: bool = Field(
        True, description="Show the chosen principles in the revision prompt. False is the ablation without a "
        "constitution: the reviser gets the same request to revise, with no principles."
    )
    generation: GenerationParams = Field(default_factory=lambda: GenerationParams(max_new_tokens=160))

    @model_validator(mode="before")
    @classmethod
    def _reject_meta(cls, data: object) -> object:
        """``reject_meta: true`` (before ``meta`` had three values) reads as ``meta: drop``."""
        if isinstance(data, dict) and "reject_meta" in data and "meta" not in data:
            data = {**data, "meta": "drop" if data["reject_meta"] else "keep"}
            del data["reject_meta"]
        return data


def revision_conversation(failure: Answer, principles: list[Principle], mode: str) -> list[dict]:
    """The reviser's conversation; with no principles (the ablation without a constitution) the same request to
    revise, minus the principle block."""
    tpl = load_prompt("reflect")
    block = render(principles)
    prompt = failure.prompt.text
    if mode == "splice":
        text = tpl["splice"].format(prompt=prompt, principles=block) if principles else prompt
        return [{"role": "user", "content": text}]
    kind = failure.verdict.failure if failure.verdict is not None else None
    system = tpl["system"].format(principles=block) if principles else tpl["system_plain"]
    if mode == "answer":
        guidance = tpl.get(f"answer_{kind}", tpl["answer"])
        return [{"role": "system", "content": f"{system}\n\n{guidance}"}, {"role": "user", "content": prompt}]
    revise = tpl.get(f"revise_{kind}", tpl["revise"]) if principles else \
        tpl.get(f"revise_plain_{kind}", tpl["revise_plain"])
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": prompt},
        {"role": "assistant", "content": failure.response},
        {"role": "user", "content": revise},
    ]


def revision(failure: Answer, principle_ids: list[str], text: str, verdict: Verdict, cfg: ReflectConfig,
             removed: list[str] | None = None) -> Revision:
    """One judged revision (``removed``: what ``meta: cut`` took out before judging), kept when it is not empty, its
    verdict allows it and (with ``meta: drop``) it is the answer rather than talk about one."""
    allowed = bool(text) and (verdict.label == "aligned" or not cfg.filter_with_judge)
    meta = first_match("meta", text) if allowed and cfg.meta == "drop" else None
    return Revision(id=failure.id, answer=failure, principle_ids=principle_ids, text=text, cut=removed or [],
                    verdict=verdict, kept=allowed and meta is None, dropped=f"meta: {meta!r}" if meta else None)


def reflect(failures: list[Answer], choose: Callable[[Answer], list[Principle]], reviser: ChatModel,
            panel: JudgePanel, cfg: ReflectConfig, out: Path, batch_size: int) -> list[Revision]:
    """Revise each failure with ``choose(failure) -> principles``; judge; keep improved revisions."""

    def run(batch: list[Answer]) -> list[Revision]:
        chosen = [choose(f) for f in batch]
        convs = [revision_conversation(f, ps, cfg.mode) for f, ps in zip(batch, chosen)]
        texts = [c.text.strip() for c in reviser.generate(convs, cfg.generation)]
        cuts = [cut("meta", t) if cfg.meta == "cut" else (t, []) for t in texts]
        verdicts = panel.judge([JudgeItem.of(f, t) for f, (t, _) in zip(batch, cuts)])
        return [revision(f, [p.id for p in ps], t, v, cfg, removed)
                for f, ps, (t, removed), v in zip(batch, chosen, cuts, verdicts)]

    return process(failures, out, run, batch_size, "reflect", Revision)
