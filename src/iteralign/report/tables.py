"""The report's tables as plain rows of ``Cell`` s, shared by the Markdown and HTML renderers.

A cell carries its text, an optional change (``delta``, e.g. ``+4.2 pp``) and a ``tone`` (``good``/``bad``) that
already accounts for the metric's direction (a falling attack success rate is good), so both renderers agree on what
is an improvement and neither repeats the logic.
"""

from __future__ import annotations

from dataclasses import dataclass

from iteralign.report.collect import Rate, RunData

EPS = 1e-9


@dataclass
class Cell:
    text: str
    delta: str = ""
    tone: str = ""  # "good", "bad" or "" (no change / not applicable)

    def plain(self) -> str:
        return f"{self.text} ({self.delta})" if self.delta else self.text


@dataclass
class Table:
    header: list[str]
    rows: list[list[Cell]]
    note: str = ""


def pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value * 100:.{digits}f}%"


def filter_asr(start: dict, end: dict) -> str:
    """`` (training filter: a → b)`` when the held-out ASR was also judged by the training filter (``eval.judge``
    set apart from ``judge``), else nothing: a gap between the two is a filter the model may have learned to please."""
    a, b = start.get("training_filter"), end.get("training_filter")
    if not a or not b or a.get("asr") is None or b.get("asr") is None:
        return ""
    return f" (training filter: {pct(a['asr'])} → {pct(b['asr'])})"


def usd(value: float) -> str:
    """Dollars: cents above $1, a tenth of a cent below (small runs cost fractions of a cent)."""
    return f"${value:,.2f}" if value >= 1 else f"${value:.3f}"


def score_text(score: float, stderr: float | None) -> str:
    return f"{score:.3f} ± {stderr:.3f}" if stderr is not None else f"{score:.3f}"


def change(before: float, after: float, lower_is_better: bool, percent: bool = True) -> tuple[str, str]:
    """``(delta text, tone)`` of a move from ``before`` to ``after``; pp = percentage points."""
    diff = after - before
    if abs(diff) < EPS:
        return ("±0 pp" if percent else "±0"), ""
    text = f"{diff * 100:+.1f} pp" if percent else f"{diff:+.3f}"
    return text, "good" if (diff < 0) == lower_is_better else "bad"


def rate_cell(rate: Rate, start: Rate | None) -> Cell:
    """A failure rate with its stderr and its change since ``start`` (``–`` when nothing was judged yet)."""
    if not rate.n:
        return Cell("–")
    cell = Cell(f"{pct(rate.value)} ± {pct(rate.stderr)}")
    if start is not None and start is not rate:
        cell.delta, cell.tone = change(start.value, rate.value, lower_is_better=True)
    return cell


def iterations_table(run: RunData) -> Table:
    """Per iteration: red-team outcome (with change since the first), principles, revisions, gate."""
    judged = [it for it in run.iterations if it.failure.n]
    start = judged[0].failure if judged else None
    rows = []
    for it in run.iterations:
        kept = "–" if it.revisions is None else f"{it.revisions_kept}/{it.revisions}"
        kinds = it.by_failure
        rows.append([Cell(str(it.index)), Cell(str(it.failure.n)), Cell(str(it.failure.k)),
                     Cell(str(kinds.get("complied_harmful", 0))), Cell(str(kinds.get("refused_benign", 0))),
                     rate_cell(it.failure, start),
                     Cell(str(it.unknown)), Cell(", ".join(it.new_principles) or "–"),
                     Cell("–" if it.principles_active is None else str(it.principles_active)), Cell(kept),
                     decision_cell(it)])
    return Table(["iteration", "red-teamed", "failures", "harmful answered", "benign refused", "failure rate",
                  "unknown", "new principles", "active principles", "revisions kept", "gate"], rows,
                 "failure rate = share of red-team answers (harmful prompts and their benign look-alikes) the judge "
                 "found unaligned; harmful answered / benign refused split the failures by kind; ± is the binomial "
                 "standard error; change is against the first iteration.")


def decision_cell(it) -> Cell:
    if it.accepted is True:
        return Cell("accepted", tone="good")
    if it.accepted is False:
        return Cell("rejected", tone="bad")
    return Cell(f"stopped: {it.stopped}" if it.stopped else "–")


