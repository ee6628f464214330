"""The run configuration: ``RunConfig`` composes the sections, each defined beside the component it configures
(``stages/redteam.py``, ``judges/base.py``, ``stages/sft_job.py``, ``evals/suite.py``...); this module loads YAML,
resolves ``base:`` and applies ``--set a.b=c`` overrides.

Every section rejects unknown keys (``extra="forbid"``), so a typo is an error naming the key and the file rather
than a silently ignored setting. Each field's description is its documentation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, model_validator

from iteralign.evals.suite import EvalConfig, GateConfig
from iteralign.judges import JudgeConfig
from iteralign.ledger import BudgetConfig
from iteralign.roles import ModelsConfig
from iteralign.run import RunSettings
from iteralign.stages.propose import ProposeConfig
from iteralign.stages.redteam import RedTeamConfig
from iteralign.stages.reflect import ReflectConfig
from iteralign.stages.dpo_job import TrainConfig
from iteralign.stages.sft_job import SFTConfig
from iteralign.stopping import StopConfig
from iteralign.types import Strict


NO_HELD_OUT = (
    "redteam.split.held_out_fraction is 0, so no red-team prompt is held out, but eval.benchmarks includes "
    "redteam_asr (also through the groups 'redteam', 'generation' and 'all'), which measures attack success on the "
    "held-out prompts; set redteam.split.held_out_fraction above 0, or give eval.redteam its own prompt sources "
    "(e.g. [{benchmark: advbench}]), or leave redteam_asr out of eval.benchmarks"
)


class RunConfig(Strict):
    """The whole configuration of `iteralign run`."""

    run: RunSettings = Field(default_factory=RunSettings)
    models: ModelsConfig
    redteam: RedTeamConfig
    judge: JudgeConfig = Field(default_factory=JudgeConfig)
    propose: ProposeConfig = Field(default_factory=ProposeConfig)
    reflect: ReflectConfig = Field(default_factory=ReflectConfig)
    sft: SFTConfig = Field(default_factory=SFTConfig)
    train: TrainConfig = Field(default_factory=TrainConfig, description="What each iteration trains on: targets "
                               "(sft), preference pairs (dpo), or both in order (sft+dpo).")
    stop: StopConfig = Field(default_factory=StopConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    gate: GateConfig = Field(default_factory=GateConfig)
    budget: BudgetConfig = Field(default_factory=BudgetConfig, description="Hard limits (tokens, USD, calls) that "
                                 "stop the run cleanly, resumable; the price table of the cost ledger.")

    def asr_on_held_out(self) -> bool:
        """Whether evaluation measures attack success (``redteam_asr``) on the run's held-out red-team prompts."""
        from iteralign.evals.names import expand

        return bool(self.eval.benchmarks) and "redteam_asr" in expand(self.eval.benchmarks) and not self.eval.redteam

    @model_validator(mode="after")
    def _held_out_for_asr(self) -> "RunConfig":
        if self.redteam.split.held_out_fraction == 0 and self.asr_on_held_out():
            raise ValueError(NO_HELD_OUT)
        return self

    @model_validator(mode="after")
    def _dpo_trains_an_adapter(self) -> "RunConfig":
        if "dpo" in self.train.objective and self.sft.method != "lora":
            raise ValueError(f"train.objective {self.train.objective} trains a LoRA adapter (the reference is the "
                             "model with the adapter disabled); set sft.method: lora")
        return self

    @model_validator(mode="after")
    def _budget_prices(self) -> "RunConfig":
        specs = [m.spec for m in (self.models.target, self.models.oracle, self.models.reviser) if m]
        judges = self.judge.judges + (self.eval.judge.judges if self.eval.judge else [])
        self.budget.check_priced(specs + [j.model.spec for j in judges if j.model])
        return self


class ConfigError(ValueError):
    """A config file or override that does not validate; the message names the file and each bad key."""


def apply_override(data: dict, assignment: str) -> None:
    """Apply one ``a.b.c=value`` override in place; the value is parsed as YAML (``3``, ``true``, ``[a, b]``)."""
    if "=" not in assignment:
        raise ConfigError(f"override {assignment!r} is not of the form key.path=value")
    key, raw = assignment.split("=", 1)
    parts = key.strip().split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {assignment!r}: {part!r} is not a section")
        node = child
    node[parts[-1]] = _parse_yaml(raw, f"override {assignment!r}") if raw.strip() else ""


def _parse_yaml(text: str, where: str) -> Any:
    """Parse YAML; any failure (syntax, an integer of 5000 digits, nesting deeper than the stack) is a ConfigError."""
    try:
        return yaml.safe_load(text)
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        raise ConfigError(f"{where}: not valid YAML: {exc}") from None


def load_config(path: str | Path | None, overrides: list[str] = ()) -> RunConfig:
    """Read a YAML config (or start empty), apply overrides, validate; errors name the file and the keys."""
    source = str(path) if path else "<no config file>"
    data = _read_config(Path(path), ()) if path else {}
    for assignment in overrides:
        apply_override(data, assignment)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        lines = [f"{source}: invalid configuration ({exc.error_count()} error(s)):"]
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "<top level>"
            lines.append(f"  {loc}: {err['msg']}")
        raise ConfigError("\n".join(lines)) from None


def _read_config(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    """One config file as a mapping; ``base: other.yaml`` (relative to the file) is read first and overlaid, section
    by section and key by key, so that an ablation config states only what it changes."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}" + (f" (base of {chain[-1]})" if chain else "")) from None
    except (OSError, UnicodeDecodeError) as exc:  # a directory, no permission, not UTF-8
        raise ConfigError(f"{path}: cannot read the config: {type(exc).__name__}: {exc}") from None
    data = _parse_yaml(text, str(path)) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, got {type(data).__name__}")
    base = data.pop("base", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ConfigError(f"{path}: base: must be the path of another config file, got {type(base).__name__}")
    base_path = (path.parent / base).resolve()
    if base_path in chain or base_path == path.resolve():
        raise ConfigError(f"{path}: base: {base} makes a cycle")
    return _overlay(_read_config(base_path, (*chain, path.resolve())), data)


def _overlay(base: dict, top: dict) -> dict:
    """``top`` over ``base``: mappings merge recursively, anything else (lists included) is replaced."""
    merged = dict(base)
    for key, value in top.items():
        both = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = _overlay(merged[key], value) if both else value
    return merged


def dump_config(cfg: RunConfig) -> dict:
    """The resolved config as plain data for ``config.yaml`` (it holds env var *names*, never secret values)."""
    return cfg.model_dump(mode="json")
