"""Principle deduplication against a labelled table of principle pairs: precision and recall of "duplicate".

Each row of the table (default ``tests/data/principle_pairs.jsonl``: ``a``, ``b``, ``label`` duplicate|distinct,
``kind``, ``set``, ``why``) is judged the way the store judges a new proposal: a store holding ``a`` is asked whether
``b`` restates it (``Constitution.find_duplicate``). Prints precision and recall of "duplicate" (overall and per
``set``), the confusion per kind of pair (polarity, distinct harms, paraphrases, ...) and every pair judged wrongly.

    .venv/bin/python bench/dedupe_pairs.py [--pairs FILE] [--threshold 0.6]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from iteralign.constitution import Constitution, Principle  # noqa: E402


def judged_duplicate(a: str, b: str, threshold: float) -> bool:
    """Would a store holding ``a`` refuse ``b`` as a restatement of it?"""
    store = Constitution([Principle(id="P001", text=a)], similarity_threshold=threshold)
    return store.find_duplicate(b) is not None


def score(pairs: list[dict], threshold: float) -> dict:
    """Precision, recall, confusion per kind and the wrongly judged pairs."""
    counts = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    by_kind: dict[str, dict[str, int]] = defaultdict(lambda: {"right": 0, "wrong": 0})
    wrong = []
    for pair in pairs:
        said, truth = judged_duplicate(pair["a"], pair["b"], threshold), pair["label"] == "duplicate"
        counts[("t" if said == truth else "f") + ("p" if said else "n")] += 1
        by_kind[pair["kind"]]["right" if said == truth else "wrong"] += 1
        if said != truth:
            wrong.append(pair)
    precision = counts["tp"] / (counts["tp"] + counts["fp"]) if counts["tp"] + counts["fp"] else 1.0
    recall = counts["tp"] / (counts["tp"] + counts["fn"]) if counts["tp"] + counts["fn"] else 1.0
    return {"pairs": len(pairs), **counts, "precision": precision, "recall": recall, "by_kind": dict(by_kind),
            "wrong": wrong}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=Path, default=ROOT / "tests" / "data" / "principle_pairs.jsonl")
    parser.add_argument("--threshold", type=float, default=0.6, help="propose.similarity_threshold")
    args = parser.parse_args()
    pairs = [json.loads(line) for line in args.pairs.read_text(encoding="utf-8").splitlines() if line.strip()]
    result = score(pairs, args.threshold)
    for name, part in [("all", pairs)] + [(s, [p for p in pairs if p.get("set") == s])
                                           for s in sorted({p.get("set") for p in pairs} - {None})]:
        r = result if name == "all" else score(part, args.threshold)
        print(f"{name}: {r['pairs']} pairs, threshold {args.threshold}: precision {r['precision']:.3f}, "
              f"recall {r['recall']:.3f} (tp {r['tp']}, fp {r['fp']}, fn {r['fn']}, tn {r['tn']})")
    for kind, cell in sorted(result["by_kind"].items()):
        print(f"  {kind:16s} right {cell['right']:3d}  wrong {cell['wrong']:3d}")
    for pair in result["wrong"]:
        print(f"WRONG ({pair['label']}, {pair['kind']}): {pair['a']!r} | {pair['b']!r}")


if __name__ == "__main__":
    main()
