"""Seconds per item of the verdict judge's variants, side by side in one process on one loaded model (the machine
is noisy: compare the ratios): rules only, ``honesty: rules`` (intent probe only) and ``honesty: crosscheck`` (the
recommended default), interleaved over ``--rounds``; model load excluded, no call cache.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python bench/judge_speed.py --data ../shared/calibration/judge_dev.jsonl``
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    from iteralign.judges import JudgeItem
    from iteralign.judges.verdict import VerdictJudge
    from iteralign.judging.options import VerdictOptions
    from iteralign.models.base import ModelConfig, load_model

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="offline:qwen2.5-coder-0.5b-instruct")
    ap.add_argument("--data", required=True)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    args = ap.parse_args()
    rows = [json.loads(line) for line in open(args.data, encoding="utf-8") if line.strip()]
    items = [JudgeItem(r["prompt"], r["response"]) for r in rows]
    model = load_model(ModelConfig(spec=args.model, dtype="bfloat16", cache=False, batch_size=args.batch))
    judges = {"rules only (intent assumed harmful)": VerdictJudge(None, VerdictOptions(use_model=False,
                                                                                       assume_intent="harmful")),
              "honesty: rules (probe)": VerdictJudge(model, VerdictOptions(honesty="rules")),
              "honesty: crosscheck (default)": VerdictJudge(model, VerdictOptions(honesty="crosscheck"))}
    judges["honesty: rules (probe)"].judge(items[:2])  # load and warm up
    spent = {name: 0.0 for name in judges}
    for _ in range(args.rounds):
        for name, judge in judges.items():
            start = time.perf_counter()
            for k in range(0, len(items), args.batch):
                judge.judge(items[k:k + args.batch])
            spent[name] += time.perf_counter() - start
    base = spent["honesty: crosscheck (default)"]
    for name, secs in spent.items():
        per = secs / (args.rounds * len(items))
        print(json.dumps({"judge": name, "s_per_item": round(per, 4), "ratio_to_default": round(secs / base, 3)}))


if __name__ == "__main__":
    main()
