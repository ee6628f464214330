"""Constitution-induced self-reflection: the reviser rewrites each failed answer with the relevant principles in
context; revisions are re-judged and only those judged aligned are kept for training. Output: ``revisions.jsonl``.

Two modes:
- ``critique_revise`` (default): system message with the principles, the original exchange, then a user turn asking
  for a revised answer that follows them.
- ``splice`` (the paper): the prompt is regenerated with the principles placed right after the request, just
  before the answer cue; no critique turn.

Each record: ``{id, prompt, original, principle_ids, revision, label, judges, kept}``.
"""

from __future__ import annotations

from pathlib import Path

from iteralign.config import ReflectConfig
from iteralign.constitution import Principle, render
from iteralign.judges import JudgeItem, JudgePanel
from iteralign.models.base import ChatModel
from iteralign.stages.batching import process
from iteralign.templates import load_prompt


def revision_conversation(failure: dict, principles: list[Principle], mode: str) -> list[dict]:
    """The reviser's conversation; with no principles (the ablation without a constitution) the same request to
    revise, minus the principle block."""
    tpl = load_prompt("reflect")
    block = render(principles)
    if mode == "splice":
        text = tpl["splice"].format(prompt=failure["prompt"], principles=block) if principles else failure["prompt"]
        return [{"role": "user", "content": text}]
    if principles:
        system, revise = tpl["system"].format(principles=block), tpl["revise"]
    else:
        system, revise = tpl["system_plain"], tpl["revise_plain"]
    return [
        {"role": "system", "content": system},
        {"role": "user", "content": failure["prompt"]},
        {"role": "assistant", "content": failure["response"]},
        {"role": "user", "content": revise},
    ]


def reflect(failures: list[dict], choose: "callable", reviser: ChatModel, panel: JudgePanel, cfg: ReflectConfig,
            out: Path, batch_size: int) -> list[dict]:
    """Revise each failure with ``choose(failure) -> principles``; judge; keep improved revisions."""

    def run(batch: list[dict]) -> list[dict]:
        chosen = [choose(f) for f in batch]
        convs = [revision_conversation(f, ps, cfg.mode) for f, ps in zip(batch, chosen)]
        revisions = [c.text.strip() for c in reviser.generate(convs, cfg.generation)]
        verdicts = panel.judge([JudgeItem(f["prompt"], r) for f, r in zip(batch, revisions)])
        return [
            {"id": f["id"], "prompt": f["prompt"], "original": f["response"], "principle_ids": [p.id for p in ps],
             "revision": r, "label": v["label"], "judges": v["judges"],
             "kept": bool(r) and (v["label"] == "aligned" or not cfg.filter_with_judge)}
            for f, ps, r, v in zip(batch, chosen, revisions, verdicts)
        ]

    return process(failures, out, run, batch_size, desc="reflect")
