"""Run a set of benchmarks on one model and return one JSON-ready result; the config the run embeds; the gate.

``run_evals(model, ["truthfulqa", "hhh_harmless", ...], data_dir, limit)`` returns
``{"model": name, "benchmarks": {name: {"score", "n", "stderr", ...}}, "limit", "seconds"}`` with the score names of
the registered benchmarks (``evals.names``; groups such as ``truthfulqa``, ``hhh``, ``xstest``, ``all`` are
expanded). Multiple-choice benchmarks need a model that scores log-likelihoods (hf/gguf/offline/vllm backends);
generation benchmarks need one that generates. ``evaluate(model, EvalConfig)`` is the same driven by the config the
run folder records.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator

from iteralign.data.sources import PromptSourceConfig, load_prompts
from iteralign.evals.benchmark import BENCHMARKS, EvalContext, EvalReply
from iteralign.evals.gate import GateConfig, gate
from iteralign.evals.names import expand, owner
from iteralign.evals.stats import Score
from iteralign.judges.base import JudgeConfig
from iteralign.records import Prompt
from iteralign.types import GenerationParams

if TYPE_CHECKING:  # pragma: no cover
    from iteralign.judges import JudgePanel

__all__ = ["EvalConfig", "GateConfig", "gate", "run_evals", "evaluate"]



class EvalConfig(BaseModel):
    """What to evaluate, on which data, and how long generated answers may be."""

    model_config = ConfigDict(extra="forbid")

    benchmarks: list[str] = Field(
        default_factory=lambda: ["all"],
        description="Benchmark names or groups (truthfulqa, hhh, xstest, redteam, multiple_choice, generation, all; "
        "plugins add more): truthfulqa_mc1/mc2, hhh_harmless/helpful/honest/other/overall, redteam_asr, "
        "xstest_safe_refusal, xstest_unsafe_refusal.",
    )
    data_dir: str | None = Field(None, description="Benchmark folder tried first (then $ITERALIGN_BENCHMARKS, then "
                                 "the copy shipped with the package, then the hub).")
    limit: int | None = Field(None, ge=1, description="Items per benchmark (per HHH category; per XSTest "
                              "label, stratified over its prompt types and seeded).")
    max_new_tokens: int = Field(128, ge=1, description="Reply length for generation benchmarks (greedy).")
    redteam: list[PromptSourceConfig] | None = Field(
        None, description="Held-out red-team prompt sources; default: AdvBench harmful behaviours (not a training "
        "source of the paper's loop).",
    )
    judge: JudgeConfig | None = Field(
        None, description="The judge that scores held-out attack success, apart from the judge that filters training "
        "data (`judge`); default: the same panel. Reports show ASR under both when they differ.")

    @field_validator("benchmarks")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        if value:  # an empty list turns evaluation off (e.g. the smoke config)
            expand(value)
        return value


def run_evals(
    model: Any, benchmarks: Sequence[str], data_dir: str | Path | None = None, limit: int | None = None,
    judge: "JudgePanel | None" = None, redteam_prompts: Sequence[Prompt] | None = None, *, max_new_tokens: int = 128,
    progress: bool = True, records: list[EvalReply] | None = None, work_dir: Path | None = None,
    filter_judge: "JudgePanel | None" = None,
) -> dict:
    """Evaluate ``model`` on ``benchmarks``; the generated, judged answers are appended to ``records`` if given.
    With ``work_dir``, generating benchmarks log their judged answers there as they go, and a rerun after a kill
    continues from them. With ``filter_judge`` (the training filter, when ``judge`` is another panel) the red-team
    ASR is also given under the filter."""
    names = expand(benchmarks)
    ctx = EvalContext(model, data_dir, limit, GenerationParams(max_new_tokens=max_new_tokens, temperature=0.0),
                      judge, redteam_prompts, progress, work_dir=work_dir, filter_judge=filter_judge)
    results: dict[str, Score] = {}
    seconds: dict[str, float] = {}
    for group in dict.fromkeys(owner(n) for n in names):
        start = time.perf_counter()
        out = BENCHMARKS.get(group)().run(ctx, [n for n in names if owner(n) == group])
        seconds[group] = round(time.perf_counter() - start, 2)
        results.update(out.scores)
        if records is not None:
            records.extend(out.replies)
    return {
        "model": getattr(model, "name", type(model).__name__),
        "benchmarks": {n: results[n].to_dict() for n in names if n in results},
        "limit": limit,
        "seconds": seconds,
    }


def evaluate(model: Any, cfg: EvalConfig, judge: "JudgePanel | None" = None,
             redteam_prompts: Sequence[Prompt] | None = None, progress: bool = True,
             records: list[EvalReply] | None = None, work_dir: Path | None = None,
             filter_judge: "JudgePanel | None" = None) -> dict:
    """``run_evals`` driven by an ``EvalConfig`` (explicit ``redteam_prompts`` win over ``cfg.redteam``)."""
    if redteam_prompts is None and cfg.redteam:
        redteam_prompts = [p for source in cfg.redteam for p in load_prompts(source)]
    return run_evals(model, cfg.benchmarks, cfg.data_dir, cfg.limit, judge, redteam_prompts,
                     max_new_tokens=cfg.max_new_tokens, progress=progress, records=records, work_dir=work_dir,
                     filter_judge=filter_judge)


def format_table(result: dict) -> str:
    """A fixed-width table of a ``run_evals`` result: benchmark, score, +- stderr, n."""
    lines = [f"model: {result['model']}", f"{'benchmark':<24}{'score':>8}{'stderr':>9}{'n':>6}"]
    for name, entry in result["benchmarks"].items():
        lines.append(f"{name:<24}{entry['score']:>8.4f}{entry['stderr']:>9.4f}{entry['n']:>6}")
        other = entry.get("training_filter")
        if other:  # the red-team ASR under the training filter, beside the evaluation judge's
            asr = "-" if other["asr"] is None else f"{other['asr']:.4f}"
            lines.append(f"{'  under training filter':<24}{asr:>8}{'':>9}{other['n']:>6}  ({other['unknown']} "
                         f"unknown, {other['disagree']} verdicts differ)")
    return "\n".join(lines)


def write_result(result: dict, path: Path, records: list[EvalReply] | None = None) -> None:
    """Write the result JSON (and the generated answers as ``<stem>.replies.jsonl``) atomically."""
    from iteralign.run import atomic_write, write_json

    write_json(path, result)
    if records:
        atomic_write(path.with_name(path.stem + ".replies.jsonl"),
                     "".join(json.dumps(r.to_json(), ensure_ascii=False) + "\n" for r in records))
