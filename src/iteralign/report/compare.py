"""Two runs side by side (e.g. the default preset against the paper preset): ``iteralign compare RUN_A RUN_B``.

Rows are the headline outcomes (red-team failure rate at the start and end, iterations, principles, cost) and every
benchmark score of each run's final model; the last column is B - A, coloured by whether it is an improvement.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from iteralign.report.collect import RunData, collect, headline
from iteralign.report.tables import Cell, Table, change, pct


def _row(name: str, a: float | None, b: float | None, fmt, lower_is_better: bool | None, percent: bool) -> list[Cell]:
    cells = [Cell(name), Cell("–" if a is None else fmt(a)), Cell("–" if b is None else fmt(b))]
    if a is None or b is None:
        return cells + [Cell("–")]
    if lower_is_better is None:
        return cells + [Cell(f"{b - a:+,.0f}")]
    delta, tone = change(a, b, lower_is_better, percent)
    return cells + [Cell(delta, tone=tone)]


def compare_table(a: RunData, b: RunData) -> Table:
    """The comparison as one table (columns: metric, A, B, B - A)."""
    from iteralign.evals.names import lower_is_better

    ha, hb = headline(a), headline(b)
    value = lambda rate: None if rate is None else rate.value  # noqa: E731
    score = lambda run, name: (run.final_evaluation.benchmarks[name]["score"]  # noqa: E731
                               if run.final_evaluation and name in run.final_evaluation.benchmarks else None)
    rows = [
        _row("red-team failure rate, first iteration", value(ha.failure_start), value(hb.failure_start), pct, True,
             True),
        _row("red-team failure rate, last iteration", value(ha.failure_end), value(hb.failure_end), pct, True, True),
        _row("iterations", ha.iterations, hb.iterations, str, None, False),
        _row("iterations accepted", ha.accepted, hb.accepted, str, None, False),
        _row("principles", ha.principles, hb.principles, str, None, False),
    ]
    names = list(dict.fromkeys(a.benchmark_names() + b.benchmark_names()))
    rows += [_row(f"{n} (final model)" + (" ↓" if lower_is_better(n) else ""), score(a, n), score(b, n),
                  lambda v: f"{v:.3f}", lower_is_better(n), True) for n in names]
    rows += [
        _row("model calls", ha.calls, hb.calls, lambda v: f"{v:,}", None, False),
        _row("tokens", ha.tokens, hb.tokens, lambda v: f"{v:,}", None, False),
        _row("seconds", ha.seconds, hb.seconds, lambda v: f"{v:,.0f}", None, False),
    ]
    return Table(["metric", f"A: {a.name}", f"B: {b.name}", "B − A"], rows,
                 "pp = percentage points; green = B better, red = B worse; ↓ = lower is better.")


def compare(run_a: str | Path, run_b: str | Path, out: str | Path | None = None) -> str:
    """The comparison as Markdown; with ``out`` also written there (``.html``: a self-contained page)."""
    from iteralign.report import html, markdown, plots
    from iteralign.run import atomic_write

    a, b = collect(run_a), collect(run_b)
    t = compare_table(a, b)
    text = f"# iteralign: {a.name} vs {b.name}\n\n" + markdown.table(t) + "\n"
    if out is not None:
        out = Path(out)
        if out.suffix.lower() in (".html", ".htm"):
            body = html.section("compare", "Side by side", html.table(t)) + html.section(
                "curves", "Red-team failure rate per iteration",
                html.figure(plots.failure_rates({a.name: a, b.name: b}), "A and B, ± standard error", "failure rates"))
            heading = f'<span class="run">{escape(a.name)}</span> vs <span class="run">{escape(b.name)}</span>'
            paths = f"A <code>{escape(str(a.path))}</code> · B <code>{escape(str(b.path))}</code>"
            atomic_write(out, html.page(f"iteralign: {a.name} vs {b.name}", heading, paths, body))
        else:
            atomic_write(out, text)
    return text
