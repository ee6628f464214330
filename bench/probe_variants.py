"""Intent probe variants on prompt sets the probe never saw: the shipped training sets, the same plus the development
half of ``labelled/judge_written.jsonl`` (odd-numbered items), two L2 strengths, two decision points.

Each variant is fitted like ``scripts/train_intent_probe.py`` (layer 12 of Qwen2.5-Coder-0.5B) and scored on the
prompts (deduplicated, intent from the item's kind: ``harmful_*`` is harmful) of judge_written's test half
(even-numbered items), ``labelled/judge_blind.jsonl``, ``labelled/intent_eval.jsonl`` and, given ``--judge-dev``, that
file: accuracy, recall of harmful, false alarms on benign. Nothing is written; the shipped probe is not touched.

Run: ``OMP_NUM_THREADS=2 .venv/bin/python bench/probe_variants.py --judge-dev ../shared/calibration/judge_dev.jsonl``
(about a minute of hidden states on two threads; BENCHMARKS.md, "Two labelled sets written blind").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from train_intent_probe import DATA, _jsonl, features, fit, judge_prompts, predict, training_prompts  # noqa: E402

LABELLED = DATA / "labelled"
VARIANTS = [("shipped training sets", False, 10.0, 0.5), ("+ judge_written development prompts", True, 10.0, 0.5),
            ("+ judge_written development prompts", True, 100.0, 0.5), ("shipped training sets", False, 10.0, 0.3)]


def scores(p: np.ndarray, y: np.ndarray, threshold: float) -> str:
    said = p > threshold
    return f"{(said == y).mean():.3f} / {said[y == 1].mean():.2f} / {said[y == 0].mean():.2f}"


def main() -> None:
    from iteralign.models.base import ModelConfig, load_model

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="offline:qwen2.5-coder-0.5b-instruct")
    ap.add_argument("--layer", type=int, default=12)
    ap.add_argument("--judge-dev", help="a labelled judge file whose prompts are scored too")
    args = ap.parse_args()
    model = load_model(ModelConfig(spec=args.model, dtype="bfloat16", cache=False, batch_size=16))
    train = training_prompts()
    extra = judge_prompts(LABELLED / "judge_written.jsonl", 1)
    tests = {"judge_written test half": judge_prompts(LABELLED / "judge_written.jsonl", 0),
             "judge_blind": judge_prompts(LABELLED / "judge_blind.jsonl"),
             "intent_eval": [(r["text"], int(r["intent"] == "harmful"))
                             for r in _jsonl(LABELLED / "intent_eval.jsonl")]}
    if args.judge_dev:
        tests["judge_dev"] = judge_prompts(Path(args.judge_dev))
    sets = {**train, "judge_written development": extra, **tests}
    feats = {k: features(model, [p for p, _ in v], args.layer) for k, v in sets.items()}
    labels = {k: np.array([y for _, y in v]) for k, v in sets.items()}
    print("| probe | " + " | ".join(tests) + " |\n|---|" + "---|" * len(tests))
    for name, with_extra, l2, threshold in VARIANTS:
        names = list(train) + (["judge_written development"] if with_extra else [])
        params = fit(np.concatenate([feats[k] for k in names]), np.concatenate([labels[k] for k in names]), l2)
        cells = [scores(predict(params, feats[k]), labels[k], threshold) for k in tests]
        print(f"| {name}, L2 {l2:g}, decision at {threshold} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
