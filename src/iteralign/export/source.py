"""Which model a run produced: the accepted one (the last iteration the gate accepted) or a chosen iteration's.

A run folder says it all: each iteration's ``summary.json`` holds ``accepted`` and ``target`` (the model config
serving the tuned model: the base spec plus the LoRA adapter folder, or ``hf:<sft/model>`` after full SFT), the
config holds the untuned target, ``baseline/eval.json`` and each ``iter-NNN/eval.json`` the figures before and after.
Paths recorded in a summary are re-rooted on the run folder, which may have been moved or copied since (a recorded
``.../runs/a/iter-001/sft/adapter`` is read as ``<run folder>/iter-001/sft/adapter``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from iteralign.config import RunConfig, load_config
from iteralign.layout import ITERATION_DIR, RunLayout
from iteralign.models.base import ModelConfig, parse_spec


class ExportError(ValueError):
    """The run folder has no model to export (not a run, nothing accepted, no such iteration); the message says why
    and what to do instead."""


@dataclass
class RunModel:
    """One trained model of a run, with what a model card needs to describe it."""

    layout: RunLayout
    cfg: RunConfig
    model: ModelConfig  # the tuned model: base spec + adapter, or a full-SFT folder
    iteration: int
    accepted: bool
    summaries: list[dict] = field(default_factory=list)  # every iteration's summary.json, in order
    before: dict = field(default_factory=dict)  # baseline/eval.json (may be empty: evaluation off)
    after: dict = field(default_factory=dict)  # the chosen iteration's eval.json

    @property
    def base(self) -> ModelConfig:
        """The untuned target the run started from."""
        return self.cfg.models.target

    @property
    def adapter(self) -> Path | None:
        return Path(self.model.adapter) if self.model.adapter else None

    def base_source(self) -> str:
        """The local folder (or hub id) of the base weights transformers loads: the target backend's train source
        (an ``offline:`` model's converted folder, a ``gguf:`` file's conversion, an ``hf:`` folder or id); for a
        full-SFT model, its saved folder."""
        from iteralign.models.base import backend_of

        spec = parse_spec(self.model.spec)
        return backend_of(spec).train_source(spec)


def find_model(run_dir: str | Path, iteration: int | None = None) -> RunModel:
    """The accepted model of ``run_dir`` (``iteration=None``) or iteration ``iteration``'s tuned model."""
    layout = RunLayout(Path(run_dir))
    if not layout.config.is_file() or not layout.manifest.is_file():
        raise ExportError(f"{run_dir}: not a run folder (no config.yaml / manifest.json)")
    cfg = load_config(layout.config)
    summaries = [json.loads(f.summary.read_text()) for f in layout.iterations() if f.summary.is_file()]
    trained = {s["iteration"]: s for s in summaries if s.get("target")}
    if iteration is None:
        accepted = [s for s in summaries if s.get("accepted") and s.get("target")]
        if not accepted:
            raise ExportError(
                f"{run_dir}: no iteration's model was accepted by the gate (trained: "
                f"{', '.join(map(str, trained)) or 'none'}), so the run's result is the untuned base "
                f"{cfg.models.target.spec}; export a rejected iteration's model with --iteration N")
        chosen = accepted[-1]
    elif iteration not in trained:
        raise ExportError(f"{run_dir}: iteration {iteration} has no trained model; iterations with one: "
                          f"{', '.join(map(str, trained)) or 'none'}")
    else:
        chosen = trained[iteration]
    model = _rerooted(ModelConfig.model_validate(chosen["target"]), layout.root)
    it_files = layout.iteration(chosen["iteration"])
    return RunModel(layout, cfg, model, chosen["iteration"], bool(chosen.get("accepted")), summaries,
                    _read_json(layout.baseline.result), _read_json(it_files.result))


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _rerooted(model: ModelConfig, root: Path) -> ModelConfig:
    """``model`` with its adapter (or full-SFT folder) taken from inside ``root``: the run folder's own copy, even
    when the folder was copied or moved since the path was recorded."""
    update = {}
    if model.adapter:
        update["adapter"] = str(_in_run(Path(model.adapter), root))
    spec = parse_spec(model.spec)
    if spec.backend in ("hf", "vllm") and _iteration_part(Path(spec.name)):
        update["spec"] = f"{spec.backend}:{_in_run(Path(spec.name), root)}"
    return model.model_copy(update=update) if update else model


def _in_run(path: Path, root: Path) -> Path:
    tail = _iteration_part(path)
    if tail is not None and (root / tail).exists():
        return root / tail
    if path.exists():
        return path
    raise ExportError(f"{path} (recorded in the run's summary) does not exist, nor does it under {root}")


def _iteration_part(path: Path) -> Path | None:
    """The part of ``path`` from its ``iter-NNN`` folder on (``iter-001/sft/adapter``), if it has one."""
    parts = path.parts
    for i in range(len(parts) - 1, -1, -1):
        if ITERATION_DIR.fullmatch(parts[i]):
            return Path(*parts[i:])
    return None
