"""The run folder: atomic writes, the manifest, append-only JSONL stages, and resume.

Layout (see README): ``config.yaml``, ``manifest.json``, ``constitution.yaml``, ``split.json``, ``iter-NNN/...``.
Every whole-file write is atomic (temp file + ``os.replace``), so a crash leaves the old or the new file, never half
of one. JSONL stage outputs are appended one record at a time and fsync'ed, so a crash mid-stage resumes mid-stage;
a torn last line (a crash during the append) is detected and cut off on the next open. A stage whose manifest entry
is ``done`` with the same input hash is skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import yaml
from pydantic import Field, field_validator

from iteralign.layout import RunLayout
from iteralign.types import Strict


class RunSettings(Strict):
    """The ``run:`` section: which folder, which seed, which call cache."""

    name: str = Field("default", description="Folder name under `root`; rerunning the same name resumes.")
    root: str = Field("runs", description="Parent folder of run folders.")
    seed: int = Field(0, description="Seed for shuffling, splitting, sampling and training.")
    cache: bool = Field(True, description="Use the SQLite call cache (`--no-cache` turns it off).")
    cache_path: str | None = Field(None, description="Cache database; default $ITERALIGN_CACHE/calls.sqlite.")

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        try:  # checked here too, so that a bad name is a config error before anything runs
            return safe_run_name(value)
        except RunError as exc:
            raise ValueError(str(exc)) from None


class RunError(RuntimeError):
    """A run folder that cannot be used as asked (bad name, foreign config, corrupt manifest)."""


class StageInterrupted(RuntimeError):
    """A deliberate, clean stop inside a stage (e.g. ``ledger.BudgetExceeded``): the manifest marks the stage
    ``interrupted`` with the reason, its finished records are kept, and rerunning resumes it."""

    def recorded(self) -> None:
        """Called once the manifest shows the stage interrupted (the budget rewrites its ledger then)."""


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    atomic_write(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def content_hash(data: Any) -> str:
    """A short stable hash of JSON-able data: the input hash of a stage."""
    blob = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


def safe_run_name(name: str) -> str:
    """Run names become folder names: refuse anything that could escape the runs root."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", name) or ".." in name:
        raise RunError(f"invalid run name {name!r}: use letters, digits, '.', '_' and '-' (no '..', no '/')")
    return name


class JsonlLog:
    """An append-only JSONL file of records keyed by ``id``; repairs a torn last line on open."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.records: list[dict] = []
        self.repaired = False
        if path.exists():
            self._load()

    def _load(self) -> None:
        raw = self.path.read_bytes()
        good_end = 0
        for line in raw.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break  # torn final line: the crash hit mid-append
            try:
                self.records.append(json.loads(line))
            except json.JSONDecodeError:
                break
            good_end += len(line)
        if good_end != len(raw):
            with open(self.path, "r+b") as fh:
                fh.truncate(good_end)
            self.repaired = True

    @property
    def done_ids(self) -> set[str]:
        return {r["id"] for r in self.records}

    def append(self, records: list[dict]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            for rec in records:
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.records.extend(records)


def read_jsonl(path: Path) -> list[dict]:
    return JsonlLog(path).records


class Manifest:
    """``manifest.json``: per stage its status, input hash, outputs, timings and model-call counts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {"stages": {}}
        except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, an int of 5000 digits, nested too deep
            raise RunError(f"corrupt manifest {path}: {exc}; restore it or start a new run name") from None
        stages = self.data.get("stages") if isinstance(self.data, dict) else None
        if not isinstance(stages, dict) or not all(isinstance(v, dict) for v in stages.values()):
            raise RunError(f"corrupt manifest {path}: expected {{\"stages\": {{name: {{...}}}}}}; restore it or start "
                           f"a new run name")

    def save(self) -> None:
        write_json(self.path, self.data)

    def stage(self, key: str) -> dict[str, Any]:
        return self.data["stages"].get(key, {})

    def is_done(self, key: str, input_hash: str) -> bool:
        entry = self.stage(key)
        return entry.get("status") == "done" and entry.get("input_hash") == input_hash

    def mark(self, key: str, **fields: Any) -> None:
        self.data["stages"].setdefault(key, {}).update(fields)
        self.save()


