"""Declared stages and the one place that decides, on every run, whether a stage is done, stale or still to do.

A ``Stage`` names its manifest key and its output, and lists what its result depends on (``inputs``): config
slices, the records it reads, and the models it uses, by *content* (a model's ``identity()``: weight and adapter
hashes, never a path). ``Runner`` fingerprints the inputs and compares with the manifest:

- same fingerprint, recorded ``done`` (or the output is complete on disk): the result is read back, no model call;
  a stage recorded ``done`` whose output has since been deleted runs again;
- different fingerprint: the old output is set aside as ``<output>.stale`` (kept for inspection, never read) and the
  stage runs again, and with it every stage whose inputs include its result;
- otherwise (never ran, or was killed or failed with these inputs): the stage runs; JSONL stages resume where they
  stopped, SFT from its last checkpoint.

Fingerprints hold no absolute paths, so a run folder moved elsewhere resumes as it was.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Generic, TypeVar

from iteralign.run import RunDir

log = logging.getLogger("iteralign")
T = TypeVar("T")


@dataclass
class Stage(Generic[T]):
    """One stage: manifest ``key``, ``output`` (file or folder), ``inputs`` (what the result depends on),
    ``compute`` (runs it, resuming any partial output), ``load`` (reads a finished result back; default: compute,
    which for JSONL stages reads the log without calling a model), ``finished`` (whether the output on disk is
    complete even if the manifest missed the end, e.g. a kill between publishing an adapter and marking it done) and
    ``partial`` (files or folders beside the output that a killed ``compute`` continues from: set aside with the
    output when the inputs change)."""

    key: str
    output: Path
    inputs: dict[str, Any]
    compute: Callable[[], T]
    load: Callable[[], T] | None = None
    finished: Callable[[], bool] | None = None
    partial: tuple[Path, ...] = ()


def canonical(value: Any) -> Any:
    """JSON-able form of stage inputs: records and configs dumped, models by their identity (content, not path)."""
    if hasattr(value, "fingerprint") and callable(value.fingerprint):
        return canonical(value.fingerprint())
    if hasattr(value, "identity") and callable(value.identity):
        return canonical(value.identity())
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, Path):
        raise TypeError(f"stage inputs hold no paths (a moved run folder would look changed): {value}")
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return value


def present(stage: Stage) -> bool:
    """Whether a stage's output is on disk (``finished`` where it says more than that the path exists): a stage marked
    done whose output was deleted by hand is run again, not read back."""
    return stage.finished() if stage.finished is not None else stage.output.exists()


def fingerprint(inputs: dict[str, Any]) -> str:
    """A short stable hash of a stage's inputs."""
    blob = json.dumps(canonical(inputs), sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:16]


class Runner:
    """Runs stages through the run folder's manifest (see the module docstring)."""

    def __init__(self, run: RunDir, usage: Callable[[], dict] | None = None,
                 check_budget: Callable[[], None] | None = None) -> None:
        self.run, self.usage, self.check_budget = run, usage, check_budget

    def __call__(self, stage: Stage[T]) -> T:
        digest = fingerprint(stage.inputs)
        entry = self.run.manifest.stage(stage.key)
        if entry and entry.get("input_hash") != digest:
            log.warning("%s: inputs changed since it last ran; recomputing", stage.key)
            for path in (stage.output, *stage.partial):
                set_aside(path)
        elif entry.get("status") == "done" and not present(stage):
            log.warning("%s: its output %s is gone; recomputing", stage.key, stage.output)
        elif entry.get("status") == "done" or (entry and stage.finished is not None and stage.finished()):
            if entry.get("status") != "done":
                self.run.manifest.mark(stage.key, status="done")
            return (stage.load or stage.compute)()
        with self.run.stage(stage.key, digest, self.usage) as info:
            if self.check_budget is not None:
                self.check_budget()
            result = stage.compute()
            info["records"] = len(result) if isinstance(result, list) else None
        return result

    def is_current(self, key: str, inputs: dict[str, Any]) -> bool:
        """Whether stage ``key`` is recorded done with these inputs."""
        return self.run.manifest.is_done(key, fingerprint(inputs))


def set_aside(output: Path) -> None:
    """Move a stale output to ``<name>.stale`` (replacing an older one): kept for inspection, never read."""
    stale = output.with_name(output.name + ".stale")
    shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)
    if output.exists():
        output.rename(stale)
