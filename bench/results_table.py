"""The RESULTS.md tables of one or more finished runs, as Markdown on stdout.

Per run, one row per evaluated model (``baseline``, then the model tuned in each iteration): attack success on the
held-out red-team prompts (overall and per source category), XSTest refusal on safe and unsafe prompts, BIG-bench HHH
(4 categories and overall), TruthfulQA MC1/MC2, the training pool's failure rate that iteration, principles in the
constitution, revisions kept, and the run's wall time up to that row (sum of stage seconds from the manifest).
Then the first principles verbatim.

    .venv/bin/python bench/results_table.py runs/results-135m [runs/results-qwen-0.5b ...] [--principles 4]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from iteralign.report.collect import RunData, collect  # noqa: E402

COLUMNS = [  # (header, benchmark, category of redteam_asr or None)
    ("ASR all", "redteam_asr", None), ("ASR AdvBench", "redteam_asr", "advbench"),
    ("ASR HH-RLHF", "redteam_asr", "hh_rlhf"), ("XSTest safe refusal", "xstest_safe_refusal", None),
    ("XSTest unsafe refusal", "xstest_unsafe_refusal", None), ("HHH harmless", "hhh_harmless", None),
    ("HHH helpful", "hhh_helpful", None), ("HHH honest", "hhh_honest", None), ("HHH other", "hhh_other", None),
    ("HHH overall", "hhh_overall", None), ("TQA MC1", "truthfulqa_mc1", None), ("TQA MC2", "truthfulqa_mc2", None),
]


def score(benchmarks: dict, name: str, category: str | None) -> str:
    entry = benchmarks.get(name)
    if entry and category:
        entry = entry.get("by_category", {}).get(category)
    return "–" if not entry else f"{entry['score']:.3f}"


def seconds_until(run: RunData, label: str) -> float:
    """Wall time of every stage up to and including ``label``'s evaluation (``baseline`` or ``iter-NNN``)."""
    last = -1 if label == "baseline" else int(label[5:])
    total = 0.0
    for stage in run.stages:
        head = stage.key.split("/")[0]
        if head.startswith("iter-") and int(head[5:]) > last:  # the baseline's ``last`` is -1: no iteration
            continue
        total += stage.seconds
    return total


def table(run: RunData) -> str:
    """One Markdown table: a row per evaluated model."""
    extra = ["pool failures", "principles", "revisions kept", "gate", "wall time (min)"]
    lines = ["| model | " + " | ".join(h for h, _, _ in COLUMNS + [(e, 0, 0) for e in extra]) + " |",
             "|---" * (len(COLUMNS) + len(extra) + 1) + "|"]
    iterations = {f"iter-{it.index:03d}": it for it in run.iterations}
    for ev in run.evaluations:
        it = iterations.get(ev.label)
        facts = ["–"] * 4 if it is None else [
            f"{it.failure.k}/{it.failure.n}", str(it.principles_active if it.principles_active is not None else "–"),
            f"{it.revisions_kept}/{it.revisions}" if it.revisions is not None else "–",
            {True: "accepted", False: "rejected", None: "–"}[it.accepted],
        ]
        cells = [score(ev.benchmarks, name, cat) for _, name, cat in COLUMNS]
        label = ev.label if it is None else f"after iteration {it.index + 1}"
        lines.append(f"| {label} | " + " | ".join(cells + facts + [f"{seconds_until(run, ev.label) / 60:.1f}"]) + " |")
    return "\n".join(lines)


def principles(run: RunData, count: int) -> str:
    return "\n".join(f"- {p.id} (iteration {p.iteration}, {p.n_sources} source failures, {p.kept_uses} kept "
                     f"revisions): \"{' '.join(p.text.split())}\"" for p in run.principles[:count])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--principles", type=int, default=4, help="Principles quoted per run.")
    args = parser.parse_args()
    for path in args.runs:
        run = collect(path)
        print(f"### {run.name} (target {run.config.get('models', {}).get('target', {}).get('spec', '?')})\n")
        print(table(run) + "\n")
        print(f"{len(run.principles)} principles; the first {min(args.principles, len(run.principles))}:\n")
        print(principles(run, args.principles) + "\n")


if __name__ == "__main__":
    main()
