"""How often does a greedy answer depend on the rest of its batch? The measurement behind the call cache's contract.

The call cache keys an answer on (model identity, conversation, decoding parameters), not on the other
conversations it was batched with. In float32 that makes no difference; in bfloat16 the rounding of a batched matmul
depends on the padded shape, so a greedy answer can change with its neighbours. This script answers the same prompts
(half built-in red-team seeds, half built-in benign prompts: the loop's two workloads) with the real SmolLM2-135M in
several batch make-ups and counts the answers that differ from the one-at-a-time answer and between make-ups:

* ``single``: each prompt alone (batch 1);
* ``b16``: all prompts in one call, batch_size 16 (the backend sorts by length, so neighbours are similar lengths);
* ``b8``: the same call with batch_size 8;
* ``shuffled-1``, ``shuffled-2``: random groups of 16 (two seeds), one call per group: other neighbours, other padding.

For each pair of make-ups: answers that differ, and where the first differing token is (median). Writes
``bench/out/batch_makeup.json``.

    OMP_NUM_THREADS=1 .venv/bin/python bench/batch_makeup.py [--n 64] [--max-new-tokens 64] [--dtype bfloat16]
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from iteralign.data.sources import load_prompts  # noqa: E402
from iteralign.models.base import ModelConfig, load_model  # noqa: E402
from iteralign.types import GenerationParams, user  # noqa: E402

SPEC = "offline:smollm2-135m-instruct"


def prompts(n: int) -> list[str]:
    """``n`` prompts: the first n/2 built-in red-team seeds and the first n/2 built-in benign prompts."""
    seeds = [p.text for p in load_prompts({"builtin": "seeds"})][: n // 2]
    benign = [p.text for p in load_prompts({"builtin": "benign"})][: n - n // 2]
    return seeds + benign


def answer(model, texts: list[str], params: GenerationParams, groups: list[list[int]], batch_size: int):
    """Token ids of each answer when the prompts are sent as ``groups`` (one generate call per group)."""
    model.cfg = model.cfg.model_copy(update={"batch_size": batch_size})
    out: list = [None] * len(texts)
    for group in groups:
        for i, completion in zip(group, model.generate([user(texts[i]) for i in group], params)):
            out[i] = completion.text
    return out


def first_difference(tokenizer, a: str, b: str) -> int:
    """Index of the first differing token of two answers (token ids of the decoded texts)."""
    x, y = tokenizer(a, add_special_tokens=False).input_ids, tokenizer(b, add_special_tokens=False).input_ids
    return next((k for k, (p, q) in enumerate(zip(x, y)) if p != q), min(len(x), len(y)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "batch_makeup.json")
    args = parser.parse_args()
    texts = prompts(args.n)
    params = GenerationParams(max_new_tokens=args.max_new_tokens)
    model = load_model(ModelConfig(spec=SPEC, dtype=args.dtype, device="cpu", batch_size=16))
    everything = [list(range(len(texts)))]
    shuffled = []
    for seed in (1, 2):
        order = random.Random(seed).sample(range(len(texts)), len(texts))
        shuffled.append([order[k : k + 16] for k in range(0, len(order), 16)])
    makeups = {
        "single": ([[i] for i in range(len(texts))], 1), "b16": (everything, 16), "b8": (everything, 8),
        "shuffled-1": (shuffled[0], 16), "shuffled-2": (shuffled[1], 16),
    }
    answers, seconds = {}, {}
    for name, (groups, batch_size) in makeups.items():
        started = time.time()
        answers[name] = answer(model, texts, params, groups, batch_size)
        seconds[name] = round(time.time() - started, 1)
        print(f"{name}: {seconds[name]} s", flush=True)
    pairs = {}
    for a, b in itertools.combinations(makeups, 2):
        idx = [i for i in range(len(texts)) if answers[a][i] != answers[b][i]]
        where = [first_difference(model._tokenizer, answers[a][i], answers[b][i]) for i in idx]
        pairs[f"{a} vs {b}"] = {"differ": len(idx), "of": len(texts),
                                "median_first_diff_token": statistics.median(where) if where else None}
    unstable = [i for i in range(len(texts)) if len({answers[m][i] for m in makeups}) > 1]
    result = {"model": SPEC, "dtype": args.dtype, "n": len(texts), "max_new_tokens": args.max_new_tokens,
              "seconds": seconds, "pairs": pairs, "any_makeup_differs": len(unstable),
              "unstable_by_half": {"redteam seeds": sum(i < len(texts) // 2 for i in unstable),
                                   "benign": sum(i >= len(texts) // 2 for i in unstable)}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"\n{args.dtype}, {len(texts)} prompts, {args.max_new_tokens} new tokens, greedy")
    print("| make-ups compared | answers that differ | median first differing token |\n|---|---|---|")
    for key, cell in pairs.items():
        print(f"| {key} | {cell['differ']}/{cell['of']} | {cell['median_first_diff_token'] or '-'} |")
    print(f"\nanswer differs in at least one make-up: {len(unstable)}/{len(texts)} "
          f"({result['unstable_by_half']}); wrote {args.out}")


if __name__ == "__main__":
    main()
