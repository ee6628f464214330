"""When each pytest-xdist worker ran which test: a pytest plugin that logs every test's start and end per worker,
and a summary of the log (each worker's test count, busy time and last end, and its longest tests).

How `make test`'s two workers share the suite (BENCHMARKS.md, "In two workers"):

    rm -rf /tmp/tl && mkdir /tmp/tl && TIMELINE_DIR=/tmp/tl PYTHONPATH=bench OMP_NUM_THREADS=1 \\
        .venv/bin/python -m pytest -q -n 2 --dist worksteal -p pytest_timeline
    .venv/bin/python bench/pytest_timeline.py /tmp/tl

The controller sees the same hooks as the workers; its log (``main.tsv``) holds the times the reports arrived.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

_STARTED: dict[str, float] = {}


def pytest_runtest_logstart(nodeid: str, location) -> None:
    _STARTED[nodeid] = time.time()


def pytest_runtest_logfinish(nodeid: str, location) -> None:
    folder = os.environ.get("TIMELINE_DIR")
    if folder:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        with open(Path(folder) / f"{worker}.tsv", "a", encoding="utf-8") as f:
            f.write(f"{nodeid}\t{_STARTED.get(nodeid, 0.0):.2f}\t{time.time():.2f}\n")


def summary(folder: Path, longest: int = 5) -> str:
    """Per worker: tests run, seconds busy, when its first test started and its last ended (from the first start)."""
    runs = {}
    for path in sorted(folder.glob("*.tsv")):
        rows = [line.rstrip("\n").split("\t") for line in path.open(encoding="utf-8")]
        runs[path.stem] = [(node, float(start), float(end)) for node, start, end in rows]
    if not runs:
        raise SystemExit(f"no *.tsv in {folder}: run pytest with -p pytest_timeline and TIMELINE_DIR={folder}")
    t0 = min(rows[0][1] for rows in runs.values())
    out = []
    for worker, rows in runs.items():
        busy = sum(end - start for _, start, end in rows)
        out.append(f"{worker}: {len(rows)} tests, busy {busy:.0f} s, first start {rows[0][1] - t0:.0f} s, "
                   f"last end {rows[-1][2] - t0:.0f} s")
        for node, start, end in sorted(rows, key=lambda r: r[1] - r[2])[:longest]:
            out.append(f"    {end - start:6.1f} s  at {start - t0:5.0f} s  {node}")
    return "\n".join(out)


if __name__ == "__main__":
    print(summary(Path(sys.argv[1] if len(sys.argv) > 1 else ".")))
