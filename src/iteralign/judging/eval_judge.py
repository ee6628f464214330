"""The evaluation judge of held-out attack success, apart from the training filter.

The loop's judge decides which revisions are trained on; if the same judge also scored held-out ASR, a lower ASR
could only mean that the model learned to say what that judge accepts. So ``eval.judge`` is configured on its own
(default: the verdict judge on a model the loop does not train against), and the ASR is reported under it and,
where the training filter differs, under the filter too, side by side:

- ``asr_judge(panel)`` turns any panel into the ``(prompts, replies) -> [True | False | None]`` callable of the ASR
  evaluation: True = the attack succeeded (unaligned), None = unknown (excluded from the rate and counted);
- ``side_by_side(prompts, replies, eval_panel, train_panel)`` judges the same replies with both and gives both rates,
  the unknown counts and how many verdicts the two judges disagree on; ``format_side_by_side`` is its report line;
- ``under_filter(answers, train_panel)``: the same for answers the evaluation judge has already judged (the
  ``redteam_asr`` benchmark puts it in its score as ``training_filter`` when ``eval.judge`` is set).

Red-team prompts are harmful by construction, so their intent is declared, not classified.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from iteralign.judges import JudgeItem, JudgePanel
from iteralign.records import Answer, Intent

AsrJudge = Callable[[list[str], list[str]], list["bool | None"]]


def asr_judge(panel: JudgePanel, intent: Intent = "harmful") -> AsrJudge:
    """The ASR callable of ``panel``: each reply judged as the answer to a prompt of the given intent."""

    def judge(prompts: list[str], replies: list[str]) -> list[bool | None]:
        verdicts = panel.judge([JudgeItem(p, r, intent) for p, r in zip(prompts, replies)])
        return [None if v.label == "unknown" else v.failed for v in verdicts]

    return judge


def _rate(verdicts: list[bool | None]) -> dict[str, Any]:
    known = [v for v in verdicts if v is not None]
    return {"asr": round(sum(known) / len(known), 4) if known else None, "n": len(known),
            "unknown": len(verdicts) - len(known)}


def _disagree(a: list[bool | None], b: list[bool | None]) -> int:
    return sum(x is not None and y is not None and x != y for x, y in zip(a, b))


def under_filter(answers: Sequence[Answer], train_panel: JudgePanel) -> dict[str, Any]:
    """The ASR of answers judged by the evaluation judge, under the training filter: its rate (``asr``, ``n``,
    ``unknown``) and how many verdicts the two judges disagree on. Answers to benign prompts are not attacks."""
    attacks = [a for a in answers if a.prompt.intent != "benign" and a.verdict is not None]
    ev = [None if a.verdict.label == "unknown" else a.verdict.failed for a in attacks]  # type: ignore[union-attr]
    tr = asr_judge(train_panel)([a.prompt.text for a in attacks], [a.response for a in attacks])
    return {**_rate(tr), "disagree": _disagree(ev, tr)}


def side_by_side(prompts: list[str], replies: list[str], eval_panel: JudgePanel,
                 train_panel: JudgePanel | None = None) -> dict[str, Any]:
    """ASR of the same replies under the evaluation judge and (when given and different) the training filter."""
    ev = asr_judge(eval_panel)(prompts, replies)
    out: dict[str, Any] = {"eval_judge": _rate(ev)}
    if train_panel is not None and train_panel is not eval_panel:
        tr = asr_judge(train_panel)(prompts, replies)
        out["training_filter"] = _rate(tr)
        out["disagree"] = _disagree(ev, tr)
    return out


def format_side_by_side(result: dict[str, Any]) -> str:
    """One line: ``ASR 0.250 (eval judge, n=40, 2 unknown) | 0.400 under the training filter (6 disagree)``."""

    def rate(r: dict[str, Any]) -> str:
        asr = "-" if r["asr"] is None else f"{r['asr']:.3f}"
        return f"{asr} (n={r['n']}, {r['unknown']} unknown)"

    line = f"ASR {rate(result['eval_judge'])} under the evaluation judge"
    if "training_filter" in result:
        line += f" | {rate(result['training_filter'])} under the training filter ({result['disagree']} disagree)"
    return line
