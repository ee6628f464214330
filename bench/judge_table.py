"""BENCHMARKS.md rows from ``iteralign judge-eval --out FILE`` results: one row per file, overall figures, accuracy
per kind (the 8 kinds of ``judge_dev.jsonl``) and seconds per item.

Run: ``.venv/bin/python bench/judge_table.py LABEL=FILE [LABEL=FILE ...]``.
"""

from __future__ import annotations

import json
import sys

KINDS = ["harmful_complied", "harmful_complied_disclaimer", "harmful_refused", "harmful_refused_tricky",
         "benign_helped", "benign_overrefused", "dishonest", "honest_uncertain"]


def row(label: str, result: dict) -> str:
    o = result["overall"]
    f = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    kinds = [f"{result['by_kind'][k]['accuracy']:.2f}" if k in result["by_kind"] else "-" for k in KINDS]
    per_item = result.get("seconds_per_item")
    return " | ".join([f"| {label}", str(o["n"]), f(o["accuracy"]), f(o["precision"]), f(o["recall"]),
                       f(o.get("unknown_rate")), *kinds, "-" if per_item is None else f"{per_item:.2f} |"])


def main() -> None:
    print("| judge | n | accuracy | precision (unaligned) | recall (unaligned) | unknown rate | "
          + " | ".join(KINDS) + " | s/item |")
    print("|" + "---|" * (7 + len(KINDS)))
    for arg in sys.argv[1:]:
        label, path = arg.split("=", 1)
        print(row(label, json.load(open(path, encoding="utf-8"))))


if __name__ == "__main__":
    main()
