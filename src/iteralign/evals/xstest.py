"""XSTest (v2): refusal rate on its 250 safe prompts (over-refusal) and on its 200 unsafe contrast prompts.

Safe prompts look dangerous but are harmless ("How do I kill a Python process?"); a well-calibrated model answers
them and refuses the unsafe ones. Replies are generated greedily and classified by ``evals.refusal.is_refusal``
(rule-based, so no judge model is needed). Lower ``xstest_safe_refusal`` is better; higher
``xstest_unsafe_refusal`` is better.

A ``limit`` takes a sample stratified over the prompt types, for both labels (``load_prompts``).

Data: ``xstest/xstest_prompts.csv`` (``id,prompt,type,label,focus,note``; label ``safe``/``unsafe``) in the data
folder, else the hub's ``walledai/XSTest`` (``test`` split, same columns).
"""

from __future__ import annotations

import csv
from pathlib import Path

from iteralign.answering import answer_all
from iteralign.evals.benchmark import BENCHMARKS, Benchmark, BenchmarkOutput, EvalContext, EvalReply
from iteralign.evals.refusal import is_refusal
from iteralign.evals.sampling import stratified
from iteralign.evals.sources import hub_rows, load_benchmark
from iteralign.evals.stats import Score, accuracy
from iteralign.models.base import ChatModel
from iteralign.records import Prompt
from iteralign.types import GenerationParams

RELPATH = "xstest/xstest_prompts.csv"
HUB = ("walledai/XSTest", None, "test")
LABELS = ("safe", "unsafe")


def load_prompts(data_dir: str | Path | None = None, limit: int | None = None, seed: int = 0) -> dict[str, list[dict]]:
    """``{"safe": [row, ...], "unsafe": [...]}``, each row with ``prompt`` and ``type``.

    ``limit`` rows per label are a sample stratified over ``type`` (``evals.sampling.stratified``: proportional,
    seeded, in file order): the file lists its prompts type by type, so its first 60 safe rows would be 3 of the 10
    safe types. With ``limit`` 60, each of the 10 safe types gives 6 prompts, each of the 8 unsafe types 7 or 8.
    """
    rows = load_benchmark("xstest", data_dir, RELPATH, _read_local, HUB[0], lambda: hub_rows(*HUB))
    by_label: dict[str, list[dict]] = {label: [] for label in LABELS}
    for i, row in enumerate(rows, start=2):
        label = str(row.get("label", "")).strip()
        if label not in by_label or not str(row.get("prompt", "")).strip():
            raise ValueError(f"{RELPATH} row {i}: expected label safe/unsafe and a prompt, got {row!r}")
        by_label[label].append(row)
    return {label: stratified(rs, limit, key=lambda row: row.get("type", ""), seed=seed)
            for label, rs in by_label.items()}


def _read_local(path: Path) -> list[dict]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def as_prompts(rows: list[dict], label: str) -> list[Prompt]:
    """XSTest rows as prompt records: safe prompts are benign, unsafe ones harmful; the category is the type."""
    intent = "benign" if label == "safe" else "harmful"
    return [Prompt.make(r["prompt"], r.get("type"), "xstest", intent) for r in rows]


def evaluate(model: ChatModel, prompts: dict[str, list[dict]], params: GenerationParams,
             progress: bool = True) -> tuple[dict[str, Score], list[EvalReply]]:
    """``xstest_safe_refusal`` and ``xstest_unsafe_refusal``, plus the per-prompt replies (outcome: refused)."""
    scores, replies = {}, []
    for label, rows in prompts.items():
        if not rows:
            continue
        answers = answer_all(model, as_prompts(rows, label), params, f"xstest {label}", progress=progress)
        refused = [is_refusal(a.response) for a in answers]
        scores[f"xstest_{label}_refusal"] = accuracy(refused)
        replies += [EvalReply(benchmark=f"xstest_{label}", answer=a, outcome=r) for a, r in zip(answers, refused)]
    return scores, replies


@BENCHMARKS.register("xstest")
class XSTest(Benchmark):
    scores = ("xstest_safe_refusal", "xstest_unsafe_refusal")
    lower_is_better = frozenset({"xstest_safe_refusal"})
    needs = "generator"
    order = 40

    def run(self, ctx: EvalContext, wanted: list[str]) -> BenchmarkOutput:
        labels = {n.split("_")[1] for n in wanted}
        prompts = {k: v for k, v in load_prompts(ctx.data_dir, ctx.limit).items() if k in labels}
        scores, replies = evaluate(ctx.model, prompts, ctx.params, ctx.progress)
        return BenchmarkOutput(scores, replies)
