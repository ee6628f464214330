"""BIG-bench HHH alignment (harmless, helpful, honest, other, overall) as ``multiple_choice_grade``.

Each example is a human request with two (or more) assistant replies, one of them marked better. The context is
BIG-bench's formatting of the task (``example_input_prefix + input + example_output_prefix``, i.e.
``"\\nHuman: " + input + "\\nAssistant:"``); each reply is scored as the continuation ``" " + reply``. The grade
of an example is the target score of its top reply (1 or 0); a category's score is the mean grade, ``overall``
is the mean over all 221 examples (not the mean of the four categories).

The leading space: BIG-bench's own models concatenate context and target with no delimiter, while
lm-evaluation-harness's ``bigbench_hhh_alignment_multiple_choice`` (hails/bigbench ``inputs`` with the same
prefixes) inserts its default target delimiter ``" "``. We follow lm-eval, so that the two can be compared on the
same model (bench/compare_lm_eval.py); ``TARGET_DELIMITER`` is the one place to change it.

Data: ``bigbench_hhh/<category>/task.json`` (BIG-bench task JSON) in the data folder, else the hub's
``HuggingFaceH4/hhh_alignment`` (one config per category, ``test`` split).
"""

from __future__ import annotations

import json
from pathlib import Path

from iteralign.evals.benchmark import BENCHMARKS, Benchmark, BenchmarkOutput, EvalContext
from iteralign.evals.multiple_choice import MCItem, grade, loglikelihoods
from iteralign.evals.sources import hub_rows, load_benchmark
from iteralign.evals.stats import Score
from iteralign.models.base import Scorer

CATEGORIES = ("harmless", "helpful", "honest", "other")
INPUT_PREFIX = "\nHuman: "
OUTPUT_PREFIX = "\nAssistant:"
TARGET_DELIMITER = " "
HUB = "HuggingFaceH4/hhh_alignment"


def load_items(data_dir: str | Path | None = None, limit: int | None = None,
               categories: tuple[str, ...] = CATEGORIES) -> list[MCItem]:
    """The HHH examples of ``categories`` as multiple-choice items (``limit`` applies per category)."""
    out: list[MCItem] = []
    for cat in categories:
        if cat not in CATEGORIES:
            raise ValueError(f"unknown HHH category {cat!r}; expected one of {CATEGORIES}")
        examples = load_benchmark(f"hhh_{cat}", data_dir, f"bigbench_hhh/{cat}/task.json", _read_local,
                                  f"{HUB} ({cat})", lambda cat=cat: _read_hub(cat))
        out += [_item(inp, targets, cat) for inp, targets in examples[:limit]]
    return out


def _item(input_text: str, targets: list[tuple[str, float]], category: str) -> MCItem:
    return MCItem(INPUT_PREFIX + input_text + OUTPUT_PREFIX, tuple(TARGET_DELIMITER + t for t, _ in targets),
                  tuple(float(s) for _, s in targets), category)


def _read_local(path: Path) -> list[tuple[str, list[tuple[str, float]]]]:
    try:
        task = json.loads(path.read_text(encoding="utf-8"))
        return [(ex["input"], list(ex["target_scores"].items())) for ex in task["examples"]]
    except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a BIG-bench task JSON with examples [{{input, target_scores}}]: "
                         f"{type(exc).__name__}: {exc}") from exc


def _read_hub(category: str) -> list[tuple[str, list[tuple[str, float]]]]:
    return [(r["input"], list(zip(r["targets"]["choices"], r["targets"]["labels"])))
            for r in hub_rows(HUB, category, "test")]


def evaluate(scorer: Scorer, items: list[MCItem], progress: bool = True) -> dict[str, Score]:
    """``hhh_<category>`` for each category present, and ``hhh_overall`` over all items."""
    lls = loglikelihoods(scorer, items, progress=progress, desc="hhh")
    out = {}
    for cat in dict.fromkeys(it.category for it in items):
        idx = [i for i, it in enumerate(items) if it.category == cat]
        out[f"hhh_{cat}"] = grade([items[i] for i in idx], [lls[i] for i in idx])
    out["hhh_overall"] = grade(items, lls)
    return out


@BENCHMARKS.register("hhh")
class HHH(Benchmark):
    scores = ("hhh_harmless", "hhh_helpful", "hhh_honest", "hhh_other", "hhh_overall")
    order = 20

    def run(self, ctx: EvalContext, wanted: list[str]) -> BenchmarkOutput:
        cats = CATEGORIES if "hhh_overall" in wanted else tuple(n.removeprefix("hhh_") for n in wanted)
        scores = evaluate(ctx.model, load_items(ctx.data_dir, ctx.limit, cats), ctx.progress)
        return BenchmarkOutput({k: v for k, v in scores.items() if k in wanted})
