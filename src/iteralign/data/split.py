"""Deduplicate prompts, shuffle them with a seed and split them into a training set and a held-out set.

The split depends only on the *set* of prompts, the seed and the fraction: prompts are deduplicated by normalised
text (``Prompt.id`` is its hash; the first occurrence wins), sorted by id, then shuffled with ``random.Random(seed)``.
So listing the same sources in another order gives the same split. The ``SplitRecord`` (ids per part) is written to
the run folder; ``PromptSplit.from_record`` rebuilds the same split on resume and says if the prompts changed.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from iteralign.data.records import DataError
from iteralign.records import Prompt


class SplitConfig(BaseModel):
    """How to split the loaded prompts."""

    model_config = ConfigDict(extra="forbid")

    held_out_fraction: float = Field(0.2, ge=0.0, lt=1.0, description="Share of prompts kept out of training.")
    seed: int | None = Field(None, description="Shuffle seed; default the run's seed (`run.seed`).")
    max_train: int | None = Field(None, ge=1, description="Keep at most this many training prompts (after shuffle).")
    max_held_out: int | None = Field(None, ge=1, description="Keep at most this many held-out prompts.")


class SplitRecord(BaseModel):
    """The split as written to the run folder: settings, counts and the ids in each part, in order."""

    model_config = ConfigDict(extra="forbid")

    seed: int
    held_out_fraction: float
    n_input: int
    n_duplicates: int
    train: list[str]
    held_out: list[str]


@dataclass
class PromptSplit:
    """The two parts and the record that reproduces them."""

    train: list[Prompt]
    held_out: list[Prompt]
    record: SplitRecord

    @classmethod
    def from_record(cls, prompts: Iterable[Prompt], record: SplitRecord) -> "PromptSplit":
        """Rebuild a recorded split from freshly loaded prompts; ``DataError`` if a recorded id is gone."""
        by_id = {p.id: p for p in prompts}
        missing = [i for i in record.train + record.held_out if i not in by_id]
        if missing:
            raise DataError(
                f"{len(missing)} prompts of the recorded split are no longer in the sources (first: {missing[0]}); "
                "the prompt sources changed since this run started"
            )
        return cls([by_id[i] for i in record.train], [by_id[i] for i in record.held_out], record)

    def joined(self, other: "PromptSplit") -> "PromptSplit":
        """This split followed by another one (e.g. the benign contrast prompts); a prompt in both stays in this one."""
        seen = set(self.record.train + self.record.held_out)
        train = self.train + [p for p in other.train if p.id not in seen]
        held_out = self.held_out + [p for p in other.held_out if p.id not in seen]
        record = self.record.model_copy(update={
            "n_input": self.record.n_input + other.record.n_input,
            "n_duplicates": self.record.n_duplicates + other.record.n_duplicates,
            "train": [p.id for p in train], "held_out": [p.id for p in held_out]})
        return PromptSplit(train, held_out, record)


def dedupe(prompts: Iterable[Prompt]) -> tuple[list[Prompt], int]:
    """Drop prompts whose normalised text was seen before; return the kept prompts and the number dropped."""
    kept: dict[str, Prompt] = {}
    total = 0
    for prompt in prompts:
        total += 1
        kept.setdefault(prompt.id, prompt)
    return list(kept.values()), total - len(kept)


def split_prompts(prompts: Iterable[Prompt], cfg: SplitConfig | None = None) -> PromptSplit:
    """Deduplicate, shuffle (seeded) and split. With at least two prompts and a fraction above 0, both parts get at
    least one prompt."""
    cfg = cfg or SplitConfig()
    prompts = list(prompts)
    unique, n_duplicates = dedupe(prompts)
    order = sorted(unique, key=lambda p: p.id)
    random.Random(cfg.seed or 0).shuffle(order)
    n_held = round(len(order) * cfg.held_out_fraction)
    if cfg.held_out_fraction > 0 and len(order) >= 2:
        n_held = min(max(n_held, 1), len(order) - 1)
    held_out, train = order[:n_held], order[n_held:]
    train, held_out = train[: cfg.max_train], held_out[: cfg.max_held_out]
    record = SplitRecord(
        seed=cfg.seed or 0,
        held_out_fraction=cfg.held_out_fraction,
        n_input=len(prompts),
        n_duplicates=n_duplicates,
        train=[p.id for p in train],
        held_out=[p.id for p in held_out],
    )
    return PromptSplit(train, held_out, record)
