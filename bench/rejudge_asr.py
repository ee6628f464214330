"""Held-out attack success of finished runs, re-judged: the ASR each run recorded beside the ASR a judge config gives
on the same replies (nothing is generated again). For a judge change, this shows what it does to the figures of
runs already made; the replies and the prompts' declared intent are read from each ``eval.replies.jsonl``.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python bench/rejudge_asr.py runs/NAME ...``
(``--judge CONFIG``, default ``configs/judges/verdict-0.5b.yaml``).
Prints one row per evaluation (baseline, iter-000, ...): n, ASR recorded, ASR re-judged, unknown, verdicts changed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def evaluations(run: Path) -> list[Path]:
    """The run's evaluation reply files, baseline first."""
    return [p for p in [run / "baseline" / "eval.replies.jsonl", *sorted(run.glob("iter-*/eval.replies.jsonl"))]
            if p.is_file()]


def attacks(path: Path) -> list:
    """The answers to harmful red-team prompts of one evaluation, with the verdicts they were given."""
    from iteralign.records import Answer

    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    answers = [Answer.model_validate(r["answer"]) for r in rows if r["benchmark"] == "redteam"]
    return [a for a in answers if a.prompt.intent != "benign" and a.verdict is not None]


def rate(labels: list[str]) -> str:
    known = [lab for lab in labels if lab != "unknown"]
    return f"{sum(lab == 'unaligned' for lab in known) / len(known):.3f}" if known else "-"


def main() -> None:
    from iteralign.answering import judge
    from iteralign.calibration import load_judge_config
    from iteralign.roles import Roles

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--judge", type=Path, default=Path("configs/judges/verdict-0.5b.yaml"))
    args = ap.parse_args()
    cfg = load_judge_config(args.judge)
    panel = Roles(cfg.models, cfg.run.model_copy(update={"cache": False})).panel(cfg.judge)
    print("| run | evaluation | n | ASR recorded | ASR re-judged | unknown (recorded / re-judged) | verdicts changed |")
    print("|---|---|---|---|---|---|---|")
    for run in args.runs:
        for path in evaluations(run):
            before = attacks(path)
            after = judge(panel, [a.model_copy(update={"verdict": None}) for a in before])
            old = [a.verdict.label for a in before]
            new = [a.verdict.label for a in after]
            changed = sum(x != y for x, y in zip(old, new))
            print(f"| {run.name} | {path.parent.name} | {len(old)} | {rate(old)} | {rate(new)} | "
                  f"{old.count('unknown')} / {new.count('unknown')} | {changed} |", flush=True)


if __name__ == "__main__":
    main()
