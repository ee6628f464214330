"""``report.html``: one self-contained page (inline CSS, figures as data-URI PNGs, no script, no network).

Sections: headline cards, iterations, benchmarks, per-category shift, constitution with provenance, SFT, before/after
examples, gate decisions, cost, configuration. Text judged unaligned (original answers, a tuned answer that still
fails, the prompts behind a principle) sits in a closed ``<details>``: the reader opens it deliberately.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from iteralign.report import plots
from iteralign.report.collect import Example, PrincipleView, RunData, category_shift, headline
from iteralign.report.tables import Cell, Table, change, cost_table, gate_table, iterations_table, ledger_tables
from iteralign.report.tables import filter_asr, metrics_table, pct, usd

STYLE = Path(__file__).with_name("style.css")
NUMERIC = {"red-teamed", "failures", "unknown", "seconds", "model calls", "cache hits", "prompt tokens",
           "completion tokens", "records", "n", "value", "examples", "steps", "train loss"}
#: Examples shown open per iteration; the rest of the collected ones sit behind one "show more".
OPEN_EXAMPLES = 4


def table(t: Table, total_row: bool = False) -> str:
    """A table; cells with a change get a coloured delta chip."""
    num = [h in NUMERIC for h in t.header]
    head = "".join(f'<th class="num">{escape(h)}</th>' if n else f"<th>{escape(h)}</th>" for h, n in zip(t.header, num))
    body = []
    for r, row in enumerate(t.rows):
        cls = ' class="total"' if total_row and r == len(t.rows) - 1 else ""
        body.append(f"<tr{cls}>" + "".join(_td(c, n) for c, n in zip(row, num)) + "</tr>")
    note = f'<p class="note">{escape(t.note)}</p>' if t.note else ""
    rows = "".join(body)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>{note}'


def _td(cell: Cell, numeric: bool) -> str:
    classes = " ".join(c for c in (cell.tone, "num" if numeric else "") if c)
    attr = f' class="{classes}"' if classes else ""
    text = escape(cell.text)
    if cell.tone and not cell.delta:
        text = f'<span class="badge {cell.tone}">{text}</span>'
    delta = f'<span class="delta">{escape(cell.delta)}</span>' if cell.delta else ""
    return f"<td{attr}>{text}{delta}</td>"


def figure(png: bytes | None, caption: str, alt: str) -> str:
    if png is None:
        return ""
    return (f'<figure><img src="{plots.data_uri(png)}" alt="{escape(alt)}">'
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{escape(title)}</h2>{body}</section>'


def badge(text: str, kind: str = "") -> str:
    return f'<span class="badge {escape(kind or text)}">{escape(text)}</span>'


def quote(text: str | None) -> str:
    return f'<div class="quote">{escape(text or "(empty)")}</div>'


def hidden(text: str, summary: str) -> str:
    """Text that may be harmful: collapsed until the reader opens it."""
    return f'<details class="harm"><summary>{escape(summary)}</summary>{quote(text)}</details>'


def cards(run: RunData) -> str:
    h = headline(run)
    out = []
    if h.failure_start is not None:
        delta, tone = change(h.failure_start.value, h.failure_end.value, lower_is_better=True)
        out.append(_card("Red-team failure rate", _arrow(pct(h.failure_start.value, 0), pct(h.failure_end.value, 0)),
                         f'<span class="{tone}"><span class="delta">{delta}</span></span> first → last iteration'))
    if h.asr_start and h.asr_end:
        delta, tone = change(h.asr_start["score"], h.asr_end["score"], lower_is_better=True)
        out.append(_card("Attack success (held out)", _arrow(pct(h.asr_start["score"], 0), pct(h.asr_end["score"], 0)),
                         f'<span class="{tone}"><span class="delta">{delta}</span></span> baseline → final model'
                         + escape(filter_asr(h.asr_start, h.asr_end))))
    out.append(_card("Principles found", str(h.principles), f"{h.pinned} pinned · {h.disabled} disabled"))
    out.append(_card("Iterations", str(h.iterations), f"{h.accepted} accepted by the gate"))
    cost = f"{usd(h.cost_usd)} · " if h.cost_usd else ""
    out.append(_card("Cost", f"{h.calls:,} calls", f"{cost}{h.tokens:,} tokens · {h.cache_hits:,} cache hits · "
                     f"{_duration(h.seconds)}"))
    return '<div class="cards">' + "".join(out) + "</div>"


def _card(label: str, value: str, foot: str) -> str:
    return (f'<div class="card"><div class="label">{escape(label)}</div><div class="value">{value}</div>'
            f'<div class="foot">{foot}</div></div>')


def _arrow(a: str, b: str) -> str:
    return f'{escape(a)}<span class="arrow">→</span>{escape(b)}'


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def principle(p: PrincipleView) -> str:
    sources = "".join(f"<li><code>{escape(i)}</code> {escape(text)}</li>" for i, text in p.sources)
    more = f"<li>… and {p.n_sources - len(p.sources)} more</li>" if p.n_sources > len(p.sources) else ""
    details = (f'<details class="harm"><summary>{p.n_sources} source failure(s) (red-team prompts; click to show)'
               f'</summary><ul class="sources">{sources}{more}</ul></details>') if p.n_sources else ""
    found = f"found in iteration {p.iteration}" if p.origin == "proposed" else "written by a user"
    return (f'<div class="principle {escape(p.status)}">{badge(p.id, "id")} {badge(p.kind)} {badge(p.status)} '
            f'<div class="text">{escape(p.text)}</div><div class="meta">{found} · from {p.n_sources} failure(s) · '
            f"guided {p.uses} revision(s), {p.kept_uses} kept for training</div>{details}</div>")


def example(ex: Example) -> str:
    unaligned = ex.verdict == "unaligned"
    original = hidden(ex.original, "judged unaligned: click to show") if unaligned else quote(ex.original)
    if ex.tuned_answer is None:
        tuned = '<p class="note">No later red-team pass on this prompt.</p>'
    elif ex.tuned_label == "unaligned":
        tuned = badge("unaligned") + hidden(ex.tuned_answer, "still judged unaligned: click to show")
    else:
        tuned = badge(ex.tuned_label or "not judged", ex.tuned_label or "") + quote(ex.tuned_answer)
    judges = " · ".join(f"{escape(str(j.get('judge', '?')))}: {escape(str(j.get('raw', j.get('label', ''))))[:80]}"
                        for j in ex.judges)
    return (
        f'<div class="example"><div class="head">{badge("iteration " + str(ex.iteration), "")}'
        f'{badge(ex.category or "uncategorised", "")}<span class="id">{escape(ex.id)}</span></div>'
        f'<div class="prompt"><h4>Prompt</h4>{quote(ex.prompt)}</div><div class="cols">'
        f'<div class="col"><h4>Original answer</h4>{badge(ex.verdict)}{original}'
        f'<div class="judges">{judges}</div></div>'
        f'<div class="col"><h4>Revision</h4>{badge(ex.revision_label or "?", ex.revision_label)} '
        f'{badge("kept" if ex.kept else "dropped", "good" if ex.kept else "bad")}{quote(ex.revision)}'
        f'<div class="judges">principles: {escape(", ".join(ex.principle_ids) or "–")}</div></div>'
        f'<div class="col"><h4>Tuned model, next iteration</h4>{tuned}</div></div></div>'
    )


def examples(run: RunData) -> str:
    out = []
    for it, items in run.examples.items():
        if not items:
            continue
        total = run.example_counts.get(it, len(items))
        shown, rest = items[:OPEN_EXAMPLES], items[OPEN_EXAMPLES:]
        out.append(f"<h3>Iteration {it}</h3>" + "".join(example(ex) for ex in shown))
        if rest:
            out.append(f"<details><summary>show {len(rest)} more example(s) from iteration {it}</summary>"
                       + "".join(example(ex) for ex in rest) + "</details>")
        if total > len(items):
            out.append(f'<p class="note">{len(items)} of {total} revisions shown (spread over categories); all are '
                       f"in <code>iter-{it:03d}/revisions.jsonl</code>.</p>")
    return "".join(out) or '<p class="note">No revisions yet.</p>'


def sft(run: RunData) -> str:
    trained = [it for it in run.iterations if it.train]
    if not trained:
        return ""
    rows = [[Cell(str(it.index)), Cell(f"{it.train.get('examples', '–')}"), Cell(f"{it.train.get('steps', '–')}"),
             Cell(_f(it.train.get("train_loss"))), Cell(f"{it.train.get('seconds', 0):,.1f}")] for it in trained]
    body = table(Table(["iteration", "examples", "steps", "train loss", "seconds"], rows))
    return section("sft", "Fine-tuning", body + figure(plots.sft_loss(run), "Training loss per logged step",
                                                        "SFT loss curves"))


def _f(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value if value is not None else "–")


def _subtitle(run: RunData) -> str:
    target = (run.config.get("models") or {}).get("target") or {}
    final = (run.final.get("target") or {}) if run.final else {}
    parts = [f"target <code>{escape(str(target.get('spec', '?')))}</code>"]
    if final.get("adapter"):
        parts.append(f"final adapter <code>{escape(Path(final['adapter']).parent.parent.name)}</code>")
    parts.append(f"folder <code>{escape(str(run.path))}</code>")
    return " · ".join(parts)


def render(run: RunData) -> str:
    """The whole HTML page."""
    metrics, shift = metrics_table(run), category_shift(run)
    blocks = [
        section("iterations", "Iterations", table(iterations_table(run))
                + figure(plots.failure_rate(run), "Red-team failure rate per iteration (± standard error)",
                         "failure rate per iteration")),
        section("benchmarks", "Benchmarks", table(metrics) + figure(
            plots.benchmarks(run), "Benchmark scores per model (± standard error)", "benchmark curves")) if metrics
        else "",
        section("categories", "By category", figure(plots.categories(shift), f"{shift.title}: {shift.before_label} "
                                                    f"vs {shift.after_label}", "per-category rates")) if shift else "",
        section("constitution", "Constitution", "".join(principle(p) for p in run.principles)
                or '<p class="note">No principles yet.</p>'),
        sft(run),
        section("examples", "Before and after", examples(run)),
        section("gate", "Gate decisions", table(gate_table(run))),
        section("cost", "Cost", table(cost_table(run), total_row=True) + "".join(
            f"<h3>Ledger: {escape(title)}</h3>" + table(t) for title, t in ledger_tables(run.ledger))),
        section("config", "Configuration", '<details><summary>resolved config.yaml (secrets removed)</summary>'
                f'<pre class="config">{escape(run.config_text)}</pre></details>'),
    ]
    heading = f'iteralign run <span class="run">{escape(run.name)}</span>'
    return page(f"iteralign run {run.name}", heading, _subtitle(run), cards(run) + "".join(blocks))


def page(title: str, heading: str, subtitle: str, body: str) -> str:
    """The HTML document: hero header (``heading`` and ``subtitle`` are HTML) with a table of contents (one link
    per section in ``body``), then ``body``."""
    sections = (("iterations", "Iterations"), ("benchmarks", "Benchmarks"), ("categories", "Categories"),
                ("constitution", "Constitution"), ("sft", "Fine-tuning"), ("examples", "Examples"), ("gate", "Gate"),
                ("cost", "Cost"), ("config", "Config"), ("compare", "Side by side"), ("curves", "Curves"))
    nav = "".join(f'<a href="#{a}">{t}</a>' for a, t in sections if f'<section id="{a}"' in body)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{STYLE.read_text(encoding='utf-8')}</style></head><body>"
        f'<header class="hero"><div class="wrap"><h1>{heading}</h1>'
        f'<div class="sub">{subtitle}</div><nav class="toc">{nav}</nav></div></header>'
        f'<main class="wrap">{body}</main>'
        '<footer class="wrap">Generated by <code>iteralign</code> from run folders alone; rebuild it any time. '
        "Harmful text is collapsed: open it deliberately.</footer></body></html>\n"
    )
