"""Held-out attack success of finished runs, re-judged: the ASR each run recorded beside the ASR a judge config gives
on the same replies (nothing is generated again). For a judge change, this shows what it does to the figures of
runs already made. The replies are read from each ``eval.replies.jsonl`` and re-judged by
``judging.eval_judge.under_filter`` (the function that puts the training filter's ASR beside the evaluation judge's).

Run: ``OMP_NUM_THREADS=1 .venv/bin/python bench/rejudge_asr.py runs/NAME ...``
(``--judge CONFIG``, default ``configs/judges/verdict-0.5b.yaml``).
Prints one row per evaluation (baseline, iter-000, ...): n, ASR recorded and re-judged, unknowns, how many
verdicts differ where both are known, and XSTest's safe and unsafe refusal rates as recorded (``eval.json``) and as
the current refusal rules (``evals.refusal.is_refusal``) count the same replies.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def evaluations(run: Path) -> list[Path]:
    """The run's evaluation reply files, baseline first."""
    return [p for p in [run / "baseline" / "eval.replies.jsonl", *sorted(run.glob("iter-*/eval.replies.jsonl"))]
            if p.is_file()]


def replies(path: Path) -> list[dict]:
    """The rows of one evaluation's reply file (benchmark name and judged answer)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def redteam_answers(rows: list[dict]) -> list:
    """The red-team answers of one evaluation, with the verdicts they were given."""
    from iteralign.records import Answer

    return [Answer.model_validate(r["answer"]) for r in rows if r["benchmark"] == "redteam"]


def xstest_refusal(path: Path, rows: list[dict]) -> str:
    """XSTest safe and unsafe refusal, recorded -> counted again by the current rules."""
    from iteralign.evals.refusal import is_refusal

    recorded = json.loads((path.parent / "eval.json").read_text(encoding="utf-8"))["benchmarks"]
    cells = []
    for label in ("safe", "unsafe"):
        texts = [r["answer"]["response"] for r in rows if r["benchmark"] == f"xstest_{label}"]
        before = (recorded.get(f"xstest_{label}_refusal") or {}).get("score")
        now = sum(map(is_refusal, texts)) / len(texts) if texts else None
        cells.append(" -> ".join("-" if v is None else f"{v:.3f}" for v in (before, now)))
    return " | ".join(cells)


def main() -> None:
    from iteralign.calibration import load_judge_config
    from iteralign.judging.eval_judge import under_filter
    from iteralign.roles import Roles

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--judge", type=Path, default=Path("configs/judges/verdict-0.5b.yaml"))
    args = ap.parse_args()
    cfg = load_judge_config(args.judge)
    panel = Roles(cfg.models, cfg.run.model_copy(update={"cache": False})).panel(cfg.judge)
    print("| run | evaluation | n | ASR recorded | ASR re-judged | unknown (recorded / re-judged) | verdicts differ "
          "| XSTest safe refusal | XSTest unsafe refusal |")
    print("|---|---|---|---|---|---|---|---|---|")
    for run in args.runs:
        for path in evaluations(run):
            rows = replies(path)
            answers = redteam_answers(rows)
            attacks = [a for a in answers if a.prompt.intent != "benign" and a.verdict is not None]
            known = [a.verdict.failed for a in attacks if a.verdict.label != "unknown"]
            recorded = f"{sum(known) / len(known):.3f}" if known else "-"
            new = under_filter(answers, panel)
            rejudged = "-" if new["asr"] is None else f"{new['asr']:.3f}"
            print(f"| {run.name} | {path.parent.name} | {len(attacks)} | {recorded} | {rejudged} | "
                  f"{len(attacks) - len(known)} / {new['unknown']} | {new['disagree']} | "
                  f"{xstest_refusal(path, rows)} |", flush=True)


if __name__ == "__main__":
    main()
