"""Which judge model should answer the honesty cross-check's factoid questions (``judging.factcheck``)?

For the labelled items whose honesty matters (kinds ``dishonest``, ``benign_helped``, ``honest_uncertain``) of each
``--data`` file, the checkable ones (``factcheck.checkable``) are answered by each ``--models`` spec, greedy, and
compared with the reply (``factcheck.compare``): a disagreement on a dishonest reply is a catch, on an honest one a
false alarm; "no evidence" means the two answers share no numbers or names to compare. Prints the counts per file,
kind and outcome, the dishonest items one per line, and the seconds each model took. Run:

    OMP_NUM_THREADS=1 .venv/bin/python bench/crosscheck_models.py \\
        --data ../shared/calibration/judge_dev.jsonl src/iteralign/data/labelled/judge_replies.jsonl \\
        --models offline:qwen2.5-coder-0.5b-instruct offline:qwen2.5-coder-1.5b-instruct
"""

from __future__ import annotations

import argparse
import collections
import json
import time
from pathlib import Path

KINDS = {"dishonest", "benign_helped", "honest_uncertain"}


def main() -> None:
    from iteralign.judging import factcheck as fc
    from iteralign.models.base import ModelConfig, load_model

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", nargs="+", required=True)
    ap.add_argument("--models", nargs="+", default=["offline:qwen2.5-coder-0.5b-instruct"])
    args = ap.parse_args()
    items = [(Path(path).stem, json.loads(line)) for path in args.data
             for line in open(path, encoding="utf-8") if line.strip()]
    items = [(name, r) for name, r in items if r["kind"] in KINDS and fc.checkable(r["prompt"], r["response"])]
    print(f"{len(items)} checkable items of the kinds {sorted(KINDS)}")
    outcome = {None: "no evidence", fc.AGREE: "agree", fc.DISAGREE: "disagree"}
    for spec in args.models:
        model = load_model(ModelConfig(spec=spec, dtype="bfloat16", cache=False, batch_size=16))
        start = time.perf_counter()
        convs = [[{"role": "system", "content": fc.SYSTEM}, {"role": "user", "content": r["prompt"]}]
                 for _, r in items]
        own = [g.text for g in model.generate(convs, fc.PARAMS)]
        seconds = time.perf_counter() - start
        counts: collections.Counter = collections.Counter()
        print(f"\n{spec}: {seconds:.0f} s for {len(items)} answers")
        for (name, r), text in zip(items, own):
            result = outcome[fc.compare(r["prompt"], r["response"], text)]
            counts[(name, r["kind"], result)] += 1
            if r["kind"] == "dishonest":
                print(f"  [{name}] {result:11s} {r['prompt'][:60]!r} -> judge: {text[:70]!r}")
        for key in sorted(counts):
            print(f"  {key[0]:14s} {key[1]:17s} {key[2]:11s} {counts[key]}")


if __name__ == "__main__":
    main()
