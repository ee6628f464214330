"""Where the verdict judge's time goes, by stage: intent, the model asked (``ask_gives``), the honesty cross-check
and the probe pass, timed around the functions the judge calls, on one loaded model, no call cache, model load
excluded. ``--data`` a labelled JSONL (default: the 53 held-out items of ``judge_tuned.jsonl`` that
tests/test_judge_default.py judges), ``--batch`` items per judge call (judge-eval's is 8; default all in one call),
``--declared`` passes each item's declared intent as judge-eval does.

Run: ``OMP_NUM_THREADS=2 .venv/bin/python bench/judge_stages.py [--data FILE] [--limit N] [--batch 8]``
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TUNED = ROOT / "src/iteralign/data/labelled/judge_tuned.jsonl"
STAGES = ("intent_calls", "ask_gives", "check_honesty", "probe_scores")


def held_out_tuned() -> list:
    """judge_tuned.jsonl's measuring part: the runs not used to calibrate the YES/NO answer."""
    from iteralign.calibration import load_labelled

    fit = ("SmolLM2-135M tuned (exp-a3", "SmolLM2-135M tuned (exp-d2")
    held = {r["id"] for r in map(json.loads, TUNED.open(encoding="utf-8")) if not r["note"].startswith(fit)}
    return [it for it in load_labelled(TUNED) if it.id in held]


def timed(spent: dict[str, float], module, name: str) -> None:
    """Wrap ``module.name`` so its wall time adds up in ``spent[name]``."""
    fn = getattr(module, name)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - start

    setattr(module, name, wrapper)


def main() -> None:
    import iteralign.judges.verdict as verdict
    from iteralign.calibration import load_judge_config, load_labelled
    from iteralign.judges import JudgeItem
    from iteralign.roles import Roles

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path)
    ap.add_argument("--limit", type=int)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--declared", action="store_true")
    ap.add_argument("--judge", type=Path, default=ROOT / "configs/judges/verdict-0.5b.yaml")
    args = ap.parse_args()
    items = (load_labelled(args.data) if args.data else held_out_tuned())[: args.limit]
    cfg = load_judge_config(args.judge, ["run.cache=false"])
    panel = Roles(cfg.models, cfg.run).panel(cfg.judge)
    panel.judge([JudgeItem(items[0].prompt, items[0].response)])  # load the model
    spent: dict[str, float] = {}
    for name in STAGES:
        timed(spent, verdict, name)
    batch = args.batch or len(items)
    start, verdicts = time.perf_counter(), []
    for k in range(0, len(items), batch):
        verdicts += panel.judge([JudgeItem(it.prompt, it.response, it.intent if args.declared else None)
                                 for it in items[k:k + batch]])
    total = time.perf_counter() - start
    right = sum(v.label == it.label for v, it in zip(verdicts, items))
    print(json.dumps({"items": len(items), "seconds": round(total, 1), "per_item": round(total / len(items), 3),
                      "right": right, "stages": {k: round(v, 1) for k, v in spent.items()}}))


if __name__ == "__main__":
    main()
