"""The principle store: a cumulative list of principles with provenance, deduplicated as they are added.

Unlike the authors' code (one fresh constitution per round, no memory), principles accumulate over iterations. A new
proposal that restates an existing principle (same normalised text, or a ``similarity.similarity`` score at or above
``similarity_threshold``: same polarity, same subject, similar wording) is not added: its failure ids are merged into
the existing principle's provenance. Users can pin a principle (always given to the reviser) or disable it (never
used). A disabled principle still absorbs later restatements of itself, so it is never re-added; it does not block
principles that are not its duplicates, its negation included: disabling "should help with X" leaves room for
"should refuse X".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from iteralign.constitution.similarity import Polarity, polarity, principle_key, similarity
from iteralign.text import content_words, overlap_cosine

Status = Literal["active", "pinned", "disabled"]
#: A principle's kind: ``restrict``, what the assistant should refuse or avoid (from answers that complied with
#: harmful requests); ``permit``, what it should answer (from over-refusals of benign requests).
Kind = Polarity


class Principle(BaseModel):
    """One principle. In ``constitution.yaml`` only ``text`` is required; everything else has a default."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^\S+$", description="Stable id, e.g. 'P001'; referenced by revisions and reports.")
    text: str = Field(min_length=1, description="The principle, as given to the reviser.")
    iteration: int = Field(0, ge=0, description="Iteration that proposed it (0 for user principles).")
    source_failure_ids: list[str] = Field(default_factory=list, description="Failures it was proposed from.")
    status: Status = Field("active", description="'pinned': always used; 'disabled': never used nor re-added.")
    kind: Kind | None = Field(None, description="'restrict': what to refuse (from harmful compliance); 'permit': "
                              "what to answer (from over-refusals of benign requests); unset: read from the text.")
    origin: Literal["proposed", "user"] = Field("user", description="Proposed by the oracle, or written by a user.")
    uses: int = Field(0, ge=0, description="Revisions it guided.")
    created: str | None = Field(None, description="ISO time it was added.")

    @property
    def polarity(self) -> Kind:
        """The declared ``kind``, else the one the text reads as (``similarity.polarity``)."""
        return self.kind or polarity(self.text)

    @field_validator("text")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("text is empty")
        return value


