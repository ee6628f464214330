"""Judge calibration: score a judge panel against labelled (prompt, response, label) items.

The judge decides everything downstream (which answers are failures, which revisions are kept), so we measure it
instead of trusting it. A labelled file is JSONL, one item per line::

    {"id": "dev-001", "prompt": "...", "response": "...", "label": "aligned" | "unaligned", "kind": "harmful_refused"}

``kind`` (optional) groups items by the trap they set (refusals that name dangerous things, compliance wrapped in a
disclaimer, over-refusal of a harmless request...), so the report shows *where* a judge goes wrong. Metrics treat
"unaligned" as the positive class, the one the loop acts on: precision = of the answers flagged, how many were bad;
recall = of the bad answers, how many were flagged. An ``unknown`` verdict is never right: it lowers accuracy and
recall, and is counted separately. `iteralign judge-eval --judge CONFIG --data FILE` is the command line.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from iteralign.data.records import DataError, RowError, read_jsonl
from iteralign.config import RunConfig, apply_override
from iteralign.judges import JudgeConfig, JudgeItem, JudgePanel
from iteralign.models.base import ModelConfig
from iteralign.run import RunSettings
from iteralign.types import Strict

LABELS = ("aligned", "unaligned")


class CalibrationError(ValueError):
    """A labelled file or judge config that cannot be used; the message names the file (and line)."""


class LabelledItem(BaseModel):
    """One labelled judge decision; fields other than these (``note``...) are allowed and ignored."""

    model_config = ConfigDict(extra="ignore")
    id: str | None = None
    prompt: str
    response: str
    label: Literal["aligned", "unaligned"]
    kind: str = "unspecified"
    intent: Literal["harmful", "benign"] | None = None  # declared intent, passed to the judge; None: it classifies


def load_labelled(path: str | Path, limit: int | None = None) -> list[LabelledItem]:
    """Read a labelled JSONL file; any bad line is an error naming ``file:line`` and the field."""
    path = Path(path)
    items: list[LabelledItem] = []
    seen: dict[str, int] = {}
    try:
        rows = list(read_jsonl(path))  # the prompt reader: UTF-8, BOM, deep or huge JSON give file:line errors
    except DataError as exc:
        raise CalibrationError(str(exc)) from None
    for row in rows:
        if isinstance(row, RowError):
            raise CalibrationError(str(row))
        lineno = int(row.where.rsplit(":", 1)[1])
        if not isinstance(row.record, dict):
            raise CalibrationError(f"{row.where}: expected a JSON object, got {type(row.record).__name__}")
        try:
            item = LabelledItem.model_validate(row.record)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"]) or "<item>"
            raise CalibrationError(f"{row.where}: field {field!r}: {err['msg']}") from None
        item.id = item.id or f"line-{lineno}"
        if item.id in seen:
            raise CalibrationError(f"{path}:{lineno}: duplicate id {item.id!r} (first on line {seen[item.id]})")
        seen[item.id] = lineno
        items.append(item)
    if not items:
        raise CalibrationError(f"{path}: no labelled items")
    return items[:limit] if limit else items


def metrics(gold: list[str], pred: list[str]) -> dict[str, Any]:
    """Accuracy, precision/recall/F1 for "unaligned", and counts; an ``unknown`` prediction is always wrong."""
    pairs = list(zip(gold, pred, strict=True))
    tp = sum(g == "unaligned" and p == "unaligned" for g, p in pairs)
    fp = sum(g == "aligned" and p == "unaligned" for g, p in pairs)
    fn = sum(g == "unaligned" and p != "unaligned" for g, p in pairs)
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None
    return {
        "n": len(pairs),
        "accuracy": sum(g == p for g, p in pairs) / len(pairs) if pairs else None,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "unknown": sum(p == "unknown" for p in pred),
        "unknown_rate": sum(p == "unknown" for p in pred) / len(pairs) if pairs else None,
        "confusion": {g: {p: sum(gg == g and pp == p for gg, pp in pairs) for p in (*LABELS, "unknown")}
                      for g in LABELS},
    }


def by_kind(items: list[LabelledItem], pred: list[str]) -> dict[str, dict[str, Any]]:
    """Per item kind: its gold label(s), how the judge labelled its items, and the accuracy."""
    out: dict[str, dict[str, Any]] = {}
    for kind in sorted({it.kind for it in items}):
        idx = [i for i, it in enumerate(items) if it.kind == kind]
        counts = Counter(pred[i] for i in idx)
        gold = sorted({items[i].label for i in idx})
        out[kind] = {"n": len(idx), "gold": gold[0] if len(gold) == 1 else "mixed",
                     **{lab: counts.get(lab, 0) for lab in (*LABELS, "unknown")},
                     "accuracy": sum(pred[i] == items[i].label for i in idx) / len(idx)}
    return out


def calibrate(panel: JudgePanel, items: list[LabelledItem], batch_size: int = 8, progress=None) -> dict[str, Any]:
    """Judge every item with ``panel`` (in batches) and score the verdicts against the labels.

    Returns ``{"overall": metrics, "by_kind": ..., "items": [{id, kind, label, pred, failure, judges}],
    "seconds": ..., "seconds_per_item": ...}``; each judge's record keeps its reason and parts when it gives them.
    An item's declared ``intent`` reaches the judges; without one, judges that need it classify it.
    """
    started = time.time()
    verdicts = []
    for start in range(0, len(items), batch_size):
        batch = items[start : start + batch_size]
        verdicts += panel.judge([JudgeItem(it.prompt, it.response, it.intent) for it in batch])
        if progress:
            progress(len(verdicts), len(items))
    pred = [v.label for v in verdicts]
    seconds = time.time() - started
    keep = ("judge", "label", "raw", "failure", "reason", "parts")
    return {
        "overall": metrics([it.label for it in items], pred),
        "by_kind": by_kind(items, pred),
        "items": [{"id": it.id, "kind": it.kind, "label": it.label, "pred": p, "failure": v.failure,
                   "judges": [{k: j[k] for k in keep if k in j} for j in v.judges]}
                  for it, p, v in zip(items, pred, verdicts)],
        "seconds": round(seconds, 2),
        "seconds_per_item": round(seconds / len(items), 4) if items else None,
    }


# --- the judge config of `iteralign judge-eval` --------------------------------------------------------------------


class JudgeModels(Strict):
    oracle: ModelConfig | None = Field(None, description="Default model of the oracle judges (paper, policy).")


class JudgeEvalConfig(Strict):
    """What `judge-eval` needs: the ``judge:`` section and the oracle it defaults to (cache settings optional).

    It has the ``run`` and ``models`` attributes ``Roles`` reads, so the same code builds the panel as in a run.
    """

    run: RunSettings = Field(default_factory=RunSettings)
    models: JudgeModels = Field(default_factory=JudgeModels)
    judge: JudgeConfig = Field(default_factory=JudgeConfig)

    @model_validator(mode="after")
    def _oracle_when_needed(self) -> "JudgeEvalConfig":
        for n, spec in enumerate(self.judge.judges):
            if spec.needs_model() and spec.model is None and self.models.oracle is None:
                raise ValueError(f"judge.judges.{n} ({spec.kind}) has no model and models.oracle is not set")
        return self


def load_judge_config(path: str | Path, overrides: list[str] = ()) -> JudgeEvalConfig:
    """Read a judge config: a YAML with ``judge:`` and ``models: {oracle: ...}``, or a whole run config."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise CalibrationError(f"judge config not found: {path}") from None
    except yaml.YAMLError as exc:
        raise CalibrationError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise CalibrationError(f"{path}: the top level must be a mapping with a 'judge:' section")
    for assignment in overrides:
        apply_override(data, assignment)
    try:
        if set(data) - {"run", "models", "judge"} or "target" in data.get("models", {}):
            full = RunConfig.model_validate(data)  # a run config: take its judge and oracle
            return JudgeEvalConfig(run=full.run, models=JudgeModels(oracle=full.models.oracle), judge=full.judge)
        return JudgeEvalConfig.model_validate(data)
    except ValidationError as exc:
        lines = [f"{path}: invalid judge config ({exc.error_count()} error(s)):"]
        lines += [f"  {'.'.join(str(p) for p in e['loc']) or '<top level>'}: {e['msg']}" for e in exc.errors()]
        raise CalibrationError("\n".join(lines)) from None


def format_report(result: dict[str, Any], title: str = "") -> str:
    """A plain-text table: overall metrics, then the labels given per item kind."""
    o = result["overall"]
    pct = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    lines = [title] if title else []
    per_item = result.get("seconds_per_item")
    lines.append(f"n={o['n']}  accuracy={pct(o['accuracy'])}  precision(unaligned)={pct(o['precision'])}  "
                 f"recall(unaligned)={pct(o['recall'])}  f1={pct(o['f1'])}  unknown={o['unknown']} "
                 f"({pct(o.get('unknown_rate'))})  ({result['seconds']:.0f} s, "
                 f"{'-' if per_item is None else f'{per_item:.2f}'} s/item)")
    lines.append(f"{'kind':30} {'gold':9} {'n':>3} {'aligned':>7} {'unaligned':>9} {'unknown':>7} {'acc':>6}")
    for kind, row in result["by_kind"].items():
        lines.append(f"{kind:30} {row['gold']:9} {row['n']:>3} {row['aligned']:>7} {row['unaligned']:>9} "
                     f"{row['unknown']:>7} {row['accuracy']:>6.2f}")
    return "\n".join(lines)
