"""The benchmark protocol and registry: what ``eval.benchmarks`` can name.

A ``Benchmark`` is one data set and the scores it produces (TruthfulQA gives ``truthfulqa_mc1`` and
``truthfulqa_mc2`` from one pass). It is registered under its group name in ``BENCHMARKS`` (iteralign's own in
``evals.builtin``; others through the ``iteralign.benchmarks`` entry-point group) and declares its score names
(or, for an open family such as ``lm_eval:<task>``, a name ``prefix``), which of them are better when lower, and
whether it scores log-likelihoods (``needs = "scorer"``) or generates answers (``"generator"``). ``run(ctx, wanted)``
returns the wanted scores and the per-item records (the generated answers, with their verdicts) that
``eval.replies.jsonl`` keeps.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Sequence

from iteralign.evals.stats import Score
from iteralign.records import Answer, Prompt, Record
from iteralign.registry import Registry
from iteralign.types import GenerationParams

if TYPE_CHECKING:  # pragma: no cover
    from iteralign.judges import JudgePanel


class EvalReply(Record):
    """One generated answer of an evaluation, with its verdict and the benchmark's outcome for it."""

    benchmark: str
    answer: Answer
    outcome: bool | None = None  # e.g. attack succeeded; refused


@dataclass
class EvalContext:
    """What a benchmark run gets: the model (a ``ModelHandle``), data location and size, decoding, the judge."""

    model: Any
    data_dir: str | Path | None = None
    limit: int | None = None
    params: GenerationParams = field(default_factory=lambda: GenerationParams(max_new_tokens=128))
    judge: "JudgePanel | None" = None
    redteam_prompts: Sequence[Prompt] | None = None
    progress: bool = True
    seed: int = 0
    work_dir: Path | None = None  # where a generating benchmark logs judged answers as it goes (resumable)
    filter_judge: "JudgePanel | None" = None  # the training filter, when the evaluation judge is another panel


@dataclass
class BenchmarkOutput:
    scores: dict[str, Score]
    replies: list[EvalReply] = field(default_factory=list)


class Benchmark(ABC):
    """One benchmark: its score names, their direction, what it needs from the model, and how to run it."""

    scores: ClassVar[tuple[str, ...]]
    lower_is_better: ClassVar[frozenset[str]] = frozenset()
    needs: ClassVar[Literal["scorer", "generator"]] = "scorer"
    order: ClassVar[int] = 100  # where its scores come in eval.json and tables (built-ins 10-40)
    #: A family of open-ended score names ``<prefix>:<anything>`` (``lm_eval:<task>``) instead of fixed ``scores``:
    #: ``eval.benchmarks`` and ``gate.regressions`` accept any name with the prefix; ``run`` resolves it.
    prefix: ClassVar[str | None] = None

    @classmethod
    def is_lower_better(cls, name: str) -> bool:
        """Whether lower is better for the score ``name`` (open-ended families decide from the name)."""
        return name in cls.lower_is_better

    @abstractmethod
    def run(self, ctx: EvalContext, wanted: list[str]) -> BenchmarkOutput:
        """Compute the ``wanted`` scores (a subset of ``scores``)."""


#: Every benchmark ``eval.benchmarks`` can name, by group name.
BENCHMARKS: Registry[type[Benchmark]] = Registry("benchmark", "iteralign.benchmarks",
                                                 builtins=("iteralign.evals.builtin",))
