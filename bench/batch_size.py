"""Decoding throughput of one offline model at several batch sizes, side by side in one run (the machine is noisy).

The oracle and the reviser of the embedded default (Qwen2.5-Coder-1.5B, bf16) spend most of a run decoding: reflect,
propose and the look-alikes. Their decoding is memory-bound (every step reads all the weights once for the whole
batch), so a larger batch should buy throughput until compute binds. This script generates the same prompts
(bench/generation.py's, ``--prompts`` of them, at most 32) through bench/ab.py's ``decode`` workload (a warm-up,
then ``HFModel.generate``, bf16) at each ``--batch`` size in turn, for
``--rounds`` rounds, and reports generated tokens/s per size, the ratio to the first size of the same round, and how
many answers differ from the first size's (bf16 results depend on the batch make-up; see BENCHMARKS.md, "Batch
make-up"). Writes bench/out/batch_size.json. Run:

    .venv/bin/python bench/batch_size.py --model qwen2.5-coder-1.5b-instruct --batch 8 16 [--rounds 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-coder-1.5b-instruct")
    ap.add_argument("--batch", type=int, nargs="+", default=[8, 16])
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=48)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    import torch

    from ab import work_decode

    if args.threads:
        torch.set_num_threads(args.threads)
    rounds = []
    for r in range(args.rounds):
        row, first = {}, None
        for size in args.batch:
            load = os.getloadavg()[0]
            run = work_decode(False, args.model, batch=size, prompts=args.prompts, new_tokens=args.new_tokens)
            first = first or run["texts"]
            row[size] = {"tok_s": run["figure"], "seconds": run["seconds"], "tokens": run["tokens"], "load": load,
                         "differ_from_first": sum(a != b for a, b in zip(run["texts"], first))}
            print(f"round {r} batch {size:3d}: {row[size]['tok_s']:.2f} tok/s, {row[size]['differ_from_first']} "
                  f"answers differ from batch {args.batch[0]}, load {load:.1f}", flush=True)
        base = row[args.batch[0]]["tok_s"]
        for size in args.batch:
            row[size]["ratio"] = row[size]["tok_s"] / base
        rounds.append(row)
    out_path = HERE / "out" / "batch_size.json"
    out_path.parent.mkdir(exist_ok=True)
    out_path.write_text(json.dumps({"args": vars(args), "rounds": rounds}, indent=1))
    print(f"-> {out_path}")


if __name__ == "__main__":
    main()
