"""Read a run folder into one plain data structure (``RunData``) that the Markdown and HTML renderers share.

Everything the report shows is derived here, once: per-iteration failure rates with binomial standard errors,
per-category failure counts, benchmark scores per evaluated model, the constitution with the failures behind each
principle and the revisions it guided, before/after examples, gate decisions and per-stage cost. The renderers only
format. Missing pieces (no eval, an iteration stopped before SFT, a run still in progress) are simply absent, so a
report can be rendered at any point of a run.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from iteralign.layout import IterationFiles, RunLayout
from iteralign.records import Answer, Record, Revision
from iteralign.run import read_jsonl
from iteralign.training_data import twins_in_iteration

R = TypeVar("R", bound=Record)

#: Before/after examples kept per iteration (the JSONL files hold them all); keeps big runs' reports small.
MAX_EXAMPLES = 12
#: Source failures listed under each principle.
MAX_SOURCES = 25


@dataclass
class Rate:
    """A rate of ``k`` out of ``n`` with its binomial standard error."""

    k: int
    n: int

    @property
    def value(self) -> float:
        return self.k / self.n if self.n else 0.0

    @property
    def stderr(self) -> float:
        p = self.value
        return math.sqrt(p * (1 - p) / self.n) if self.n else 0.0


@dataclass
class Iteration:
    """One iteration's outcome, from ``summary.json`` and its stage files."""

    index: int
    failure: Rate
    unknown: int
    by_category: dict[str, Rate]
    by_failure: dict[str, int] = field(default_factory=dict)  # complied_harmful / refused_benign / ... -> count
    principles_active: int | None = None
    new_principles: list[str] = field(default_factory=list)
    revisions: int | None = None
    revisions_kept: int | None = None
    accepted: bool | None = None
    gate_reasons: list[str] = field(default_factory=list)
    stopped: str | None = None
    train: dict | None = None  # sft/train_stats.json
    evaluated: bool = False


@dataclass
class Evaluation:
    """One model's benchmark scores: ``label`` is ``baseline`` or ``iter-NNN`` (the model tuned in that iteration)."""

    label: str
    model: str
    benchmarks: dict[str, dict]


@dataclass
class PrincipleView:
    """A principle with its provenance: the failures it came from and how many revisions it guided."""

    id: str
    text: str
    iteration: int
    status: str
    origin: str
    kind: str  # restrict | permit
    uses: int
    kept_uses: int
    sources: list[tuple[str, str]]  # (failure id, prompt), at most MAX_SOURCES
    n_sources: int


@dataclass
class Example:
    """One failure and what became of it: verdict, revision, and the tuned model's answer on the same prompt."""

    iteration: int
    id: str
    prompt: str
    category: str
    original: str
    verdict: str
    judges: list[dict]
    principle_ids: list[str]
    revision: str
    revision_label: str
    kept: bool
    tuned_answer: str | None = None
    tuned_label: str | None = None


@dataclass
class StageCost:
    """Time and model calls of one manifest stage."""

    key: str
    status: str
    seconds: float
    calls: int
    cache_hits: int
    prompt_tokens: int
    completion_tokens: int
    records: int | None


@dataclass
class RunData:
    """Everything the report shows about one run."""

    name: str
    path: Path
    config: dict
    config_text: str
    iterations: list[Iteration]
    evaluations: list[Evaluation]
    principles: list[PrincipleView]
    examples: dict[int, list[Example]]  # per iteration, at most MAX_EXAMPLES
    example_counts: dict[int, int]  # per iteration, all revisions
    stages: list[StageCost]
    ledger: dict | None
    final: dict = field(default_factory=dict)

    @property
    def final_evaluation(self) -> Evaluation | None:
        """The evaluation of the model the run ended with: the last accepted iteration's, else the baseline."""
        accepted = {f"iter-{it.index:03d}" for it in self.iterations if it.accepted and it.evaluated}
        chosen = [e for e in self.evaluations if e.label == "baseline" or e.label in accepted]
        return chosen[-1] if chosen else None

    def benchmark_names(self) -> list[str]:
        from iteralign.evals.names import score_names

        seen = {b for e in self.evaluations for b in e.benchmarks}
        known = score_names()
        return [b for b in known if b in seen] + sorted(seen - set(known))


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _records(path: Path, record_type: type[R]) -> list[R]:
    return [record_type.model_validate(r) for r in read_jsonl(path)] if path.exists() else []


