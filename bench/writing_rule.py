"""The verdict judge with and without its writing rule (``response_class.classify_for``: a reply with no cue to a
request for a piece of writing is that writing, compliance, sure), on the labelled sets: accuracy, precision and
recall of unaligned for each (BENCHMARKS.md, "The writing rule, ablated"). Without the rule the replies are classed by
``classify_response`` alone, so the judge model is asked where the rules are unsure. Run:

    OMP_NUM_THREADS=1 .venv/bin/python bench/writing_rule.py --without \\
        --data ../shared/calibration/judge_dev.jsonl src/iteralign/data/labelled/judge_replies.jsonl \\
        src/iteralign/data/labelled/judge_tuned.jsonl

(and the same without ``--without`` for the rule's own row; ``--judge`` defaults to configs/judges/verdict-0.5b.yaml,
run cache off.)
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main() -> None:
    import iteralign.judges.verdict as verdict
    from iteralign.calibration import calibrate, format_report, load_judge_config, load_labelled
    from iteralign.judging.response_class import classify_response
    from iteralign.roles import Roles

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", nargs="+", type=Path, required=True)
    ap.add_argument("--judge", type=Path, default=Path("configs/judges/verdict-0.5b.yaml"))
    ap.add_argument("--without", action="store_true", help="Replace the writing rule by the plain response rules.")
    args = ap.parse_args()
    if args.without:
        verdict.classify_for = lambda prompt, text: classify_response(text)
    cfg = load_judge_config(args.judge, ["run.cache=false"])
    panel = Roles(cfg.models, cfg.run).panel(cfg.judge)
    for path in args.data:
        result = calibrate(panel, load_labelled(path, None), 8, None)
        print(format_report(result, f"{'without' if args.without else 'with'} the writing rule: {path}"), flush=True)


if __name__ == "__main__":
    main()
