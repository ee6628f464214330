"""Peak memory and time of log-likelihood scoring: batches bounded by padded tokens vs a fixed count of sequences.

Each configuration runs in its own child process (peak RSS is per process; the ``--worker`` convention of
bench/sft.py), alternating, on HHH items (long continuations) with a 150k-vocabulary model. "fixed" sets ``hf_scoring.MAX_BATCH_TOKENS`` so high that only
``--batch-size`` bounds a batch, which is how scoring batched before the token budget.

    .venv/bin/python bench/scoring_memory.py [--model offline:qwen2.5-coder-0.5b-instruct] [--limit 16] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys


def worker(mode: str, spec: str, limit: int, batch_size: int) -> dict:
    """One configuration, in this (fresh) process: score HHH, then report time, peak RSS and the score."""
    import resource
    import time

    from iteralign.evals import hhh
    from iteralign.models import hf_scoring
    from iteralign.models.base import ModelConfig, load_model

    if mode == "fixed":
        hf_scoring.MAX_BATCH_TOKENS = 10**9
    model = load_model(ModelConfig(spec=spec, dtype="bfloat16", batch_size=batch_size))
    items = hhh.load_items(None, limit, hhh.CATEGORIES)
    start = time.perf_counter()
    scores = hhh.evaluate(model, items, False)
    return {"seconds": round(time.perf_counter() - start, 1),
            "peak_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2),
            "hhh_overall": scores["hhh_overall"].score}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="offline:qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--limit", type=int, default=16, help="HHH items per category.")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.model, args.limit, args.batch_size)))
        return
    rows = []
    for _ in range(args.repeats):
        for mode in ("fixed", "token-budget"):
            out = subprocess.run([sys.executable, __file__, "--worker", mode, "--model", args.model, "--limit",
                                  str(args.limit), "--batch-size", str(args.batch_size)],
                                 capture_output=True, text=True, check=True)
            rows.append({"mode": mode, **json.loads(out.stdout.strip().splitlines()[-1])})
            print(rows[-1], flush=True)
    fixed = [r for r in rows if r["mode"] == "fixed"]
    budget = [r for r in rows if r["mode"] == "token-budget"]
    peak = max(r["peak_gb"] for r in fixed) / max(r["peak_gb"] for r in budget)
    speed = sum(r["seconds"] for r in fixed) / sum(r["seconds"] for r in budget)
    print(f"peak memory fixed/token-budget: {peak:.2f}x; time fixed/token-budget: {speed:.2f}x; "
          f"same scores: {len({r['hhh_overall'] for r in rows}) == 1}")


if __name__ == "__main__":
    main()