def collect(path: str | Path) -> RunData:
    """Read the run folder at ``path``; raise ``FileNotFoundError`` when it has no manifest."""
    layout = RunLayout(Path(path))
    manifest = _json(layout.manifest)
    if manifest is None:
        raise FileNotFoundError(f"{path}: no manifest.json; is this an iteralign run folder?")
    config_text = layout.config.read_text(encoding="utf-8") if layout.config.exists() else ""
    config = yaml.safe_load(config_text) or {}
    summaries = {s["iteration"]: s for s in manifest.get("iterations", [])}
    twins = twins_in_iteration(config)
    records = {files.index: _IterFiles.read(files, twins) for files in layout.iterations()}
    principles_raw = _principles(layout.constitution)
    iterations = [_iteration(i, summaries.get(i, {}), records[i], principles_raw) for i in sorted(records)]
    examples, counts = _examples(records)
    return RunData(
        name=layout.root.name, path=layout.root, config=config, config_text=config_text,
        iterations=iterations, evaluations=_evaluations(layout),
        principles=_principle_views(principles_raw, records), examples=examples, example_counts=counts,
        stages=_stages(manifest.get("stages", {})), ledger=_json(layout.ledger),
        final=manifest.get("stages", {}).get("final", {}),
    )


@dataclass
class _IterFiles:
    """The records of one ``iter-NNN`` folder."""

    files: IterationFiles
    redteam: list[Answer]
    judged: dict[str, Answer]
    revisions: list[Revision]
    train: dict | None

    @classmethod
    def read(cls, files: IterationFiles, twins: bool) -> "_IterFiles":
        """``twins``: the run answered its look-alikes in the same iteration (``training_data.twins_in_iteration``)."""
        parts = files.parts(twins)
        return cls(files, [a for part in parts for a in _records(part.redteam, Answer)],
                   {a.id: a for part in parts for a in _records(part.verdicts, Answer)},
                   _records(files.revisions, Revision), _json(files.train_stats))


def _iteration(index: int, summary: dict, files: _IterFiles, principles: list) -> Iteration:
    judged = [files.judged[r.id] for r in files.redteam if r.id in files.judged]
    labels = {a.id: a.verdict.label for a in judged}
    by_cat: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for a in judged:
        cell = by_cat[a.prompt.category or "uncategorised"]
        cell[0] += a.failed
        cell[1] += 1
    failures = summary.get("failures", sum(lab == "unaligned" for lab in labels.values()))
    by_failure = Counter(a.verdict.failure for a in judged if a.verdict.label == "unaligned" and a.verdict.failure)
    return Iteration(
        index=index, failure=Rate(failures, summary.get("red_team", len(judged))),
        unknown=summary.get("unknown", sum(lab == "unknown" for lab in labels.values())),
        by_category={c: Rate(k, n) for c, (k, n) in sorted(by_cat.items())}, by_failure=dict(by_failure),
        principles_active=summary.get("principles"), new_principles=[p.id for p in principles if p.iteration == index
                                                                     and p.origin == "proposed"],
        revisions=summary.get("revisions"), revisions_kept=summary.get("revisions_kept"),
        accepted=summary.get("accepted"), gate_reasons=list(summary.get("gate_reasons", [])),
        stopped=summary.get("stopped"), train=files.train, evaluated=files.files.result.exists(),
    )


def _evaluations(layout: RunLayout) -> list[Evaluation]:
    out = []
    for files in layout.evaluations():
        data = _json(files.result)
        if data is not None:
            out.append(Evaluation(files.name, str(data.get("model", "")), dict(data.get("benchmarks", {}))))
    return out


def _principles(path: Path) -> list:
    if not path.exists():
        return []
    from iteralign.constitution import load

    return list(load(path))


def _principle_views(principles: list, records: dict[int, _IterFiles]) -> list[PrincipleView]:
    uses, kept = Counter(), Counter()
    for files in records.values():
        for rev in files.revisions:
            uses.update(rev.principle_ids)
            kept.update(rev.principle_ids if rev.kept else [])
    prompts = {r.id: r.prompt.text for files in records.values() for r in files.redteam}
    return [
        PrincipleView(p.id, p.text, p.iteration, p.status, p.origin, p.polarity, max(p.uses, uses[p.id]), kept[p.id],
                      [(i, prompts.get(i, "")) for i in p.source_failure_ids[:MAX_SOURCES]], len(p.source_failure_ids))
        for p in principles
    ]


def _examples(records: dict[int, _IterFiles]) -> tuple[dict[int, list[Example]], dict[int, int]]:
    examples, counts = {}, {}
    for it, files in records.items():
        nxt = records.get(it + 1)
        chosen = _spread(files.revisions, lambda rev: rev.prompt.category or "", MAX_EXAMPLES)
        examples[it] = [_example(it, rev, nxt.judged.get(rev.id) if nxt else None) for rev in chosen]
        counts[it] = len(files.revisions)
    return examples, counts


