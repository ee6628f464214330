"""Report at scale: a synthetic run with 3 iterations over 1,000 red-team records, rendered and opened in Chromium.

    .venv/bin/python bench/report_scale.py [--records 1000] [--iterations 3] [--out bench/out/report_scale.json]

Measures the render time (``render_report``: collect + Markdown + HTML with figures, median of 3), the size of
``report.html`` (target < 5 MB) and the opening time in headless Chromium: milliseconds from navigation start to
the page's ``load`` event, measured inside the browser (target < 1 s; median of 3), plus the wall time of the whole
Chromium process for reference (it includes the browser's own start-up). Needs chromium for the last part
(``scripts/install-chromium.sh``); without it those fields are null.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from iteralign.report import browser, render_report
from iteralign.report.synthetic import write_run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1000)
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("bench/out/report_scale.json"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="iteralign-report-bench-") as tmp:
        run = write_run(Path(tmp) / "scale", iterations=args.iterations, records=args.records)
        render_report(run)  # warm: imports (matplotlib) are a one-time cost
        renders = []
        for _ in range(3):
            start = time.perf_counter()
            html = render_report(run)
            renders.append(time.perf_counter() - start)
        size = html.stat().st_size
        loads, walls = [], []
        if browser.find_chromium():
            for _ in range(3):
                ms, proc = browser.load_time_ms(html)
                if proc.console:
                    raise SystemExit(f"console messages while opening the report: {proc.console}")
                loads.append(ms)
                walls.append(proc.seconds)
    result = {
        "records": args.records, "iterations": args.iterations,
        "render_s": round(statistics.median(renders), 3), "html_bytes": size, "html_mb": round(size / 1e6, 3),
        "open_load_event_ms": round(statistics.median(loads), 1) if loads else None,
        "chromium_process_s": round(statistics.median(walls), 2) if walls else None,
        "size_ok": size < 5e6, "open_ok": (statistics.median(loads) < 1000) if loads else None,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
