"""The run report, built from the run folder alone (so it can be rebuilt at any time: `iteralign report RUN_DIR`).

``collect`` reads the folder into one ``RunData``; ``tables`` turns it into rows shared by both renderers;
``markdown`` writes ``report.md`` (tables and text), ``html`` writes ``report.html`` (one self-contained page with the
figures from ``plots``); ``compare`` puts two runs side by side.
"""

from __future__ import annotations

from pathlib import Path

from iteralign.report.collect import RunData, collect
from iteralign.run import atomic_write

__all__ = ["RunData", "collect", "render_report"]


def render_report(path: str | Path) -> Path:
    """Write ``report.md`` and ``report.html`` into the run folder; return the HTML path."""
    from iteralign.report import html, markdown

    path = Path(path)
    run = collect(path)
    atomic_write(path / "report.md", markdown.render(run))
    out = path / "report.html"
    atomic_write(out, html.render(run))
    return out
