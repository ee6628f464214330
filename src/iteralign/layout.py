"""Every file name of a run folder, in one place: the loop, the stages, the report and the exporters ask here.

    runs/<name>/
      config.yaml  manifest.json  ledger.json  constitution.yaml  split.json  replay.jsonl  report.md  report.html
      baseline/eval.json  baseline/eval.replies.jsonl
      iter-000/redteam.jsonl  verdicts.jsonl  lookalikes.jsonl  proposals.jsonl  constitution.in.yaml  revisions.jsonl
               twins.redteam.jsonl  twins.verdicts.jsonl (with redteam.lookalikes.same_iteration)
               probe.redteam.jsonl  probe.verdicts.jsonl (with train.dpo.on_policy)
               sft/ (adapter/ or model/, train_stats.json, job.json, checkpoints/)  dpo/ (adapter/, pairs/, ...)
               eval.json  eval.replies.jsonl  summary.json
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path


@dataclass(frozen=True)
class EvalFiles:
    """An evaluation's folder: ``baseline/`` or an iteration's."""

    dir: Path

    @property
    def name(self) -> str:
        return self.dir.name

    @property
    def result(self) -> Path:
        """``eval.json``: the benchmark scores."""
        return self.dir / "eval.json"

    @property
    def replies(self) -> Path:
        return self.dir / "eval.replies.jsonl"

    @property
    def partial(self) -> Path:
        """``eval.partial/``: answers a killed evaluation has already generated and judged (resumed from)."""
        return self.dir / "eval.partial"


@dataclass(frozen=True)
class IterationFiles(EvalFiles):
    """One iteration's files (its folder doubles as the folder of its evaluation)."""

    index: int = 0
    part: str = ""  # "twins." / "probe.": the red-team and judge files of the look-alikes / of the on-policy probe

    @property
    def twins(self) -> "IterationFiles":
        """The files of the failures' look-alikes red-teamed in this iteration (``redteam.lookalikes.same_iteration``):
        ``twins.redteam.jsonl``, ``twins.verdicts.jsonl``, stages ``iter-NNN/twins.redteam`` and ``twins.judge``."""
        return replace(self, part="twins.")

    @property
    def probe(self) -> "IterationFiles":
        """The SFT-tuned target's answers to the prompts that have a good answer (the preference pairs' and the
        replay's), judged (``train.dpo.on_policy``): ``probe.redteam.jsonl``, ``probe.verdicts.jsonl``, stages
        ``iter-NNN/probe.redteam`` and ``probe.judge``."""
        return replace(self, part="probe.")

    @property
    def redteam(self) -> Path:
        return self.dir / f"{self.part}redteam.jsonl"

    @property
    def verdicts(self) -> Path:
        return self.dir / f"{self.part}verdicts.jsonl"

    def parts(self, twins: bool) -> list["IterationFiles"]:
        """The iteration's red-team parts: the pool's files, then, with ``twins`` (the run config's
        ``redteam.lookalikes.same_iteration``), the twins' (absent when no twin was written)."""
        return [self] + ([self.twins] if twins else [])

    @property
    def proposals(self) -> Path:
        return self.dir / "proposals.jsonl"

    @property
    def constitution_in(self) -> Path:
        return self.dir / "constitution.in.yaml"

    @property
    def revisions(self) -> Path:
        return self.dir / "revisions.jsonl"

    @property
    def sft(self) -> Path:
        return self.dir / "sft"

    @property
    def adapter(self) -> Path:
        return self.sft / "adapter"

    @property
    def model(self) -> Path:
        return self.sft / "model"

    @property
    def train_stats(self) -> Path:
        return self.sft / "train_stats.json"

    @property
    def lookalikes(self) -> Path:
        return self.dir / "lookalikes.jsonl"

    @property
    def dpo(self) -> Path:
        return self.dir / "dpo"

    @property
    def dpo_adapter(self) -> Path:
        return self.dpo / "adapter"

    @property
    def dpo_stats(self) -> Path:
        return self.dpo / "train_stats.json"

    @property
    def summary(self) -> Path:
        return self.dir / "summary.json"

    def key(self, stage: str) -> str:
        """The manifest key of one of this iteration's stages, e.g. ``iter-000/judge``."""
        return f"{self.name}/{self.part}{stage}"


ITERATION_DIR = re.compile(r"iter-(\d{3,})")


@dataclass(frozen=True)
class RunLayout:
    """The files of the run folder ``root``."""

    root: Path

    config = property(lambda self: self.root / "config.yaml")
    manifest = property(lambda self: self.root / "manifest.json")
    ledger = property(lambda self: self.root / "ledger.json")
    constitution = property(lambda self: self.root / "constitution.yaml")
    split = property(lambda self: self.root / "split.json")
    replay = property(lambda self: self.root / "replay.jsonl")
    report_md = property(lambda self: self.root / "report.md")
    report_html = property(lambda self: self.root / "report.html")
    baseline = property(lambda self: EvalFiles(self.root / "baseline"))

    def iteration(self, index: int) -> IterationFiles:
        return IterationFiles(self.root / f"iter-{index:03d}", index)

    def iterations(self) -> list[IterationFiles]:
        """The iterations that have a folder, in order."""
        found = [(int(m.group(1)), p) for p in self.root.glob("iter-*")
                 if p.is_dir() and (m := ITERATION_DIR.fullmatch(p.name))]
        return [IterationFiles(p, i) for i, p in sorted(found)]

    def evaluations(self) -> list[EvalFiles]:
        """The baseline and every iteration, as evaluation folders, in order."""
        return [self.baseline, *self.iterations()]
