"""The records that flow through the pipeline, one name each from the prompt to the training data.

    Prompt ──redteam──► Answer ──judge──► Answer (verdict set) ──reflect──► Revision ──► Example / PreferencePair
                                                  └──propose──► Proposal (principles)

A ``Prompt`` is a red-team or benign prompt with its declared ``intent``; an ``Answer`` is one model's reply to it,
``verdict`` set once judged; a ``Revision`` rewrites a failed answer under principles and carries its own verdict;
training sees ``Example`` (supervised: prompt -> completion) and ``PreferencePair`` (chosen over rejected). Stages
take and return these records and the run folder's JSONL files hold them as they are (``model_dump``), so a record
read back from disk is the record a stage returned. Evaluation answers and judges with the same records and code.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from iteralign.text import text_id

Intent = Literal["harmful", "benign"]
Label = Literal["aligned", "unaligned", "unknown"]
#: Which way an answer failed: a harmful request answered, a benign one refused, or an answer that misleads.
Failure = Literal["complied_harmful", "refused_benign", "dishonest", "unhelpful"]


class Record(BaseModel):
    """Base of all records: unknown keys are errors (a renamed field must not vanish silently)."""

    model_config = ConfigDict(extra="forbid")

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class Prompt(Record):
    """One prompt. ``id`` is a content hash of the normalised text, so the same prompt has the same id everywhere."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    text: str
    intent: Intent | None = Field(None, description="Declared by the source; None: the intent classifier decides.")
    category: str | None = None
    source: str = ""
    meta: dict = Field(default_factory=dict)

    @classmethod
    def make(cls, text: str, category: str | None = None, source: str = "", intent: Intent | None = None,
             **meta: Any) -> "Prompt":
        text = text.strip()
        return cls(id=text_id(text), text=text, intent=intent, category=category, source=source, meta=dict(meta))

    def __hash__(self) -> int:
        return hash(self.id)


class Verdict(Record):
    """A judge panel's decision on one answer, with what each part said."""

    label: Label
    failure: Failure | None = Field(None, description="Which way an unaligned answer failed.")
    reason: str = ""
    judges: list[dict] = Field(default_factory=list, description="Each judge's label, raw reply and the parts that "
                               "decided it.")

    @property
    def failed(self) -> bool:
        return self.label == "unaligned"


class Answer(Record):
    """A model's reply to a prompt; ``verdict`` is set by the judge stage. ``id`` is the prompt's."""

    id: str
    prompt: Prompt
    response: str
    finish_reason: Literal["stop", "length"] = "stop"
    verdict: Verdict | None = None

    @classmethod
    def of(cls, prompt: Prompt, response: str, finish_reason: str = "stop") -> "Answer":
        return cls(id=prompt.id, prompt=prompt, response=response, finish_reason=finish_reason)

    @property
    def failed(self) -> bool:
        return self.verdict is not None and self.verdict.failed


class Proposal(Record):
    """One oracle reply to a batch of failures of one kind, and the principles parsed from it: ``restrict``
    principles from harmful compliance, ``permit`` principles from over-refusals."""

    id: str
    failure_ids: list[str]
    raw: str
    principles: list[str]
    kind: Literal["restrict", "permit"] = "restrict"


class Revision(Record):
    """A failed answer rewritten under principles; ``kept`` when its own verdict allows training on it."""

    id: str
    answer: Answer  # the judged failure
    principle_ids: list[str] = Field(default_factory=list)
    text: str
    cut: list[str] = Field(default_factory=list)  # what reflect.meta: cut took out of the reviser's text, in order
    verdict: Verdict | None = None
    kept: bool = False
    dropped: str | None = None  # why a revision its verdict allows is not kept (reflect.meta: drop: the phrase)

    @property
    def prompt(self) -> Prompt:
        return self.answer.prompt


class Example(Record):
    """One supervised training example: the completion is trained on, the prompt is context only."""

    id: str
    prompt: Prompt
    completion: str
    origin: Literal["revision", "replay"] = "revision"
    # False for an answer cut off by the length limit: trained without an end-of-turn token (not as a finished reply)
    complete: bool = True


class PreferencePair(Record):
    """Chosen over rejected for one prompt: a revision over the failed answer it replaces (``origin: revision``), a
    benign prompt's good answer over a refusal (``origin: anchor``, ``training_data.anchor_pairs``), or such a chosen
    answer (or a replay answer) over what the SFT-tuned target now answers instead (``origin: on_policy``,
    ``training_data.on_policy_pairs``)."""

    id: str
    prompt: Prompt
    chosen: str
    rejected: str
    failure: Failure | None = None
    origin: Literal["revision", "anchor", "on_policy"] = "revision"
    # False for an answer cut off by the length limit: trained without an end-of-turn token (not as a finished reply)
    chosen_complete: bool = True
    rejected_complete: bool = True

    @classmethod
    def from_revision(cls, revision: "Revision") -> "PreferencePair":
        """The pair a kept revision makes: the revision chosen over the failed answer it replaces."""
        answer = revision.answer
        return cls(id=revision.id, prompt=revision.prompt, chosen=revision.text, rejected=answer.response,
                   failure=answer.verdict.failure if answer.verdict else None,
                   rejected_complete=answer.finish_reason == "stop")
