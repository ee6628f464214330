"""Fixtures of the reliability suite: one uninterrupted reference run, shared by every test that compares with it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class CleanRun:
    """An uninterrupted run of the suite's scripted config: its folder and the model calls it made, per role."""

    path: Path
    calls: int
    oracle_calls: int


@pytest.fixture(scope="session")
def clean_run(tmp_path_factory) -> CleanRun:
    from rel_helpers import config, lines

    from iteralign.config import load_config
    from iteralign.loop import run_loop
    from loop_helpers import calls

    tmp = tmp_path_factory.mktemp("clean")
    run = run_loop(load_config(config(tmp)))
    return CleanRun(run, calls(tmp), lines(tmp / "calls-oracle.log"))
