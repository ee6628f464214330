"""SIGKILL at seeded random points of one run, several times over, then resume.

Complements ``tests/test_loop.py`` (one kill per run at a fixed line of each stage, with the call cache on): here
each run is killed repeatedly, at seeded random line counts of random stages and at a random time, and inside the
atomic write of ``manifest.json`` / ``constitution.yaml`` / ``split.json``; a torn JSONL line is planted in a
finished stage and in the running one. The call cache is off, so the call counts prove that finished work is not
redone: the killed runs together make at most one batch of extra calls per kill.
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import pytest
from rel_helpers import (CALLS_PER_KILL, PIPELINE, assert_same_run, calls, cli, config, kill_when, lines)

from iteralign.config import load_config
from iteralign.loop import run_loop

HERE = Path(__file__).parent


def kill_plan(rng: random.Random, clean: Path) -> list[tuple[str, float]]:
    """One kill at a random time, then three at random line counts of three random stages, in pipeline order."""
    stages = [name for name in PIPELINE if lines(clean / name) >= 2]
    plan = [("time", rng.uniform(0.8, 3.0))]
    for name in sorted(rng.sample(stages, 3), key=PIPELINE.index):
        plan.append((name, rng.randint(1, lines(clean / name) - 1)))
    return plan


@pytest.mark.parametrize("seed", [7, 2024])
@pytest.mark.heavy(20)
def test_repeated_random_kills_then_resume_equal_an_uninterrupted_run(tmp_path, clean_run, seed):
    plan = kill_plan(random.Random(seed), clean_run.path)
    cfg = config(tmp_path, latency=0.03)
    run = tmp_path / "runs" / "r"
    landed = []
    for what, at in plan:
        if what == "time":
            started = time.time()
            ready = lambda: time.time() - started >= at  # noqa: E731
        else:
            before = lines(run / what)
            ready = lambda: lines(run / what) >= max(at, before + 1)  # noqa: E731
        if kill_when(cli(cfg), ready):
            landed.append((what, at))
    assert not (run / "report.md").exists(), "a killed attempt finished the run"
    assert len(landed) >= 3, f"kills that hit a running process: {landed} of {plan}"
    print(f"seed {seed}: {len(landed)} kills landed: {landed}")
    resumed = run_loop(load_config(cfg))
    assert_same_run(resumed, clean_run.path)
    assert clean_run.calls <= calls(tmp_path) <= clean_run.calls + CALLS_PER_KILL * len(landed)


@pytest.mark.parametrize("target,nth", [("manifest.json", random.Random(3).randint(2, 25)), ("constitution.yaml", 2),
                                        ("split.json", 1)])
def test_kill_inside_an_atomic_write(tmp_path, clean_run, target, nth):
    cfg, marker = config(tmp_path), tmp_path / "paused"
    cmd = [sys.executable, str(HERE / "pause_in_write.py"), target, str(nth), str(marker), str(cfg)]
    assert kill_when(cmd, marker.exists)
    temp = Path(marker.read_text())
    assert temp.exists() and temp.name.endswith(".tmp")  # killed between writing the temp file and the rename
    resumed = run_loop(load_config(cfg))
    assert not temp.exists()
    assert_same_run(resumed, clean_run.path)
    assert calls(tmp_path) <= clean_run.calls + CALLS_PER_KILL


@pytest.mark.heavy(15)
def test_torn_lines_are_repaired_through_the_loop(tmp_path, clean_run):
    cfg, run = config(tmp_path, latency=0.03), tmp_path / "runs" / "r"
    verdicts, redteam = run / "iter-000/verdicts.jsonl", run / "iter-000/redteam.jsonl"
    assert kill_when(cli(cfg), lambda: lines(verdicts) >= 3)
    # a kill during an append leaves half a record: in the stage that was running, and (disk trouble) in a done one
    verdicts.write_bytes(verdicts.read_bytes() + b'{"id": "p-0123", "label": "unal')
    data = redteam.read_bytes()
    redteam.write_bytes(data[: data.rstrip(b"\n").rfind(b"\n") + 40])
    resumed = run_loop(load_config(cfg))
    assert_same_run(resumed, clean_run.path)
    assert calls(tmp_path) <= clean_run.calls + 2 * CALLS_PER_KILL  # the kill's batch and the one torn record
