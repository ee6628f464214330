"""The report's figures, drawn with matplotlib (Agg, no pyplot state) and returned as PNG bytes.

Each function takes the collected ``RunData`` (or part of it) and returns ``None`` when there is nothing to draw, so
the renderers can leave the figure out instead of showing an empty chart.
"""

from __future__ import annotations

import base64
import io

from iteralign.report.collect import CategoryShift, RunData

PALETTE = ("#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#db2777", "#0891b2", "#4b5563", "#65a30d",
           "#9333ea")
BEFORE, AFTER = "#94a3b8", "#2563eb"
DPI = 144


def _figure(width: float = 6.4, height: float = 3.0):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    ax = fig.add_subplot()
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.spines["left"].set_color("#cbd5e1")
    ax.spines["bottom"].set_color("#cbd5e1")
    ax.tick_params(colors="#475569", labelsize=8)
    ax.grid(axis="y", color="#e2e8f0", linewidth=0.8)
    ax.set_axisbelow(True)
    return fig, ax


def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", facecolor="white")
    return buf.getvalue()


def data_uri(png: bytes) -> str:
    """``data:image/png;base64,...`` for an ``<img src>``: the report stays one self-contained file."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _percent_axis(ax, top: float = 1.0) -> None:
    from matplotlib.ticker import PercentFormatter

    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_ylim(0, max(top, 0.05) * 1.08)


def failure_rate(run: RunData) -> bytes | None:
    """Red-team failure rate per iteration with binomial standard-error bars."""
    return failure_rates({run.name: run})


def failure_rates(runs: dict[str, RunData]) -> bytes | None:
    """The failure-rate curve of one run (annotated with counts) or of several (one colour each, legend)."""
    series = {name: [it for it in run.iterations if it.failure.n] for name, run in runs.items()}
    series = {name: its for name, its in series.items() if its}
    if not series:
        return None
    fig, ax = _figure()
    for n, (name, its) in enumerate(series.items()):
        xs, ys = [it.index for it in its], [it.failure.value for it in its]
        ax.errorbar(xs, ys, yerr=[it.failure.stderr for it in its], color=PALETTE[(n + 1) % len(PALETTE)],
                    marker="o", markersize=6, linewidth=2, capsize=4, elinewidth=1, label=name)
        for x, y, it in zip(xs, ys, its) if len(series) == 1 else ():
            ax.annotate(f"{y:.0%}\n({it.failure.k}/{it.failure.n})", (x, y), textcoords="offset points",
                        xytext=(8, 4), ha="left", va="bottom", fontsize=7, color="#334155")
    xs = sorted({it.index for its in series.values() for it in its})
    ax.set_xticks(xs, [f"iter {x}" for x in xs])
    ax.set_xlim(min(xs) - 0.5, max(xs) + 0.5)
    ax.set_ylabel("judged unaligned", fontsize=8, color="#475569")
    _percent_axis(ax, max(it.failure.value for its in series.values() for it in its) + 0.12)
    if len(series) > 1:
        ax.legend(fontsize=7, frameon=False)
    return _png(fig)


def benchmarks(run: RunData) -> bytes | None:
    """Every benchmark's score per evaluated model (baseline, then each tuned model), with stderr bars."""
    from iteralign.evals.names import lower_is_better

    names = run.benchmark_names()
    if not names or not run.evaluations:
        return None
    fig, ax = _figure(6.4, 3.4)
    labels = [e.label for e in run.evaluations]
    for n, name in enumerate(names):
        pts = [(i, e.benchmarks[name]) for i, e in enumerate(run.evaluations) if name in e.benchmarks]
        style = "--" if lower_is_better(name) else "-"
        ax.errorbar([i for i, _ in pts], [float(b["score"]) for _, b in pts],
                    yerr=[float(b.get("stderr", 0)) for _, b in pts], color=PALETTE[n % len(PALETTE)],
                    linestyle=style, marker="o", markersize=4, linewidth=1.6, capsize=3, elinewidth=0.8,
                    label=name + (" (lower is better)" if lower_is_better(name) else ""))
    ax.set_xticks(range(len(labels)), labels)
    ax.set_xlim(-0.3, len(labels) - 0.7)
    _percent_axis(ax)
    ax.legend(fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3)
    return _png(fig)


def categories(shift: CategoryShift | None) -> bytes | None:
    """Grouped horizontal bars: per-category rate before (grey) and after (blue)."""
    if shift is None or not shift.rates:
        return None
    cats = list(shift.rates)
    fig, ax = _figure(6.4, 0.8 + 0.42 * len(cats))
    ax.grid(axis="y", visible=False)
    ax.grid(axis="x", color="#e2e8f0", linewidth=0.8)
    ys = range(len(cats))
    for offset, idx, colour, label in ((-0.19, 0, BEFORE, shift.before_label), (0.19, 1, AFTER, shift.after_label)):
        values = [shift.rates[c][idx] for c in cats]
        bars = ax.barh([y + offset for y in ys], [v or 0 for v in values], height=0.36, color=colour, label=label)
        for bar, v in zip(bars, values):
            ax.annotate("n/a" if v is None else f"{v:.0%}", (bar.get_width(), bar.get_y() + bar.get_height() / 2),
                        xytext=(3, 0), textcoords="offset points", va="center", fontsize=7, color="#334155")
    ax.set_yticks(list(ys), [c.replace("_", " ") for c in cats])
    ax.invert_yaxis()
    from matplotlib.ticker import PercentFormatter

    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_xlim(0, 1.12)
    ax.legend(fontsize=7, frameon=False, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2)
    return _png(fig)


def sft_loss(run: RunData) -> bytes | None:
    """Training loss per logged step of each iteration's fine-tune."""
    curves = [(it.index, it.train["losses"]) for it in run.iterations if it.train and it.train.get("losses")]
    if not curves:
        return None
    fig, ax = _figure(6.4, 2.6)
    for n, (index, losses) in enumerate(curves):
        ax.plot(range(1, len(losses) + 1), losses, color=PALETTE[n % len(PALETTE)], linewidth=1.6, marker=".",
                label=f"iter {index}")
    ax.set_xlabel("logged step", fontsize=8, color="#475569")
    ax.set_ylabel("loss", fontsize=8, color="#475569")
    ax.legend(fontsize=7, frameon=False)
    return _png(fig)