def _lock_folder(path: Path):
    """An exclusive, non-blocking lock on ``path/.lock``; a second process on the same run folder is refused
    (it would clean up the first one's in-flight temp files and interleave JSONL appends). Released on exit, even
    after SIGKILL, because the kernel drops the lock with the process."""
    import fcntl

    handle = open(path / ".lock", "a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise RunError(f"run folder {path} is in use by another iteralign process; wait for it or stop it") from None
    return handle


class RunDir:
    """One run's folder and manifest; stages write through it."""

    def __init__(self, root: Path, name: str) -> None:
        self.path = Path(root) / safe_run_name(name)
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = _lock_folder(self.path)  # held while this object lives: one process per run folder
        for orphan in list(self.path.rglob(".*.tmp")):  # an atomic write (or SFT's final save) cut short by a kill
            shutil.rmtree(orphan, ignore_errors=True) if orphan.is_dir() else orphan.unlink(missing_ok=True)
        self.layout = RunLayout(self.path)
        self.manifest = Manifest(self.layout.manifest)

    def close(self) -> None:
        """Release the run folder's lock (also released when the process exits)."""
        self._lock.close()

    def write_config(self, config: dict) -> None:
        atomic_write(self.layout.config, yaml.safe_dump(config, sort_keys=False, allow_unicode=True))

    @contextmanager
    def stage(self, key: str, input_hash: str, usage: Any = None) -> Iterator[dict]:
        """Record a stage's run in the manifest: running -> done, with timings and the model calls it made.

        The body may fill the yielded dict with extra manifest fields (record counts, outputs). A kill leaves the
        entry ``running``; an exception marks it ``failed`` with the error and adds a note naming the stage to the
        exception (PEP 678), which keeps its type. The rerun records the time of both attempts in ``seconds_total``.
        """
        started = time.time()
        before = _usage_snapshot(usage)
        self.manifest.mark(key, status="running", input_hash=input_hash, started=started)
        info: dict[str, Any] = {}
        try:
            yield info
        except StageInterrupted as exc:
            delta = _usage_delta(usage, before)
            self.manifest.mark(key, status="interrupted", reason=str(exc), usage=delta,
                               usage_total=_usage_add(self.manifest.stage(key).get("usage_total", {}), delta))
            exc.recorded()
            raise
        except Exception as exc:  # a dead API, bad data, a bug: recorded, named, and re-raised unchanged
            self.manifest.mark(key, status="failed", error=f"{type(exc).__name__}: {str(exc)[:500]}")
            exc.add_note(f"in stage {key} of run folder {self.path}; finished work is saved, rerun to resume")
            raise
        for stale in ("reason", "error"):  # left by an interrupted or failed attempt
            self.manifest.stage(key).pop(stale, None)
        prev_seconds = self.manifest.stage(key).get("seconds_total", 0.0)
        seconds = round(time.time() - started, 2)
        delta = _usage_delta(usage, before)
        self.manifest.mark(key, status="done", finished=time.time(), seconds=seconds,
                           seconds_total=round(prev_seconds + seconds, 2), usage=delta,
                           usage_total=_usage_add(self.manifest.stage(key).get("usage_total", {}), delta), **info)


def _usage_snapshot(usage: Any) -> dict:
    return dict(usage()) if callable(usage) else {}


def _usage_delta(usage: Any, before: dict) -> dict:
    return _usage_diff(_usage_snapshot(usage), before)


def _usage_diff(now: dict, before: dict) -> dict:
    """Counters (nested per model) used since ``before``."""
    return {k: _usage_diff(v, before.get(k, {})) if isinstance(v, dict) else v - before.get(k, 0)
            for k, v in now.items()}


def _usage_add(a: dict, b: dict) -> dict:
    """Counters (nested per model) of two attempts of a stage, summed."""
    return {k: _usage_add(a.get(k, {}), b.get(k, {})) if isinstance(b.get(k, a.get(k)), dict)
            else a.get(k, 0) + b.get(k, 0) for k in {*a, *b}}
