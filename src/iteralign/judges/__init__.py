"""Judges: who decides whether an answer is aligned, and how several of them combine (see ``judges.base``).

Built in: ``refusal`` (rules), ``paper`` (the authors' few-shot oracle), ``policy`` (the oracle with the
constitution), ``verdict`` (prompt intent x response class x honesty; its parts live in ``iteralign.judging``).
``build_panel(config, context)`` turns a ``JudgeConfig`` into a ``JudgePanel``.
"""

from iteralign.judges.base import (JUDGES, Judge, JudgeConfig, JudgeContext, JudgeItem, JudgePanel, JudgeResult,
                                   JudgeSpec, build_panel, combine)
from iteralign.judges.oracle import OracleJudge, PaperJudge, PolicyJudge
from iteralign.judges.refusal import RefusalJudge
from iteralign.judges.verdict import VerdictJudge

__all__ = ["JUDGES", "Judge", "JudgeConfig", "JudgeContext", "JudgeItem", "JudgePanel", "JudgeResult", "JudgeSpec",
           "OracleJudge", "PaperJudge", "PolicyJudge", "RefusalJudge", "VerdictJudge", "build_panel",
           "combine"]
