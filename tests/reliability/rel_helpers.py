"""Shared helpers of the reliability suite: kill a run at chosen points, compare run folders, check JSONL logs.

Builds on ``tests/loop_helpers.py`` (the all-scripted config whose models log every call to ``calls-*.log``).
Runs here turn the call cache off (``run.cache: false``), so that every piece of work redone after a crash shows
up as a model call: the counts then prove that finished work is not redone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from loop_helpers import REPO, calls, fingerprint, scripted_config

#: Every JSONL a run writes, in the order the loop writes them (two iterations of the scripted config).
PIPELINE = ["replay.jsonl"] + [f"iter-{it:03d}/{name}.jsonl" for it in (0, 1)
                               for name in ("redteam", "verdicts", "proposals", "revisions")]
#: The most model calls one batch in flight can make (reflect: 4 revisions + 4 judge calls; the held-out eval
#: is not resumable mid-way and redoes at most its 6 prompts + 6 judge calls): the calls a kill may cost.
CALLS_PER_KILL = 12
#: The overrides every reliability run uses on top of ``loop_helpers.scripted_config``.
#: The refusal -> paper cascade sends every answer that is not a refusal to the (scripted) oracle: many model calls
#: to fault, kill and resume. Its verdicts on benign answers are crude; these tests compare runs, not verdicts.
BASE = {"run.cache": False, "eval.benchmarks": ["redteam"],
        "judge": {"judges": [{"kind": "refusal"}, {"kind": "paper"}], "combine": "cascade"}}


def config(tmp: Path, *, latency: float = 0.0, name: str = "r", extra: dict | None = None) -> Path:
    """The scripted loop config of the suite (cache off, held-out red-team eval on) written under ``tmp``."""
    return scripted_config(tmp, latency=latency, name=name, extra={**BASE, **(extra or {})})


def cli(config_path: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "iteralign.cli", "run", str(config_path), *extra]


def child_env() -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO / "src"))
    env.pop("PYTHONHASHSEED", None)
    return env


def kill_when(cmd: list[str], ready, timeout: float = 90) -> bool:
    """Start ``cmd``; SIGKILL it as soon as ``ready()`` is true. Returns whether it was still running when killed
    (False: it finished first). Raises if it exits with an error on its own."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=child_env())
    deadline = time.time() + timeout
    try:
        while proc.poll() is None and time.time() < deadline and not ready():
            time.sleep(0.01)
        alive = proc.poll() is None
        if alive:
            os.kill(proc.pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if not alive and proc.returncode != 0:
        raise AssertionError(f"the run failed on its own (exit {proc.returncode}):\n{err.decode()[-3000:]}")
    return alive


def lines(path: Path) -> int:
    """Complete lines in a file (0 if absent)."""
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def outputs(run: Path) -> dict:
    """What a run produced (``loop_helpers.fingerprint``) minus the eval's wall-clock times and model path."""
    out = fingerprint(run)
    for key in [k for k in out if k.endswith("eval.json")]:
        data = json.loads(out[key])
        data.pop("seconds", None), data.pop("model", None)
        out[key] = data
    return out


def jsonl_ids(run: Path) -> dict[str, list[str]]:
    """Every JSONL log of a run and the ids of its records, in file order (``*.replies.jsonl`` are not logs: the
    evaluation writes them whole, atomically, and their records have no ids)."""
    return {str(p.relative_to(run)): [json.loads(line)["id"] for line in p.read_text().splitlines()]
            for p in sorted(run.rglob("*.jsonl")) if not p.name.endswith(".replies.jsonl")}


def assert_no_duplicates(run: Path) -> int:
    """Each JSONL holds each id once; returns the number of records checked."""
    total = 0
    for name, ids in jsonl_ids(run).items():
        assert len(ids) == len(set(ids)), f"{name}: duplicated records {sorted({i for i in ids if ids.count(i) > 1})}"
        total += len(ids)
    return total


def assert_same_run(resumed: Path, clean: Path) -> None:
    """Same outputs, same records, nothing duplicated, no temp files left, every stage done."""
    assert not [p for p in resumed.rglob("*.tmp")], "temp files left in the run folder"
    assert_no_duplicates(resumed)
    assert jsonl_ids(resumed) == jsonl_ids(clean)
    assert outputs(resumed) == outputs(clean)
    manifest = json.loads((resumed / "manifest.json").read_text())
    assert {k: v["status"] for k, v in manifest["stages"].items()} == {
        k: "done" for k in json.loads((clean / "manifest.json").read_text())["stages"]}


__all__ = ["PIPELINE", "CALLS_PER_KILL", "REPO", "assert_no_duplicates", "assert_same_run", "calls", "cli", "config",
           "jsonl_ids", "kill_when", "lines", "outputs"]
