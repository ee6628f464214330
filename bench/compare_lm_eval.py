"""Compare `iteralign eval` with lm-evaluation-harness on the same model and the same local data files.

What it does: converts (once) SmolLM2-135M-Instruct to a float32 safetensors folder, writes TruthfulQA and BIG-bench
HHH from the benchmark folder as JSONL files, writes lm-eval task YAMLs that *include lm-eval's own*
``truthfulqa_mc1`` / ``truthfulqa_mc2`` / ``bigbench_hhh_alignment_multiple_choice`` tasks and only repoint their
data at those files, runs both evaluators (same model folder, float32, same batch size, CPU) and prints both
numbers, wall times and CPU times (model load included; CPU time is the fairer figure on a shared machine), and
the token positions each evaluator ran through the model (counted by a hook on the input embedding), from which
bench/roofline.py takes the scoring throughput.
Writes bench/out/compare_lm_eval.json.

Run:  make bench-deps && .venv/bin/python bench/compare_lm_eval.py [--truthfulqa-limit 50] [--hhh-limit N]

lm-eval scores every (context, choice) pair as its own sequence, re-reading TruthfulQA's 6-shot preamble each time;
on 2 CPU cores the full 817 questions take it hours, hence the default TruthfulQA subset (the first 50 questions,
the same for both). HHH runs in full by default.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from iteralign.data.benchmark_files import packaged_dir  # noqa: E402
from iteralign.evals import hhh, truthfulqa  # noqa: E402
from iteralign.evals.suite import run_evals  # noqa: E402

MODEL = "smollm2-135m-instruct"
NAMES = ["truthfulqa_mc1", "truthfulqa_mc2", "hhh_harmless", "hhh_helpful", "hhh_honest", "hhh_other", "hhh_overall"]


def write_lm_eval_tasks(data_dir: Path, out: Path, tq_limit: int | None, hhh_limit: int | None) -> list[str]:
    """JSONL data (HF ``truthful_qa`` and ``hails/bigbench`` layouts) and task YAMLs including lm-eval's tasks."""
    import lm_eval

    tasks_root = Path(lm_eval.__file__).parent / "tasks"
    rows = truthfulqa.load_questions(data_dir, tq_limit)
    with (out / "truthfulqa.jsonl").open("w") as f:
        for q in rows:
            f.write(json.dumps({"question": q["question"], **{
                f"{w}_targets": {"choices": [a for a, _ in q[w]], "labels": [int(lab) for _, lab in q[w]]}
                for w in ("mc1", "mc2")}}) + "\n")
    names = []
    for which in ("mc1", "mc2"):
        name = f"local_truthfulqa_{which}"
        _local_task(out, name, tasks_root / "truthfulqa" / f"truthfulqa_{which}.yaml", "validation",
                    out / "truthfulqa.jsonl")
        names.append(name)
    for cat in hhh.CATEGORIES:
        items = hhh.load_items(data_dir, hhh_limit, (cat,))
        with (out / f"hhh_{cat}.jsonl").open("w") as f:
            for it in items:  # BIG-bench's own formatting: prefix + input + output prefix; raw targets
                targets = [c.removeprefix(hhh.TARGET_DELIMITER) for c in it.choices]
                best = targets[max(range(len(targets)), key=lambda i: it.labels[i])]
                f.write(json.dumps({"inputs": it.context, "targets": [best], "multiple_choice_targets": targets,
                                    "multiple_choice_scores": [int(x) for x in it.labels]}) + "\n")
        name = f"local_hhh_{cat}"
        _local_task(out, name, tasks_root / "bigbench" / "multiple_choice" / "hhh_alignment.yaml", "train",
                    out / f"hhh_{cat}.jsonl", extra="test_split: train\n")
        names.append(name)
    return names


def _local_task(out: Path, name: str, include: Path, split: str, data_file: Path, extra: str = "") -> None:
    """An lm-eval task YAML that reuses lm-eval's own task file but reads ``data_file`` as ``split``."""
    (out / f"{name}.yaml").write_text(
        f"include: {include}\ntask: {name}\ntag: []\ndataset_path: json\ndataset_name: null\n{extra}"
        f"dataset_kwargs:\n  data_files:\n    {split}: {data_file}\n")


class TokenCounter:
    """Counts the token positions every model forward actually computes (padding included), for either evaluator:
    a global forward pre-hook on ``nn.Embedding`` sees the ``input_ids`` both pass to the input embedding."""

    def __enter__(self) -> "TokenCounter":
        import torch

        self.tokens = 0

        def hook(module, inputs):
            if isinstance(module, torch.nn.Embedding) and inputs and inputs[0].dtype == torch.long:
                self.tokens += inputs[0].numel()

        self._handle = torch.nn.modules.module.register_module_forward_pre_hook(hook)
        return self

    def __exit__(self, *exc) -> None:
        self._handle.remove()


