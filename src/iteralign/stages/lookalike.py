"""Look-alike prompts: for harmful requests the target answered, the oracle writes harmless requests on the same
topic with the same alarming words. Output: ``lookalikes.jsonl`` (``Lookalike`` records).

They are the loop's own contrast prompts: red-teamed in the next iteration beside the harmful ones, so that each
harmful failure is paired with a benign twin and the target is trained to tell them apart rather than to refuse a
topic (a refusal of the twin is an over-refusal, and yields a ``permit`` principle). A candidate is kept only when
the oracle, asked afresh, calls it benign; one that restates its harmful source is dropped as well.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field

from iteralign.models.base import ChatModel
from iteralign.records import Answer, Prompt, Record
from iteralign.stages.batching import process
from iteralign.templates import few_shot, load_prompt
from iteralign.text import text_id
from iteralign.types import GenerationParams, Strict, user


class LookalikeConfig(Strict):
    per_iteration: int = Field(8, ge=0, description="Harmful failures per iteration that get an oracle-written "
                               "benign look-alike, red-teamed in the next iteration (0 = off).")
    generation: GenerationParams = Field(default_factory=lambda: GenerationParams(max_new_tokens=60))
    template: str | None = Field(None, description="A YAML file replacing prompts/lookalike.yaml.")


class Lookalike(Record):
    """One candidate: the failure it mirrors (``id``), the text the oracle wrote and its intent check."""

    id: str
    text: str
    check: str  # the oracle's raw reply to the intent question
    kept: bool
    category: str | None = None

    def prompt(self) -> Prompt:
        return Prompt.make(self.text, self.category, source="lookalike", intent="benign", twin_of=self.id)


def candidates(failures: list[Answer], cfg: LookalikeConfig) -> list[Answer]:
    """The harmful failures that get a look-alike: those that complied, first ``per_iteration`` in order."""
    return [a for a in failures if a.verdict is not None and a.verdict.failure == "complied_harmful"][
        : cfg.per_iteration]


def write_lookalikes(failures: list[Answer], oracle: ChatModel, cfg: LookalikeConfig, out: Path,
                     batch_size: int) -> list[Lookalike]:
    """The oracle's look-alike of each failure, checked for intent by the oracle; appended to ``out``."""
    template = load_prompt("lookalike", cfg.template)

    def batch(items: list[Answer]) -> list[Lookalike]:
        convs = [few_shot(template) + user(template["user"].format(prompt=a.prompt.text)) for a in items]
        texts = [_one_line(c.text) for c in oracle.generate(convs, cfg.generation)]
        checks = oracle.generate([user(template["intent_check"].format(prompt=t)) for t in texts],
                                 GenerationParams(max_new_tokens=8))
        return [Lookalike(id=a.id, text=t, check=c.text.strip(), kept=_kept(a, t, c.text), category=a.prompt.category)
                for a, t, c in zip(items, texts, checks)]

    return process(failures, out, batch, batch_size, "look-alikes", Lookalike)


def _one_line(text: str) -> str:
    """The request itself: the first non-empty line, without quotes or a leading label."""
    line = next((ln.strip() for ln in text.strip().splitlines() if ln.strip()), "")
    return re.sub(r"^(harmless request|request)\s*:\s*", "", line, flags=re.I).strip().strip('"').strip()


def _kept(source: Answer, text: str, check: str) -> bool:
    verdict = re.findall(r"\b(HARMFUL|BENIGN)\b", check.upper())
    return bool(text) and verdict[:1] == ["BENIGN"] and text_id(text) != source.prompt.id
