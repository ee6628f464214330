"""SFT throughput and peak memory: LoRA vs full, float32 vs bf16, with and without packing, 135M and 0.5B models.

Each configuration runs the SFT stage exactly as a run does (``iteralign.stages.sft.train``) in its own subprocess,
so that its peak resident memory (``resource.getrusage(RUSAGE_SELF).ru_maxrss``: weights, gradients, optimizer
state, activations, allocator caches, everything torch holds, which ``tracemalloc`` cannot see) is its own.

The examples are the same for every configuration: built-in benign prompts with answers of varied length (20 to
~200 tokens, like real revisions), so that padding waste and what packing saves are visible. Throughput counts
non-padding input tokens (TRL's ``num_input_tokens_seen``) over the time inside optimizer steps (checkpoint saves
and data preparation excluded; ``seconds`` gives the whole ``trainer.train`` call).

Run:  .venv/bin/python bench/sft.py [--models 135m 0.5b] [--examples 24] [--only NAME...]
Writes bench/out/sft.json. A few minutes for the 135M grid; the 0.5B full float32 configuration needs ~8 GB.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
MODELS = {"135m": ("smollm2-135m-instruct", "smollm2-135m"), "0.5b": ("qwen2.5-coder-0.5b-instruct", "qwen2.5-0.5b")}
SENTENCE = ("Here is a careful, honest answer that explains the main idea step by step, gives one concrete example "
            "and says where the explanation stops being reliable. ")


def examples(n: int) -> list:
    """n (prompt, answer) pairs; answer lengths cycle through 1, 3, 6 and 9 sentences (~20 to ~200 tokens). As
    ``records.Example`` where the tree has them, else as the dicts older trees took (bench/ab.py runs both)."""
    from iteralign.data.sources import load_prompts

    prompts = load_prompts("builtin:benign")
    rows = [(prompts[i % len(prompts)], SENTENCE * (1, 3, 6, 9)[i % 4]) for i in range(n)]
    try:
        from iteralign.records import Example
    except ImportError:  # a tree before typed records
        return [{"prompt": p.text, "completion": c} for p, c in rows]
    return [Example(id=f"{p.id}-{i}", prompt=p, completion=c) for i, (p, c) in enumerate(rows)]


def grid(models: list[str]) -> list[dict]:
    rows = []
    for model, method, bf16, packing in itertools.product(models, ("lora", "full"), (False, True), (False, True)):
        name = f"{model} {method} {'bf16' if bf16 else 'fp32'}{' packed' if packing else ''}"
        rows.append({"name": name, "model": model, "method": method, "bf16": bf16, "packing": packing})
    return rows


def worker(spec: dict) -> dict:
    """One configuration, in this (fresh) process: train, then report stats and peak RSS."""
    import resource

    import torch

    from iteralign.config import SFTConfig
    from iteralign.models.offline import ensure_converted
    from iteralign.stages.sft import SFTJob, train

    if spec["threads"]:
        torch.set_num_threads(spec["threads"])
    cfg = SFTConfig(method=spec["method"], bf16=spec["bf16"], packing=spec["packing"], epochs=1,
                    batch_size=spec["batch_size"], max_length=spec["max_length"], learning_rate=1e-5, replay=0)
    base = str(ensure_converted(MODELS[spec["model"]][0]))
    with tempfile.TemporaryDirectory() as tmp:
        stats = train(SFTJob(base=base, examples=examples(spec["examples"]), out_dir=tmp, cfg=cfg))
    stats.pop("losses", None)
    return stats | {"peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                    "torch_threads": torch.get_num_threads()}


def run_one(spec: dict) -> dict:
    """Run ``worker`` in a subprocess; its last stdout line is the JSON result."""
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True)
    row = dict(spec, params_key=MODELS[spec["model"]][1], load_average_before_after=[load, os.getloadavg()[0]],
               process_seconds=round(time.perf_counter() - t0, 1))
    if proc.returncode != 0:
        return row | {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    stats = json.loads(proc.stdout.strip().splitlines()[-1])
    return row | stats | {"tokens_per_s": stats.get("tokens_per_second_in_steps")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", nargs="+", default=["135m", "0.5b"], choices=list(MODELS))
    ap.add_argument("--examples", type=int, default=24)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--max-length", type=int, default=384)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--only", nargs="*", help="configuration names to run (default: the whole grid)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "sft.json")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    common = {"examples": args.examples, "batch_size": args.batch_size, "max_length": args.max_length,
              "threads": args.threads}
    runs = []
    for spec in grid(args.models):
        if args.only and spec["name"] not in args.only:
            continue
        runs.append(run_one(spec | common))
        r = runs[-1]
        print(f"{r['name']:<26} " + (f"ERROR {r['error']}" if "error" in r else
              f"{r['tokens_per_s'] or 0:8.1f} tok/s  peak RSS {r['peak_rss_mb']:8.1f} MB  steps {r['steps']}  "
              f"load {r['load_average_before_after'][0]:.1f}"), flush=True)
    previous = json.loads(args.out.read_text())["runs"] if args.out.exists() else []
    merged = {r["name"]: r for r in previous} | {r["name"]: r for r in runs}  # --only updates its rows
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"settings": common, "runs": list(merged.values())}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
