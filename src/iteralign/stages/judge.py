"""Judging: the judge panel labels each answer aligned / unaligned / unknown. Output: ``verdicts.jsonl``.

Each record is the ``Answer`` with its ``Verdict`` (label, which way it failed, the reason, and every judge's raw
reply and deciding parts, kept for audit).
"""

from __future__ import annotations

from pathlib import Path

from iteralign.answering import judge
from iteralign.judges import JudgePanel
from iteralign.records import Answer
from iteralign.stages.batching import process


def judge_stage(answers: list[Answer], panel: JudgePanel, out: Path, batch_size: int,
                desc: str = "judge") -> list[Answer]:
    """The answers with their verdicts, judged as replies to their prompts."""
    return process(answers, out, lambda batch: judge(panel, batch), batch_size, desc, Answer)