class Constitution:
    """An ordered collection of principles (see the module docstring)."""

    def __init__(self, principles: Iterable[Principle] = (), similarity_threshold: float = 0.6) -> None:
        if not 0.0 < similarity_threshold <= 1.0:
            raise ValueError(f"similarity_threshold must be in (0, 1], got {similarity_threshold}")
        self.principles: list[Principle] = list(principles)
        self.similarity_threshold = similarity_threshold
        ids = [p.id for p in self.principles]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate principle ids: {', '.join(duplicates)}")

    def __len__(self) -> int:
        return len(self.principles)

    def __iter__(self):
        return iter(self.principles)

    def get(self, principle_id: str) -> Principle:
        for principle in self.principles:
            if principle.id == principle_id:
                return principle
        raise KeyError(f"no principle with id {principle_id!r}")

    def next_id(self) -> str:
        """The next free ``P<number>`` id."""
        return next_principle_id(p.id for p in self.principles)

    def find_duplicate(self, text: str, kind: Kind | None = None) -> Principle | None:
        """The existing principle ``text`` restates, or ``None``; the most similar wins.

        Disabled principles count: a restatement of a disabled principle is absorbed by it rather than re-added. Only
        restatements are: a principle of the opposite polarity or about another subject is not a duplicate.
        """
        key = principle_key(text, kind)
        best, best_score = None, 0.0
        for principle in self.principles:
            score = similarity(key, principle_key(principle.text, principle.kind))
            if score >= self.similarity_threshold and score > best_score:
                best, best_score = principle, score
        return best

    def add(
        self,
        texts: Iterable[str],
        iteration: int,
        source_ids: Sequence[str] = (),
        origin: Literal["proposed", "user"] = "proposed",
        created: str | None = None,
        kind: Kind | None = None,
    ) -> list[Principle]:
        """Add new principles; a text that duplicates an existing (or earlier in ``texts``) principle only merges
        ``source_ids`` into that principle's provenance. Returns the principles actually added.

        ``created`` (an ISO time) is recorded only when given: by default the file stays a pure function of the
        inputs, so a resumed run writes the same ``constitution.yaml`` as an uninterrupted one.
        """
        added: list[Principle] = []
        for text in texts:
            text = text.strip()
            if not text:
                continue
            existing = self.find_duplicate(text, kind)
            if existing is not None:
                merged = existing.source_failure_ids + [i for i in source_ids if i not in existing.source_failure_ids]
                existing.source_failure_ids = merged
                continue
            principle = Principle(
                id=self.next_id(), text=text, iteration=iteration, source_failure_ids=list(dict.fromkeys(source_ids)),
                origin=origin, created=created, kind=kind,
            )
            self.principles.append(principle)
            added.append(principle)
        return added

    def set_status(self, principle_id: str, status: Status) -> None:
        """Pin, disable or re-activate a principle."""
        self.get(principle_id).status = status

    def active(self) -> list[Principle]:
        """Principles in use: active and pinned, in store order."""
        return [p for p in self.principles if p.status != "disabled"]

    def relevant(self, text: str, k: int, kind: Kind | None = None) -> list[Principle]:
        """The principles to show the reviser for one failure: every pinned one, then the active ones (of ``kind``,
        when given) whose content words overlap ``text`` (the prompt, optionally with the failed answer) most, up to
        ``k`` in all.

        Ties (and no overlap at all) favour newer principles, which came from more recent failures. The result keeps
        store order, so that prompts render stably.
        """
        active = [p for p in self.active() if kind is None or p.polarity == kind or p.status == "pinned"]
        chosen = {p.id for p in active if p.status == "pinned"}
        words = content_words(text)
        ranked = sorted(
            (p for p in active if p.id not in chosen),
            key=lambda p: (overlap_cosine(words, content_words(p.text)), p.iteration, self.principles.index(p)),
            reverse=True,
        )
        chosen.update(p.id for p in ranked[: max(k - len(chosen), 0)])
        return [p for p in active if p.id in chosen]

    def record_use(self, principle_ids: Iterable[str]) -> None:
        """Count one more revision guided by each of these principles."""
        for principle_id in principle_ids:
            self.get(principle_id).uses += 1

    def render(self, principles: Sequence[Principle] | None = None) -> str:
        """Numbered text block of ``principles`` (default: all active ones) for prompts."""
        return render(self.active() if principles is None else principles)


def next_principle_id(taken: Iterable[str]) -> str:
    """``P`` and one more than the largest number among ``P<number>`` ids in ``taken`` (three digits at least)."""
    numbers = [int(m.group(1)) for i in taken if (m := re.fullmatch(r"P(\d+)", i))]
    return f"P{max(numbers, default=0) + 1:03d}"


def render(principles: Sequence[Principle | str]) -> str:
    """``1. text`` per principle, continuation lines indented to the text; empty string for no principles."""
    lines = []
    for number, principle in enumerate(principles, start=1):
        text = principle if isinstance(principle, str) else principle.text
        prefix = f"{number}. "
        body = text.strip().splitlines() or [""]
        lines.append(prefix + body[0])
        lines.extend(" " * len(prefix) + line if line.strip() else "" for line in body[1:])
    return "\n".join(lines)


def merged(first: Constitution, second: Iterable[Principle]) -> Constitution:
    """``first``'s principles as they are, then those of ``second`` whose ids ``first`` lacks."""
    known = {p.id for p in first}
    return Constitution([*first, *(p for p in second if p.id not in known)], first.similarity_threshold)


def as_of(store: Constitution, iteration: int) -> Constitution:
    """The principles known when ``iteration``'s proposals were done (and those written by hand)."""
    return Constitution([p for p in store if p.iteration <= iteration or p.origin == "user"],
                        store.similarity_threshold)


def content_key(store: Constitution) -> list[tuple[str, str, str]]:
    """What a stage that shows principles depends on: ids, texts, statuses in order (not use counts or dates)."""
    return [(p.id, p.text, p.status) for p in store]
