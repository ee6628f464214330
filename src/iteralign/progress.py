"""Progress of long steps: a redrawn bar on a terminal, one log line per step anywhere else.

A bar redrawn with carriage returns is right for a person at a terminal and wrong for a log file: ``make run > log``
collected thousands of ``\\r`` lines from the bars of the libraries underneath. So when standard output is not a
terminal, ``Progress`` writes one ``logging`` line per step (``red team: 16/40 item, 3.2 item/s, ETA 8 s``) and
``configure`` silences the bars of transformers, datasets, huggingface_hub and anything else drawn with tqdm.
``ITERALIGN_PROGRESS=bar|log|off`` overrides the choice.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

log = logging.getLogger("iteralign.progress")


def mode() -> str:
    """``bar`` on a terminal, ``log`` elsewhere, unless ``$ITERALIGN_PROGRESS`` says otherwise."""
    forced = os.environ.get("ITERALIGN_PROGRESS", "").strip().lower()
    if forced in ("bar", "log", "off"):
        return forced
    return "bar" if sys.stdout.isatty() else "log"


def configure() -> None:
    """Called once by the CLI: off a terminal, silence every library's progress bars (idempotent)."""
    if mode() == "bar":
        return
    os.environ.setdefault("TQDM_DISABLE", "1")  # tqdm >= 4.66: every bar drawn with tqdm, gguf conversion included
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    for module, function in (("transformers.utils.logging", "disable_progress_bar"),
                             ("datasets.utils.tqdm", "disable_progress_bars"),
                             ("huggingface_hub.utils", "disable_progress_bars")):
        if module in sys.modules:  # imported before the environment variables were set: tell it directly
            getattr(sys.modules[module], function)()

def _seconds(value: float) -> str:
    value = max(0, int(round(value)))
    return f"{value // 60} min {value % 60:02d} s" if value >= 60 else f"{value} s"


class Progress:
    """Counts finished units of one step; ``with Progress(total, "red team") as bar: bar.update(8)``."""

    def __init__(self, total: int, desc: str, unit: str = "item", initial: int = 0, enabled: bool = True) -> None:
        self.total, self.desc, self.unit, self.done = total, desc, unit, initial
        self.kind = mode() if enabled else "off"
        self._start, self._initial = time.perf_counter(), initial
        self._bar: Any = None
        if self.kind == "bar":
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True, leave=False)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: int = 1, note: str = "") -> None:
        """``n`` more units done; ``note`` (e.g. the loss) is added to the log line."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            if note:
                self._bar.set_postfix_str(note, refresh=False)
        elif self.kind == "log":
            log.info("%s", self.line(note))

    def line(self, note: str = "") -> str:
        """``desc: done/total unit, rate unit/s, ETA`` (what a log line says)."""
        elapsed = time.perf_counter() - self._start
        rate = (self.done - self._initial) / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else 0.0
        parts = [f"{self.desc}: {self.done}/{self.total} {self.unit}", f"{rate:.2f} {self.unit}/s",
                 f"ETA {_seconds(left)}" if self.done < self.total else f"took {_seconds(elapsed)}"]
        return ", ".join(parts + ([note] if note else []))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
