"""Compare `iteralign eval` with lm-evaluation-harness on the same model and the same local data files.

What it does: converts (once) SmolLM2-135M-Instruct to a float32 safetensors folder, writes TruthfulQA and BIG-bench
HHH from the benchmark folder as JSONL files, writes lm-eval task YAMLs that *include lm-eval's own*
``truthfulqa_mc1`` / ``truthfulqa_mc2`` / ``bigbench_hhh_alignment_multiple_choice`` tasks and only repoint their
data at those files, runs both evaluators (same model folder, float32, same batch size, CPU) and prints both
numbers, wall times and CPU times per part (TruthfulQA MC1+MC2, then HHH; each tool's model is loaded once,
before, and its load time reported apart; CPU time is the fairer figure on a shared machine), and the token
positions each evaluator ran through the model (counted by a hook on the input embedding), from which
bench/roofline.py takes the scoring throughput. Ours and lm-eval's run one after the other within each part, so each
ratio is taken under about the same load; the JSON is rewritten after each part.
Writes bench/out/compare_lm_eval.json.

Run:  make bench-deps && .venv/bin/python bench/compare_lm_eval.py [--truthfulqa-limit 50] [--hhh-limit N]
      [--threads 1]

lm-eval scores every (context, choice) pair as its own sequence, re-reading TruthfulQA's 6-shot preamble each time;
on 2 CPU cores the full 817 questions take it about an hour (66 min on one thread), hence the default TruthfulQA
subset (the first 50 questions, the same for both). HHH runs in full by default.
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


def load_lm_eval(model_dir: Path, batch_size: int):
    """lm-eval's ``HFLM`` on the model folder (float32, CPU), loaded once for both parts."""
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=str(model_dir), dtype="float32", batch_size=batch_size, device="cpu")


def run_lm_eval(lm, task_dir: Path, tasks: list[str]) -> tuple[dict, tuple]:
    """lm-eval's own evaluation of ``tasks``; scores, and (wall s, CPU s, token positions) of the evaluation only."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    start, cpu = time.perf_counter(), time.process_time()
    with TokenCounter() as counted:
        res = simple_evaluate(model=lm, tasks=tasks, task_manager=TaskManager(include_path=str(task_dir)))
    seconds = (time.perf_counter() - start, time.process_time() - cpu, counted.tokens)
    scores = {t.removeprefix("local_"): {"score": r["acc,none"], "stderr": r.get("acc_stderr,none")}
              for t, r in res["results"].items()}
    n = {t.removeprefix("local_"): v["effective"] if isinstance(v, dict) else v
         for t, v in res.get("n-samples", {}).items()}
    cats = [f"hhh_{c}" for c in hhh.CATEGORIES]
    if all(c in scores for c in cats):
        total = sum(n[c] for c in cats)
        scores["hhh_overall"] = {"score": sum(scores[c]["score"] * n[c] for c in cats) / total, "stderr": None}
    return scores, seconds


def run_ours(model, data_dir: Path, benchmark: str, limit: int | None) -> tuple[dict, tuple]:
    """``run_evals`` on one benchmark; scores, and (wall s, CPU s, token positions) of the evaluation only."""
    start, cpu = time.perf_counter(), time.process_time()
    with TokenCounter() as counted:
        res = run_evals(model, [benchmark], data_dir, limit, progress=False)["benchmarks"]
    return res, (time.perf_counter() - start, time.process_time() - cpu, counted.tokens)


def _timing(ours: tuple, theirs: tuple) -> dict:
    return {"wall_seconds": {"iteralign": round(ours[0], 1), "lm_eval": round(theirs[0], 1)},
            "cpu_seconds": {"iteralign": round(ours[1], 1), "lm_eval": round(theirs[1], 1)},
            # token positions each evaluator ran through the model (padding included) and that per wall second:
            # lm-eval re-reads every shared context; ours reads a call's common prefix once and packs choices
            "tokens_computed": {"iteralign": ours[2], "lm_eval": theirs[2]},
            "tokens_per_s": {"iteralign": round(ours[2] / ours[0], 1), "lm_eval": round(theirs[2] / theirs[0], 1)},
            "speedup_wall": round(theirs[0] / ours[0], 2), "speedup_cpu": round(theirs[1] / ours[1], 2),
            "load_average_after": os.getloadavg()[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=packaged_dir(), help="default: the copy shipped in the package")
    ap.add_argument("--truthfulqa-limit", type=int, default=50, help="first N questions (0 = all 817)")
    ap.add_argument("--hhh-limit", type=int, default=0, help="first N examples per category (0 = all)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "compare_lm_eval.json")
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    tq_limit, hhh_limit = args.truthfulqa_limit or None, args.hhh_limit or None
    from iteralign.models.base import ModelConfig, load_model
    from iteralign.models.offline import ensure_converted

    model_dir = ensure_converted(MODEL)
    result = {"model": f"offline:{MODEL} (float32, CPU, batch {args.batch_size})", "truthfulqa_limit": tq_limit,
              "hhh_limit": hhh_limit, "cpu_threads": torch.get_num_threads(),
              "load_average_before": os.getloadavg()[0], "parts": {}, "benchmarks": {}}
    t0 = time.perf_counter()
    ours_model = load_model(ModelConfig(spec=f"offline:{MODEL}", dtype="float32", batch_size=args.batch_size,
                                        device="cpu"))
    t1 = time.perf_counter()
    lm = load_lm_eval(model_dir, args.batch_size)
    result["load_seconds"] = {"iteralign": round(t1 - t0, 1), "lm_eval": round(time.perf_counter() - t1, 1)}
    with tempfile.TemporaryDirectory() as tmp:
        tasks = write_lm_eval_tasks(args.data_dir, Path(tmp), tq_limit, hhh_limit)
        # one part at a time, ours then lm-eval's, so that each ratio is taken under the same load
        for part, limit, names in (("truthfulqa", tq_limit, [t for t in tasks if "truthfulqa" in t]),
                                   ("hhh", hhh_limit, [t for t in tasks if "hhh" in t])):
            ours, ours_s = run_ours(ours_model, args.data_dir, part, limit)
            theirs, theirs_s = run_lm_eval(lm, Path(tmp), names)
            result["parts"][part] = _timing(ours_s, theirs_s)
            for name in (n for n in NAMES if n in ours and n in theirs):
                result["benchmarks"][name] = {
                    "iteralign": ours[name]["score"], "lm_eval": theirs[name]["score"], "n": ours[name]["n"],
                    "diff_points": round(100 * (ours[name]["score"] - theirs[name]["score"]), 4)}
            _write(args.out, result)  # after each part: a run cut short keeps what it measured
            print(f"{part}: {result['parts'][part]}", flush=True)
    print(f"{'benchmark':<18}{'iteralign':>10}{'lm-eval':>10}{'diff(pts)':>11}{'n':>6}")
    for name, r in result["benchmarks"].items():
        print(f"{name:<18}{r['iteralign']:>10.4f}{r['lm_eval']:>10.4f}{r['diff_points']:>11.2f}{r['n']:>6}")
    print(f"-> {args.out}")


def _write(out: Path, result: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