def run_lm_eval(model_dir: Path, task_dir: Path, tasks: list[str], batch_size: int) -> tuple[dict, tuple]:
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    start, cpu = time.perf_counter(), time.process_time()
    with TokenCounter() as counted:
        res = simple_evaluate(model="hf", model_args=f"pretrained={model_dir},dtype=float32", tasks=tasks,
                              batch_size=batch_size, device="cpu", task_manager=TaskManager(include_path=str(task_dir)))
    seconds = (time.perf_counter() - start, time.process_time() - cpu, counted.tokens)
    scores = {t.removeprefix("local_"): {"score": r["acc,none"], "stderr": r.get("acc_stderr,none")}
              for t, r in res["results"].items()}
    n = {t.removeprefix("local_"): v["effective"] if isinstance(v, dict) else v
         for t, v in res.get("n-samples", {}).items()}
    cats = [f"hhh_{c}" for c in hhh.CATEGORIES]
    total = sum(n[c] for c in cats)
    scores["hhh_overall"] = {"score": sum(scores[c]["score"] * n[c] for c in cats) / total, "stderr": None}
    return scores, seconds


def run_ours(data_dir: Path, tq_limit: int | None, hhh_limit: int | None, batch_size: int) -> tuple[dict, tuple]:
    from iteralign.models.base import ModelConfig, load_model

    start, cpu = time.perf_counter(), time.process_time()
    model = load_model(ModelConfig(spec=f"offline:{MODEL}", dtype="float32", batch_size=batch_size, device="cpu"))
    with TokenCounter() as counted:
        res = run_evals(model, ["truthfulqa"], data_dir, tq_limit)["benchmarks"]
        res.update(run_evals(model, ["hhh"], data_dir, hhh_limit)["benchmarks"])
    return res, (time.perf_counter() - start, time.process_time() - cpu, counted.tokens)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=packaged_dir(), help="default: the copy shipped in the package")
    ap.add_argument("--truthfulqa-limit", type=int, default=50, help="first N questions (0 = all 817)")
    ap.add_argument("--hhh-limit", type=int, default=0, help="first N examples per category (0 = all)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "compare_lm_eval.json")
    args = ap.parse_args()
    tq_limit, hhh_limit = args.truthfulqa_limit or None, args.hhh_limit or None
    from iteralign.models.offline import ensure_converted

    model_dir = ensure_converted(MODEL)
    load_before = os.getloadavg()[0]
    ours, ours_s = run_ours(args.data_dir, tq_limit, hhh_limit, args.batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        tasks = write_lm_eval_tasks(args.data_dir, Path(tmp), tq_limit, hhh_limit)
        theirs, theirs_s = run_lm_eval(model_dir, Path(tmp), tasks, args.batch_size)
    rows = {name: {"iteralign": ours[name]["score"], "lm_eval": theirs[name]["score"], "n": ours[name]["n"],
                   "diff_points": round(100 * (ours[name]["score"] - theirs[name]["score"]), 4)} for name in NAMES}
    result = {"model": f"offline:{MODEL} (float32, CPU, batch {args.batch_size})", "truthfulqa_limit": tq_limit,
              "hhh_limit": hhh_limit,
              "wall_seconds": {"iteralign": round(ours_s[0], 1), "lm_eval": round(theirs_s[0], 1)},
              "cpu_seconds": {"iteralign": round(ours_s[1], 1), "lm_eval": round(theirs_s[1], 1)},
              "cpu_threads": __import__("torch").get_num_threads(), "benchmarks": rows,
              # token positions each evaluator ran through the model (padding included) and that per wall second:
              # lm-eval re-reads every shared context; ours reads a call's common prefix once and packs choices
              "tokens_computed": {"iteralign": ours_s[2], "lm_eval": theirs_s[2]},
              "tokens_per_s": {"iteralign": round(ours_s[2] / ours_s[0], 1),
                               "lm_eval": round(theirs_s[2] / theirs_s[0], 1)},
              "speedup_wall": round(theirs_s[0] / ours_s[0], 2),
              "load_average_before_after": [load_before, os.getloadavg()[0]]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'benchmark':<18}{'iteralign':>10}{'lm-eval':>10}{'diff(pts)':>11}{'n':>6}")
    for name, r in rows.items():
        print(f"{name:<18}{r['iteralign']:>10.4f}{r['lm_eval']:>10.4f}{r['diff_points']:>11.2f}{r['n']:>6}")
    print(f"load + eval, wall (cpu) seconds: iteralign {ours_s[0]:.1f} ({ours_s[1]:.1f}), "
          f"lm-eval {theirs_s[0]:.1f} ({theirs_s[1]:.1f}) -> {args.out}")


if __name__ == "__main__":
    main()
