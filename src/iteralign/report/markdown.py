"""``report.md``: the run report as plain Markdown (tables and text; the figures are in ``report.html``).

Readable in a terminal, a pull request or a notebook; it carries the same numbers as the HTML page.
"""

from __future__ import annotations

from iteralign.report.collect import RunData, category_shift, headline
from iteralign.report.tables import Cell, Table, cost_table, gate_table, iterations_table, ledger_tables
from iteralign.report.tables import filter_asr, metrics_table, pct, usd


def table(t: Table) -> str:
    esc = lambda s: s.replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| " + " | ".join(esc(h) for h in t.header) + " |", "|" + "---|" * len(t.header)]
    lines += ["| " + " | ".join(esc(c.plain()) for c in row) + " |" for row in t.rows]
    return "\n".join(lines) + (f"\n\n_{t.note}_" if t.note else "")


def _quote(text: str, limit: int = 600) -> str:
    text = text if len(text) <= limit else text[:limit] + " …"
    return "\n".join("> " + line for line in (text.splitlines() or [""]))


def summary(run: RunData) -> str:
    h = headline(run)
    lines = [f"- iterations: {h.iterations} ({h.accepted} accepted by the gate)"]
    if h.failure_start:
        lines.append(f"- red-team failure rate: {pct(h.failure_start.value)} → {pct(h.failure_end.value)}")
    if h.asr_start and h.asr_end:
        lines.append(f"- attack success (held out): {pct(h.asr_start['score'])} → {pct(h.asr_end['score'])}"
                     + filter_asr(h.asr_start, h.asr_end))
    lines.append(f"- principles: {h.principles} ({h.pinned} pinned, {h.disabled} disabled)")
    cost = f"{usd(h.cost_usd)} estimated, " if h.cost_usd else ""
    lines.append(f"- cost: {cost}{h.calls:,} model calls, {h.tokens:,} tokens, {h.cache_hits:,} cache hits, "
                 f"{h.seconds:,.0f} s")
    return "\n".join(lines)


def constitution(run: RunData) -> str:
    if not run.principles:
        return "_No principles yet._"
    out = []
    for kind, title in (("restrict", "Restrict (what to refuse)"), ("permit", "Permit (what to answer)")):
        group = [p for p in run.principles if p.kind == kind]
        if group:
            out.append(f"**{title}**\n")
        for p in group:
            out.append(f"- **{p.id}** [{p.status}, {p.origin}, iteration {p.iteration}, {p.n_sources} source "
                       f"failure(s), guided {p.uses} revision(s), {p.kept_uses} kept]: {p.text}")
    return "\n".join(out)


def _answer(title: str, label: str | None, text: str) -> str:
    """A quoted answer; one judged unaligned is folded in ``<details>`` (rendered collapsed on GitHub and most
    Markdown viewers) so harmful text is not shown by default."""
    if label == "unaligned":
        return f"<details><summary>{title} (unaligned: click to show)</summary>\n\n{_quote(text)}\n\n</details>"
    return f"**{title} ({label or 'not judged'}):**\n\n{_quote(text)}"


def examples(run: RunData) -> str:
    out = []
    for it, items in run.examples.items():
        for ex in items:
            tuned = "" if ex.tuned_answer is None else "\n\n" + _answer(
                f"Tuned model, iteration {it + 1}", ex.tuned_label, ex.tuned_answer)
            out.append(
                f"#### iteration {it} · {ex.id} · {ex.category or 'uncategorised'}\n\n"
                f"**Prompt:**\n\n{_quote(ex.prompt)}"
                f"\n\n{_answer('Original answer', ex.verdict, ex.original)}\n\n"
                f"**Revision ({ex.revision_label}, {'kept' if ex.kept else 'dropped'}; principles "
                f"{', '.join(ex.principle_ids) or '–'}):**\n\n{_quote(ex.revision)}{tuned}")
        if run.example_counts.get(it, 0) > len(items):
            out.append(f"_{len(items)} of {run.example_counts[it]} revisions of iteration {it} shown; all are in "
                       f"iter-{it:03d}/revisions.jsonl._")
    return "\n\n".join(out) or "_No revisions yet._"


def categories(run: RunData) -> list[str]:
    shift = category_shift(run)
    if not shift:
        return []
    rows = [[Cell(c), Cell(pct(b)), Cell(pct(a))] for c, (b, a) in shift.rates.items()]
    return [f"## {shift.title}", table(Table(["category", shift.before_label, shift.after_label], rows))]


def render(run: RunData) -> str:
    """The whole Markdown report."""
    parts = [f"# iteralign run `{run.name}`", summary(run), "## Iterations", table(iterations_table(run))]
    metrics = metrics_table(run)
    if metrics:
        parts += ["## Benchmarks", table(metrics)]
    parts += categories(run)
    parts += ["## Constitution", constitution(run), "## Gate decisions", table(gate_table(run)),
              "## Cost", table(cost_table(run))]
    for title, t in ledger_tables(run.ledger):
        parts += [f"### Ledger: {title}", table(t)]
    config = "```yaml\n" + run.config_text.rstrip() + "\n```"
    parts += ["## Before and after", examples(run), "## Configuration", config]
    return "\n\n".join(parts) + "\n"