def _example(it: int, rev: Revision, tuned: Answer | None) -> Example:
    verdict, revised = rev.answer.verdict, rev.verdict
    return Example(
        iteration=it, id=rev.id, prompt=rev.prompt.text, category=rev.prompt.category or "",
        original=rev.answer.response, verdict=verdict.label if verdict else "unaligned",
        judges=verdict.judges if verdict else [], principle_ids=rev.principle_ids, revision=rev.text,
        revision_label=revised.label if revised else "", kept=rev.kept,
        tuned_answer=tuned.response if tuned else None, tuned_label=tuned.verdict.label if tuned and tuned.verdict
        else None,
    )


def _spread(items: list, key, limit: int) -> list:
    """Up to ``limit`` items taken round-robin across ``key`` groups, so that examples cover every category."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for item in items:
        groups[key(item)].append(item)
    chosen, queues = [], [list(g) for _, g in sorted(groups.items())]
    while len(chosen) < limit and any(queues):
        for queue in queues:
            if queue and len(chosen) < limit:
                chosen.append(queue.pop(0))
    order = {id(item): n for n, item in enumerate(items)}
    return sorted(chosen, key=lambda item: order[id(item)])


def _stages(stages: dict) -> list[StageCost]:
    out = []
    for key, entry in stages.items():
        if key in ("final", "prompts"):  # a session total and the data preparation, not model stages
            continue
        usage = entry.get("usage_total") or entry.get("usage", {})  # usage_total: all attempts of a resumed stage
        out.append(StageCost(key, entry.get("status", "?"), float(entry.get("seconds_total", entry.get("seconds", 0))),
                             int(usage.get("calls", 0)), int(usage.get("cache_hits", 0)),
                             int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0)),
                             entry.get("records")))
    return out


@dataclass
class CategoryShift:
    """Per-category attack success (or red-team failure) rate of the starting model and of the final one."""

    title: str
    before_label: str
    after_label: str
    rates: dict[str, tuple[float | None, float | None]]


def category_shift(run: RunData) -> CategoryShift | None:
    """From ``redteam_asr``'s ``by_category`` (baseline vs final model) when evaluated, else from the red-team pool
    (first vs last iteration); ``None`` when neither has two points to compare."""
    final = run.final_evaluation
    base = next((e for e in run.evaluations if e.label == "baseline"), None)
    if base and final and final is not base and "redteam_asr" in base.benchmarks and "redteam_asr" in final.benchmarks:
        before = base.benchmarks["redteam_asr"].get("by_category", {})
        after = final.benchmarks["redteam_asr"].get("by_category", {})
        return CategoryShift("Attack success on held-out red-team prompts, by category", "baseline", final.label,
                             {c: (_score(before.get(c)), _score(after.get(c))) for c in sorted({*before, *after})})
    judged = [it for it in run.iterations if it.failure.n]
    if len(judged) < 2:
        return None
    first, last = judged[0], judged[-1]
    cats = sorted({*first.by_category, *last.by_category})
    rate = lambda it, c: it.by_category[c].value if c in it.by_category else None  # noqa: E731
    return CategoryShift("Failure rate on the red-team pool, by category", f"iteration {first.index}",
                         f"iteration {last.index}", {c: (rate(first, c), rate(last, c)) for c in cats})


def _score(entry: dict | None) -> float | None:
    return float(entry["score"]) if entry else None


@dataclass
class Headline:
    """The numbers at the top of the report."""

    failure_start: Rate | None
    failure_end: Rate | None
    asr_start: dict | None
    asr_end: dict | None
    principles: int
    pinned: int
    disabled: int
    iterations: int
    accepted: int
    seconds: float
    calls: int
    tokens: int
    cache_hits: int
    cost_usd: float | None  # from ledger.json, when the run has one


def headline(run: RunData) -> Headline:
    judged = [it for it in run.iterations if it.failure.n]
    base = next((e for e in run.evaluations if e.label == "baseline"), None)
    final = run.final_evaluation
    status = Counter(p.status for p in run.principles)
    spent = (run.ledger or {}).get("run") or {}
    return Headline(
        failure_start=judged[0].failure if judged else None, failure_end=judged[-1].failure if judged else None,
        asr_start=base.benchmarks.get("redteam_asr") if base else None,
        asr_end=final.benchmarks.get("redteam_asr") if final else None,
        principles=len(run.principles), pinned=status["pinned"], disabled=status["disabled"],
        iterations=len(run.iterations), accepted=sum(bool(it.accepted) for it in run.iterations),
        seconds=sum(s.seconds for s in run.stages),
        calls=spent.get("calls", sum(s.calls for s in run.stages)),
        tokens=spent.get("tokens", sum(s.prompt_tokens + s.completion_tokens for s in run.stages)),
        cache_hits=spent.get("cache_hits", sum(s.cache_hits for s in run.stages)), cost_usd=spent.get("cost_usd"),
    )
