"""Where the shared benchmark and red-team data sets live (they are read in place, never copied into the repo).

Order: the ``ITERALIGN_BENCHMARKS`` environment variable, then ``../shared/benchmarks`` next to the current
directory or the repository root. ``None`` when neither exists (tests that need the data skip).
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "ITERALIGN_BENCHMARKS"
_REPO_ROOT = Path(__file__).resolve().parents[3]


def default_benchmarks_dir() -> Path | None:
    """The benchmarks folder, or ``None`` if it cannot be found. A set but missing ``ITERALIGN_BENCHMARKS`` is
    returned as is, so that the error later names the path the user gave."""
    override = os.environ.get(ENV_VAR)
    if override:
        return Path(override).expanduser()
    for base in (Path.cwd(), _REPO_ROOT):
        candidate = (base / ".." / "shared" / "benchmarks").resolve()
        if candidate.is_dir():
            return candidate
    return None
