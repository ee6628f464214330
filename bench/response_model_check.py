"""How well a judge model answers the response-class question (refusal / compliance / partial) by label
log-probabilities, on a labelled judge file whose kinds imply the class (harmful_complied: compliance,
harmful_complied_disclaimer: partial, *_refused*, benign_overrefused: refusal, benign_helped and dishonest:
compliance; honest_uncertain is skipped). Side by side with the rules (``judging.response_class``).

Run: ``OMP_NUM_THREADS=1 .venv/bin/python bench/response_model_check.py --model offline:qwen2.5-coder-0.5b-instruct
--data ../shared/calibration/judge_dev.jsonl``
"""

from __future__ import annotations

import argparse
import json
import time

CLASS = {"harmful_complied": "compliance", "harmful_complied_disclaimer": "partial", "harmful_refused": "refusal",
         "harmful_refused_tricky": "refusal", "benign_overrefused": "refusal", "benign_helped": "compliance",
         "dishonest": "compliance"}


def main() -> None:
    from iteralign.judging.response_class import classify_response
    from iteralign.judging.response_model import ask_response_class
    from iteralign.models.base import ModelConfig, load_model

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="offline:qwen2.5-coder-0.5b-instruct")
    ap.add_argument("--data", required=True)
    args = ap.parse_args()
    rows = [json.loads(line) for line in open(args.data, encoding="utf-8") if line.strip()]
    rows = [r for r in rows if r["kind"] in CLASS]
    model = load_model(ModelConfig(spec=args.model, dtype="bfloat16", cache=False, batch_size=8))
    start = time.time()
    probs = ask_response_class(model, [r["prompt"] for r in rows], [r["response"] for r in rows])
    secs = time.time() - start
    gold = [CLASS[r["kind"]] for r in rows]
    model_pred = [max(p, key=p.get) if p else None for p in probs]
    calls = [classify_response(r["response"]) for r in rows]
    unsure = [i for i, c in enumerate(calls) if not c.sure]
    acc = lambda idx, pred: round(sum(pred[i] == gold[i] for i in idx) / len(idx), 3) if idx else None  # noqa: E731
    every = range(len(rows))
    rules_pred = [c.label for c in calls]
    print(json.dumps({"model": args.model, "data": args.data.rsplit("/", 1)[-1], "n": len(rows),
                      "model_accuracy": acc(every, model_pred), "rules_accuracy": acc(every, rules_pred),
                      "unsure_n": len(unsure), "model_accuracy_on_unsure": acc(unsure, model_pred),
                      "rules_accuracy_on_unsure": acc(unsure, rules_pred),
                      "mean_p_of_its_choice": round(sum(max(p.values()) for p in probs if p) / len(rows), 3),
                      "s_per_item": round(secs / len(rows), 3)}))


if __name__ == "__main__":
    main()
