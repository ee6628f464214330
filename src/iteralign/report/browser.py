"""Open a report in headless Chromium: a screenshot, the console messages, and the page's load time.

Used by the end-to-end test (the page renders, with no console error), the scale benchmark (opening time) and to
refresh ``docs/report.png``. Needs Debian's ``chromium`` (``scripts/install-chromium.sh``) or ``$CHROMIUM``; every
network feature that could reach out is off, and the profile lives in a throw-away folder.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--enable-logging=stderr", "--v=0")
#: Chromium logs page console output (errors, uncaught exceptions) as ``...:INFO:CONSOLE:<line>] "message"``.
CONSOLE = re.compile(r":CONSOLE[:(\]]|Uncaught ")
PROBE = ("<script>addEventListener('load', () => document.documentElement.setAttribute('data-load-ms', "
         "performance.now().toFixed(1)));</script>")


def find_chromium() -> str | None:
    """``$CHROMIUM``, else ``chromium`` / ``chromium-browser`` / ``google-chrome`` on the PATH, else None."""
    candidates = [os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"]
    return next((found for c in candidates if c and (found := shutil.which(c))), None)


@dataclass
class BrowserRun:
    returncode: int
    seconds: float
    stdout: str
    console: list[str]  # console messages the page produced (an error-free static page produces none)


def _run(page: Path, extra: list[str], timeout: float) -> BrowserRun:
    exe = find_chromium()
    if exe is None:
        raise FileNotFoundError("chromium not found: run scripts/install-chromium.sh or set $CHROMIUM")
    with tempfile.TemporaryDirectory(prefix="iteralign-chromium-") as profile:
        start = time.perf_counter()
        proc = subprocess.run([exe, *FLAGS, f"--user-data-dir={profile}", *extra, page.resolve().as_uri()],
                              capture_output=True, text=True, timeout=timeout)
        seconds = time.perf_counter() - start
    console = [line for line in proc.stderr.splitlines() if CONSOLE.search(line)]
    return BrowserRun(proc.returncode, seconds, proc.stdout, console)


def screenshot(page: str | Path, png: str | Path, width: int = 1280, height: int = 2000,
               timeout: float = 120) -> BrowserRun:
    """Render ``page`` and save a ``width`` x ``height`` screenshot to ``png``."""
    return _run(Path(page), [f"--screenshot={Path(png).resolve()}", f"--window-size={width},{height}"], timeout)


def load_time_ms(page: str | Path, timeout: float = 120) -> tuple[float, BrowserRun]:
    """Milliseconds from navigation start to the ``load`` event (parsed, styled, every image decoded), measured
    inside the browser on a copy of ``page`` with a one-line probe appended; and the browser run (its ``seconds``
    include Chromium's own start-up)."""
    page = Path(page)
    with tempfile.TemporaryDirectory(prefix="iteralign-probe-") as tmp:
        probed = Path(tmp) / page.name
        probed.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>", 1), encoding="utf-8")
        run = _run(probed, ["--dump-dom"], timeout)
    found = re.search(r'data-load-ms="([\d.]+)"', run.stdout)
    if not found:
        raise RuntimeError(f"no load time in chromium's DOM dump (exit {run.returncode}); console: {run.console}")
    return float(found.group(1)), run
