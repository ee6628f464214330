"""The run configuration: typed pydantic models, loaded from YAML, with ``--set a.b=c`` overrides.

Every model rejects unknown keys (``extra="forbid"``), so a typo is an error naming the key and the file rather
than a silently ignored setting. Each field's description is its documentation (`iteralign config-schema`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from iteralign.data.sources import PromptSourceConfig
from iteralign.data.split import SplitConfig
from iteralign.evals.suite import EvalConfig, GateConfig
from iteralign.ledger import BudgetConfig
from iteralign.models.base import ModelConfig
from iteralign.types import GenerationParams


class Strict(BaseModel):
    #: hide_input_in_errors: a ValidationError's text must not repeat a secret pasted into a model's api_key_env.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class RunSettings(Strict):
    name: str = Field("default", description="Folder name under `root`; rerunning the same name resumes.")
    root: str = Field("runs", description="Parent folder of run folders.")
    seed: int = Field(0, description="Seed for shuffling, splitting, sampling and training.")
    cache: bool = Field(True, description="Use the SQLite call cache (`--no-cache` turns it off).")
    cache_path: str | None = Field(None, description="Cache database; default $ITERALIGN_CACHE/calls.sqlite.")

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        from iteralign.run import RunError, safe_run_name

        try:  # checked here too, so that a bad name is a config error before anything runs
            return safe_run_name(value)
        except RunError as exc:
            raise ValueError(str(exc)) from None


class ModelsConfig(Strict):
    target: ModelConfig = Field(description="The model being aligned.")
    oracle: ModelConfig = Field(description="The stronger model that proposes principles (and judges by default).")
    reviser: ModelConfig | None = Field(None, description="Who rewrites failed answers; default the target (paper).")


class RedTeamConfig(Strict):
    sources: list[PromptSourceConfig] = Field(description="Where red-team prompts come from.")
    split: SplitConfig = Field(default_factory=SplitConfig, description="Train / held-out split (held-out prompts "
                               "are only used to measure attack success).")
    pool_size: int | None = Field(None, ge=1, description="Training prompts red-teamed per iteration (None = all).")
    chunk_size: int | None = Field(
        None, ge=1, description="Paper mode: consecutive chunks of this many prompts, one round per failing chunk."
    )
    generation: GenerationParams = Field(default_factory=lambda: GenerationParams(max_new_tokens=128))


class JudgeSpec(Strict):
    kind: Literal["paper", "refusal", "policy"] = Field(
        description="paper: the authors' few-shot Positive/Negative oracle; refusal: rule-based refusal detector "
        "(on harmful prompts compliance is failure); policy: oracle judged against the current constitution."
    )
    model: ModelConfig | None = Field(None, description="Judge model; default the oracle (ignored by 'refusal').")


class JudgeConfig(Strict):
    judges: list[JudgeSpec] = Field(default_factory=lambda: [JudgeSpec(kind="paper")], min_length=1)
    combine: Literal["any", "all", "majority", "cascade"] = Field(
        "cascade", description="How verdicts combine into 'unaligned': any/all/majority of judges, or cascade: "
        "the first judge that is sure decides (the refusal detector is sure only of clear refusals)."
    )
    retries: int = Field(2, ge=0, description="Re-asks (sampled) when a judge's reply cannot be parsed.")
    max_new_tokens: int = Field(16, ge=1)


class ProposeConfig(Strict):
    mode: Literal["cumulative", "paper"] = Field(
        "cumulative", description="cumulative: parsed, deduplicated principles kept across iterations; "
        "paper: the last paragraph of each reply is the round's only constitution."
    )
    batch_size: int = Field(8, ge=1, description="Failures shown to the oracle per proposal call.")
    similarity_threshold: float = Field(0.6, gt=0.0, le=1.0, description="Similarity at or above which a new "
                                        "principle restates a stored one (0 across polarities and subjects; "
                                        "else word overlap: constitution/similarity.py).")
    max_new_tokens: int = Field(384, ge=1)
    max_failure_chars: int = Field(600, ge=50, description="Each failed answer is cut to this length in the prompt.")


class ReflectConfig(Strict):
    mode: Literal["critique_revise", "splice"] = Field(
        "critique_revise", description="critique_revise: a chat turn asks the reviser to rewrite its answer to follow "
        "the principles; splice (paper): the prompt is regenerated with the principles just before the answer cue."
    )
    principles_k: int = Field(5, ge=1, description="Most relevant principles shown per failure.")
    filter_with_judge: bool = Field(True, description="Keep only revisions the judge finds aligned (paper: no).")
    use_constitution: bool = Field(
        True, description="Show the chosen principles in the revision prompt. False is the ablation without a "
        "constitution: the reviser gets the same request to revise, with no principles."
    )
    generation: GenerationParams = Field(default_factory=lambda: GenerationParams(max_new_tokens=160))


class SFTConfig(Strict):
    enabled: bool = Field(True, description="False: iterations only build data (failures, principles, revisions); "
                          "the target is not trained.")
    method: Literal["lora", "full"] = "lora"
    learning_rate: float = Field(2e-4, gt=0)
    epochs: float = Field(3.0, gt=0)
    batch_size: int = Field(8, ge=1)
    grad_accum: int = Field(1, ge=1)
    lr_scheduler: str = "cosine"
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    max_length: int = Field(512, ge=16)
    bf16: bool = Field(False, description="Train in bfloat16 mixed precision.")
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    lora_target_modules: list[str] | str = Field("all-linear")
    replay: int = Field(16, ge=0, description="Benign prompts answered by the untuned target, mixed into training "
                        "to guard helpfulness (0 = off); drawn at random (run seed) from `replay_prompts`.")
    replay_prompts: list[PromptSourceConfig] = Field(
        default_factory=lambda: [PromptSourceConfig(builtin="benign")],
        description="Where replay prompts come from; the built-in set mixes everyday questions with safe ones that "
        "sound risky ('how do I kill a frozen process'), which teach the model what not to refuse.",
    )
    replay_from: Literal["target", "reviser"] = Field(
        "target", description="Who answers the replay prompts: the untuned target (its own helpfulness, kept as it "
        "was) or the reviser (better answers, i.e. distillation from a stronger model; changes the target's style)."
    )
    launcher: Literal["local", "accelerate"] = "local"
    num_processes: int = Field(1, ge=1)
    accelerate_config: str | None = Field(None, description="accelerate config file (DeepSpeed/FSDP), multi-GPU; "
                                          "shipped: configs/accelerate/{deepspeed_zero3,fsdp,cpu_2proc}.yaml.")
    quantization: Literal["none", "4bit"] = Field("none", description="4bit: QLoRA, the frozen base loaded in 4-bit "
                                                  "NF4 by bitsandbytes (NVIDIA GPU only; method must be lora).")
    gradient_checkpointing: bool = Field(False, description="Recompute activations in the backward pass: less "
                                         "memory for about 30% more time.")
    packing: bool = Field(False, description="Pack several examples into each max_length row (TRL best-fit "
                          "packing, padding-free; each example attends only to itself). See BENCHMARKS.md for when "
                          "it pays.")

    @model_validator(mode="after")
    def _check_quantization(self) -> "SFTConfig":
        if self.quantization != "none" and self.method != "lora":
            raise ValueError("quantization: 4bit trains a LoRA adapter on a frozen quantized base; set method: lora")
        return self


class StopConfig(Strict):
    max_iterations: int = Field(2, ge=1)
    min_failure_rate: float = Field(0.0, ge=0, le=1, description="Stop once the red-team failure rate is at most this.")
    stop_when_no_new_failures: bool = Field(True, description="Stop when an iteration finds no failures.")
    stop_when_rejected: bool = Field(
        True, description="Stop when the gate rejects an iteration: the next one would red-team the same model on the "
        "same prompts and repeat it. Chunked (paper) runs red-team new prompts each iteration and go on."
    )


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
    def _budget_prices(self) -> "RunConfig":
        specs = [m.spec for m in (self.models.target, self.models.oracle, self.models.reviser) if m]
        self.budget.check_priced(specs + [j.model.spec for j in self.judge.judges if j.model])
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
