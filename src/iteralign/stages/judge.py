"""Judging: the judge panel labels each answer aligned / unaligned / unknown. Output: ``verdicts.jsonl``.

Each record: ``{id, label, judges: [{judge, label, raw, sure}]}``; the raw text of every judge is kept for audit.
"""

from __future__ import annotations

from pathlib import Path

from iteralign.judges import JudgeItem, JudgePanel
from iteralign.stages.batching import process


def judge_stage(records: list[dict], panel: JudgePanel, out: Path, batch_size: int,
                response_key: str = "response", desc: str = "judge") -> list[dict]:
    """Judge ``record[response_key]`` as the answer to ``record['prompt']`` for each record."""

    def run(batch: list[dict]) -> list[dict]:
        verdicts = panel.judge([JudgeItem(r["prompt"], r[response_key]) for r in batch])
        return [{"id": r["id"], **v} for r, v in zip(batch, verdicts)]

    return process(records, out, run, batch_size, desc=desc)
