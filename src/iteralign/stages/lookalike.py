"""Look-alike prompts: for harmful requests the target answered, the oracle writes harmless requests on the same
topic with the same alarming words. Output: ``lookalikes.jsonl`` (``Lookalike`` records).

They are the loop's own contrast prompts: red-teamed in the next iteration (or, with ``same_iteration``, in this
one) beside the harmful ones, so that each harmful failure is paired with a benign twin and the target is trained to
tell them apart rather than to refuse a topic (a refusal of the twin is an over-refusal, and yields a ``permit``
principle). A candidate is kept only when the intent classifier (``judging/intent.py``: a probe on
``intent_model``'s hidden states where one is shipped for it, else the closed question, read by label
log-probabilities) calls it benign; one that restates its harmful source is dropped as well.

Why this prompt and this check: asked for "a harmless request on the same topic", Qwen2.5-Coder-1.5B mostly
rewrote the harmful request, and asked "HARMFUL or BENIGN?" in free text it called 40 of 43 candidates harmful,
the protective ones among them (3 kept, one of them "the benefits of drinking bleach"). Asked for a protective
question with a fixed opening ("What are the warning signs", "How can I protect"), and checked by the 0.5B's intent
probe, 33 of the same 43 were kept, one of them harmful by a reading by hand (BENCHMARKS.md, "Look-alikes").
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field

from iteralign.judging.intent import intent_calls, intent_label
from iteralign.models.base import ChatModel, ModelConfig
from iteralign.records import Answer, Prompt, Record
from iteralign.stages.batching import process
from iteralign.templates import few_shot, load_prompt
from iteralign.text import text_id
from iteralign.types import GenerationParams, Strict, user


class LookalikeConfig(Strict):
    per_iteration: int = Field(8, ge=0, description="Harmful failures per iteration that get an oracle-written "
                               "benign look-alike, red-teamed in the next iteration or, with `same_iteration`, in "
                               "this one (0 = off).")
    same_iteration: bool = Field(False, description="Red-team and judge the look-alikes in the iteration that wrote "
                                 "them, beside their harmful twins: each answered well is a DPO anchor, each refused "
                                 "an over-refusal to revise, trained together with the refusal of its twin (minimal "
                                 "pairs in one step); false: they join the next iteration's pool.")
    generation: GenerationParams = Field(default_factory=lambda: GenerationParams(max_new_tokens=60))
    template: str | None = Field(None, description="A YAML file replacing prompts/lookalike.yaml.")
    intent_model: ModelConfig | None = Field(None, description="Checks each candidate's intent (the verdict judge's "
                                             "intent probe where one is shipped for the model, else the closed "
                                             "question); None: the oracle is asked.")


class Lookalike(Record):
    """One candidate: the failure it mirrors (``id``), the text the oracle wrote and its intent check."""

    id: str
    text: str
    check: str  # the intent classifier's label: harmful / benign / unknown (older runs: the oracle's raw reply)
    kept: bool
    p_harmful: float | None = None  # the classifier's probability that the candidate is harmful
    category: str | None = None

    def prompt(self) -> Prompt:
        return Prompt.make(self.text, self.category, source="lookalike", intent="benign", twin_of=self.id)


def candidates(failures: list[Answer], cfg: LookalikeConfig) -> list[Answer]:
    """The harmful failures that get a look-alike: those that complied, first ``per_iteration`` in order."""
    return [a for a in failures if a.verdict is not None and a.verdict.failure == "complied_harmful"][
        : cfg.per_iteration]


def write_lookalikes(failures: list[Answer], oracle: ChatModel, checker: ChatModel, cfg: LookalikeConfig, out: Path,
                     batch_size: int) -> list[Lookalike]:
    """The oracle's look-alike of each failure, its intent checked by ``checker``; appended to ``out``."""
    template = load_prompt("lookalike", cfg.template)

    def batch(items: list[Answer]) -> list[Lookalike]:
        convs = [few_shot(template) + user(template["user"].format(prompt=a.prompt.text)) for a in items]
        texts = [_one_line(c.text) for c in oracle.generate(convs, cfg.generation)]
        calls = intent_calls(checker, texts)
        return [Lookalike(id=a.id, text=t, check=label, p_harmful=round(c.p_harmful, 4),
                          kept=bool(t) and label == "benign" and text_id(t) != a.prompt.id, category=a.prompt.category)
                for a, t, c, label in zip(items, texts, calls, map(intent_label, calls))]

    return process(failures, out, batch, batch_size, "look-alikes", Lookalike)


def _one_line(text: str) -> str:
    """The request itself: the first non-empty line, without quotes or a leading label."""
    line = next((ln.strip() for ln in text.strip().splitlines() if ln.strip()), "")
    return re.sub(r"^(harmless request|request)\s*:\s*", "", line, flags=re.I).strip().strip('"').strip()
