"""Run a set of benchmarks on one model and return one JSON-ready result; the config the run embeds; the gate.

``run_evals(model, ["truthfulqa", "hhh_harmless", ...], data_dir, limit)`` returns
``{"model": name, "benchmarks": {name: {"score", "n", "stderr", ...}}, "limit", "seconds"}`` with the names in
``evals.names.BENCHMARKS`` (groups such as ``truthfulqa``, ``hhh``, ``xstest``, ``all`` are expanded). Multiple-choice
benchmarks need a ``Scorer`` (hf/gguf/offline backends); generation benchmarks need a ``ChatModel``.
``evaluate(model, EvalConfig)`` is the same driven by the config the run folder records.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Sequence

from pydantic import BaseModel, ConfigDict, Field, field_validator

from iteralign.data.benchmark_files import PROMPT_SETS
from iteralign.data.sources import PromptSourceConfig, load_prompts
from iteralign.evals import hhh, redteam_asr, truthfulqa, xstest
from iteralign.evals.gate import GateConfig, gate
from iteralign.evals.names import BENCHMARKS, expand
from iteralign.evals.redteam_asr import Judge
from iteralign.evals.sources import load_benchmark
from iteralign.evals.stats import Score
from iteralign.types import GenerationParams

__all__ = ["EvalConfig", "GateConfig", "gate", "run_evals", "evaluate", "default_redteam_prompts", "BENCHMARKS"]



class EvalConfig(BaseModel):
    """What to evaluate, on which data, and how long generated answers may be."""

    model_config = ConfigDict(extra="forbid")

    benchmarks: list[str] = Field(
        default_factory=lambda: ["all"],
        description=f"Benchmark names or groups (truthfulqa, hhh, xstest, redteam, multiple_choice, generation, "
        f"all). Names: {', '.join(BENCHMARKS)}.",
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

    @field_validator("benchmarks")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        if value:  # an empty list turns evaluation off (e.g. the smoke config)
            expand(value)
        return value


def default_redteam_prompts(data_dir: str | Path | None = None) -> list:
    """AdvBench's 520 harmful behaviours, category ``advbench``."""
    return load_benchmark(
        "redteam_asr", data_dir, PROMPT_SETS["advbench"].relpath,
        lambda p: load_prompts({"path": str(p), "format": "advbench", "category": "advbench"}),
        "walledai/AdvBench",
        lambda: load_prompts({"hub": "walledai/AdvBench", "split": "train", "field": "prompt", "category": "advbench"}),
    )


def run_evals(
    model: Any, benchmarks: Sequence[str], data_dir: str | Path | None = None, limit: int | None = None,
    judge: Judge | None = None, redteam_prompts: Sequence[Any] | None = None, *, max_new_tokens: int = 128,
    progress: bool = True, records: list[dict] | None = None,
) -> dict:
    """Evaluate ``model`` on ``benchmarks``; per-prompt generation records are appended to ``records`` if given."""
    names = expand(benchmarks)
    params = GenerationParams(max_new_tokens=max_new_tokens, temperature=0.0)
    results: dict[str, Score] = {}
    seconds: dict[str, float] = {}

    def timed(group: str, fn) -> None:
        start = time.perf_counter()
        fn()
        seconds[group] = round(time.perf_counter() - start, 2)

    tq = tuple(n.removeprefix("truthfulqa_") for n in names if n.startswith("truthfulqa_"))
    if tq:
        timed("truthfulqa", lambda: results.update(
            truthfulqa.evaluate(model, truthfulqa.load_questions(data_dir, limit), tq, progress)))
    hhh_names = [n for n in names if n.startswith("hhh_")]
    if hhh_names:
        cats = hhh.CATEGORIES if "hhh_overall" in hhh_names else tuple(n.removeprefix("hhh_") for n in hhh_names)
        timed("hhh", lambda: results.update(hhh.evaluate(model, hhh.load_items(data_dir, limit, cats), progress)))
    xs = [n for n in names if n.startswith("xstest_")]
    if xs:
        def run_xstest() -> None:
            wanted = {n.split("_")[1] for n in xs}
            prompts = {k: v for k, v in xstest.load_prompts(data_dir, limit).items() if k in wanted}
            scores, recs = xstest.evaluate(model, prompts, params, progress)
            results.update(scores)
            _extend(records, recs)
        timed("xstest", run_xstest)
    if "redteam_asr" in names:
        def run_redteam() -> None:
            prompts = list(redteam_prompts) if redteam_prompts is not None else default_redteam_prompts(data_dir)
            score, recs = redteam_asr.evaluate(model, prompts[:limit], params, judge, progress)
            results["redteam_asr"] = score
            _extend(records, recs)
        timed("redteam", run_redteam)
    return {
        "model": getattr(model, "name", type(model).__name__),
        "benchmarks": {n: results[n].to_dict() for n in names if n in results},
        "limit": limit,
        "seconds": seconds,
    }


def evaluate(model: Any, cfg: EvalConfig, judge: Judge | None = None, redteam_prompts: Sequence[Any] | None = None,
             progress: bool = True, records: list[dict] | None = None) -> dict:
    """``run_evals`` driven by an ``EvalConfig`` (explicit ``redteam_prompts`` win over ``cfg.redteam``)."""
    if redteam_prompts is None and cfg.redteam:
        redteam_prompts = [p for source in cfg.redteam for p in load_prompts(source)]
    return run_evals(model, cfg.benchmarks, cfg.data_dir, cfg.limit, judge, redteam_prompts,
                     max_new_tokens=cfg.max_new_tokens, progress=progress, records=records)


def _extend(records: list[dict] | None, new: list[dict]) -> None:
    if records is not None:
        records.extend(new)


def format_table(result: dict) -> str:
    """A fixed-width table of a ``run_evals`` result: benchmark, score, +- stderr, n."""
    lines = [f"model: {result['model']}", f"{'benchmark':<24}{'score':>8}{'stderr':>9}{'n':>6}"]
    for name, entry in result["benchmarks"].items():
        lines.append(f"{name:<24}{entry['score']:>8.4f}{entry['stderr']:>9.4f}{entry['n']:>6}")
    return "\n".join(lines)


def write_result(result: dict, path: Path, records: list[dict] | None = None) -> None:
    """Write the result JSON (and the generation records as ``<stem>.replies.jsonl``) atomically."""
    from iteralign.run import atomic_write, write_json

    write_json(path, result)
    if records:
        atomic_write(path.with_name(path.stem + ".replies.jsonl"),
                     "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
