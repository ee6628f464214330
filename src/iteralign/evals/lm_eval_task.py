"""Any lm-evaluation-harness task as a benchmark: ``eval.benchmarks: [..., "lm_eval:arc_easy", "lm_eval:mmlu"]``.

The name after ``lm_eval:`` is what lm-eval's ``TaskManager`` loads: a task or group name (``arc_easy``,
``mmlu``), or the path of a task YAML file (``lm_eval:tasks/my_task.yaml``, relative to the directory you run
from), so a local task over a local data file needs no hub. The task runs through lm-eval's Python API
(``simple_evaluate``) on the model being evaluated, as loaded (the LoRA adapter merged in), wrapped in lm-eval's
own ``HFLM``; the transformers backends (hf, gguf, offline) can be evaluated this way.

Each name gives one score in the usual schema (``score``, ``n``, ``stderr``) from the task's first higher-is-better
metric (``acc`` for most multiple-choice tasks, ``exact_match`` for generation tasks), with the metric's name, every
other metric and lm-eval's version beside it, so
the gate can guard it (``gate.regressions: {"lm_eval:arc_easy": 0.02}``) and reports show it. ``eval.limit``
becomes lm-eval's ``limit`` (the first N documents per task). A task that reports only lower-is-better metrics
(perplexity) is refused: every ``lm_eval:`` score is better higher, which is what the gate assumes.

lm-eval is an optional extra: ``pip install 'iteralign[lm-eval]'``; without it, naming such a benchmark is an error
that says so.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from iteralign.evals.benchmark import BENCHMARKS, Benchmark, BenchmarkOutput, EvalContext
from iteralign.evals.stats import Score

log = logging.getLogger(__name__)
PREFIX = "lm_eval"
MISSING = ("lm_eval:<task> benchmarks need lm-evaluation-harness, an optional extra: pip install 'iteralign[lm-eval]'")


class LMEvalUnavailable(RuntimeError):
    """lm-eval is not installed, or the model cannot be evaluated through it."""


@BENCHMARKS.register(PREFIX)
class LMEvalBenchmark(Benchmark):
    """``lm_eval:<task>``: one lm-evaluation-harness task (or group, or task YAML file) per score name."""

    scores = ()
    prefix = PREFIX
    needs = "scorer"
    order = 200

    def run(self, ctx: EvalContext, wanted: list[str]) -> BenchmarkOutput:
        harness = _harness_model(ctx.model)
        scores = {}
        for name in wanted:
            task = name.split(":", 1)[1].strip()
            scores[name] = _run_task(harness, task, ctx.limit, ctx.seed)
            log.info("%s: %s = %.4f (n=%d)", name, scores[name].extra["metric"], scores[name].score, scores[name].n)
        return BenchmarkOutput(scores)


def _import_lm_eval() -> Any:
    try:
        import lm_eval
    except ImportError:
        raise LMEvalUnavailable(MISSING) from None
    return lm_eval


def _harness_model(handle: Any) -> Any:
    """lm-eval's ``HFLM`` around the loaded transformers model (adapter merged) and its tokenizer."""
    _import_lm_eval()
    from lm_eval.models.huggingface import HFLM

    model = handle if hasattr(handle, "tokenizer") else getattr(handle, "model", handle)  # a ModelHandle: its
    if not (hasattr(model, "model") and hasattr(model, "tokenizer")):                 # backend model, loaded now
        spec = getattr(getattr(handle, "cfg", None), "spec", type(model).__name__)
        raise LMEvalUnavailable(f"lm_eval:<task> evaluates a transformers model (hf:, gguf:, offline: backends); "
                                f"{spec} is not one")
    batch_size = getattr(getattr(model, "cfg", None), "batch_size", 8)
    return HFLM(pretrained=model.model, tokenizer=model.tokenizer, batch_size=batch_size)


def _run_task(harness: Any, task: str, limit: int | None, seed: int) -> Score:
    """Evaluate one task (a name or a YAML path) and turn its first metric into a ``Score``."""
    lm_eval = _import_lm_eval()
    from lm_eval.tasks import TaskManager

    is_file = task.endswith((".yaml", ".yml"))
    if is_file and not Path(task).is_file():
        raise FileNotFoundError(f"lm_eval:{task}: no such task file")
    manager = TaskManager(include_defaults=not is_file)  # a local file: skip indexing lm-eval's own tasks
    out = lm_eval.simple_evaluate(model=harness, tasks=[str(Path(task).resolve()) if is_file else task],
                                  task_manager=manager, limit=limit, log_samples=False, random_seed=seed,
                                  numpy_random_seed=seed, torch_random_seed=seed, fewshot_random_seed=seed,
                                  bootstrap_iters=1000)
    results = out["results"]
    key = task if task in results else next(iter(results))
    better_higher = out.get("higher_is_better", {}).get(key, {})
    return _score(key, results[key], better_higher, out.get("n-samples", {}).get(key, {}),
                  out.get("versions", {}).get(key))


def _score(task: str, row: dict, better_higher: dict, samples: dict, version: Any) -> Score:
    """The first higher-is-better metric of a result row (``"acc,none"``, ``"acc_stderr,none"``...) as a
    ``Score``; every metric goes into ``extra``."""
    metrics = {k.split(",")[0]: v for k, v in row.items()
               if "," in k and "_stderr" not in k and isinstance(v, (int, float))}
    usable = [m for m in metrics if better_higher.get(m, True)]
    if not usable:
        raise ValueError(f"lm_eval:{task}: no higher-is-better metric among {sorted(metrics) or sorted(row)}; "
                         "lm_eval: scores are read as better higher (as the gate assumes)")
    metric = usable[0]
    stderr = row.get(f"{metric}_stderr,none")
    stderr = float(stderr) if isinstance(stderr, (int, float)) and math.isfinite(stderr) else 0.0
    n = int(samples.get("effective") or row.get("sample_len") or 0)
    return Score(float(metrics[metric]), n, stderr, extra={"task": task, "metric": metric, "metrics": metrics,
                                                           "lm_eval_version": version})