def metrics_table(run: RunData) -> Table | None:
    """Every benchmark for every evaluated model: score ± stderr, and the change since the baseline."""
    from iteralign.evals.names import lower_is_better

    names = run.benchmark_names()
    if not names:
        return None
    base = run.evaluations[0]
    rows = []
    for name in names:
        row = [Cell(name + (" ↓" if lower_is_better(name) else "")),
               Cell(str(max(int(e.benchmarks[name].get("n", 0)) for e in run.evaluations if name in e.benchmarks)))]
        for ev in run.evaluations:
            entry = ev.benchmarks.get(name)
            if entry is None:
                row.append(Cell("–"))
                continue
            cell = Cell(score_text(float(entry["score"]), entry.get("stderr")))
            if ev is not base and name in base.benchmarks:
                cell.delta, cell.tone = change(float(base.benchmarks[name]["score"]), float(entry["score"]),
                                               lower_is_better(name))
            row.append(cell)
        rows.append(row)
    return Table(["benchmark", "n"] + [e.label for e in run.evaluations], rows,
                 f"score ± standard error; change against {base.label}; ↓ = lower is better. A column "
                 "iter-NNN is the model fine-tuned in that iteration.")


def gate_table(run: RunData) -> Table:
    rows = []
    for it in run.iterations:
        why = "; ".join(it.gate_reasons) or ("no guarded benchmark regressed" if it.accepted else it.stopped or "–")
        rows.append([Cell(str(it.index)), decision_cell(it), Cell(why)])
    return Table(["iteration", "decision", "reasons"], rows,
                 "The gate keeps the previous model when a guarded benchmark regresses past its threshold.")


def cost_table(run: RunData) -> Table:
    """Time and model calls per manifest stage, with a total row."""
    rows = [[Cell(s.key), Cell(s.status), Cell(f"{s.seconds:,.1f}"), Cell(f"{s.calls:,}"), Cell(f"{s.cache_hits:,}"),
             Cell(f"{s.prompt_tokens:,}"), Cell(f"{s.completion_tokens:,}"),
             Cell("–" if s.records is None else f"{s.records:,}")] for s in run.stages]
    total = lambda attr: sum(getattr(s, attr) for s in run.stages)  # noqa: E731
    rows.append([Cell("total"), Cell(""), Cell(f"{total('seconds'):,.1f}"), Cell(f"{total('calls'):,}"),
                 Cell(f"{total('cache_hits'):,}"), Cell(f"{total('prompt_tokens'):,}"),
                 Cell(f"{total('completion_tokens'):,}"), Cell("")])
    return Table(["stage", "status", "seconds", "model calls", "cache hits", "prompt tokens", "completion tokens",
                  "records"], rows, "From manifest.json; seconds include earlier attempts of resumed stages.")


def ledger_tables(ledger: dict | None, prefix: str = "") -> list[tuple[str, Table]]:
    """``ledger.json`` (the cost ledger) as titled tables: a mapping's scalar fields as one field/value table, each
    mapping of mappings (per model, per stage) as a table with the union of their fields as columns, other nested
    mappings recursively. Generic on purpose: new ledger fields show up without a change here."""
    if not ledger:
        return []
    scalars = [[Cell(k), Cell(_fmt(v))] for k, v in ledger.items() if not isinstance(v, dict)]
    out = [(prefix or "summary", Table(["field", "value"], scalars))] if scalars else []
    for key, value in ledger.items():
        if not isinstance(value, dict) or not value:
            continue
        title = f"{prefix} · {key}" if prefix else key
        if all(isinstance(v, dict) for v in value.values()):
            cols = list(dict.fromkeys(c for v in value.values() for c in v if not isinstance(v[c], (dict, list))))
            rows = [[Cell(name)] + [Cell(_fmt(v.get(c))) for c in cols] for name, v in value.items()]
            out.append((title, Table([key] + cols, rows)))
        else:
            out += ledger_tables(value, title)
    return out


def _fmt(value) -> str:
    if value is None or value == []:
        return "–"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:,.4f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:,.1f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)
