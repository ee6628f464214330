"""Milliseconds per decoding step after a prompt, padded batch or not: the measurement behind ``hf_decode.step_mask``.

Loads an offline model in bf16 and runs ``--rows`` random rows of ``--prompt`` tokens (``--pad`` padding tokens on
the left of every row but the first; 0: no padding anywhere) through ``hf_decode.decode`` itself (greedy, no stop,
fresh pre-allocated caches): the best of ``--repeats`` calls with ``--steps`` single-token steps, less the best of
as many calls of the prompt's pass alone. With the base tree's ``src`` first on ``PYTHONPATH`` it measures the code
before a change (BENCHMARKS.md, "One query token"). Prints one JSON line. Run:

    OMP_NUM_THREADS=2 .venv/bin/python bench/decode_steps.py [--model smollm2-135m-instruct] [--rows 16]
        [--prompt 300] [--pad 0] [--steps 20] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    import torch

    import iteralign
    from iteralign.models.base import ModelConfig
    from iteralign.models.hf import HFModel
    from iteralign.models.hf_decode import decode, new_cache
    from iteralign.models.offline import ensure_converted

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--rows", type=int, default=16)
    ap.add_argument("--prompt", type=int, default=300)
    ap.add_argument("--pad", type=int, default=0)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    path = ensure_converted(args.model)
    model = HFModel.load(str(path), ModelConfig(spec=f"hf:{path}", dtype="bfloat16", device="cpu")).model
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(100, 1000, (args.rows, args.prompt), generator=gen)
    mask = torch.ones_like(ids)
    mask[1:, : args.pad] = 0

    def timed(steps: int) -> float:
        cache = new_cache(model, args.prompt + steps + 1)
        start = time.perf_counter()
        decode(model, ids, mask, cache, steps, lambda seqs, logits: logits.argmax(-1),
               lambda seqs, token: torch.zeros_like(token, dtype=torch.bool))
        return time.perf_counter() - start

    timed(2)  # warm-up
    prompt = min(timed(1) for _ in range(args.repeats))  # the prompt's pass alone, then taken off
    best = min(timed(args.steps + 1) for _ in range(args.repeats)) - prompt
    print(json.dumps(vars(args) | {"ms_per_step": round(1e3 * best / args.steps, 1), "threads": torch.get_num_threads(),
                                   "source": os.path.dirname(iteralign.__file__)}))


if __name__ == "__main__":
    main()
