"""The two model interfaces every backend implements, and the spec parser that picks a backend.

A *spec* is one string naming a backend and a model, e.g. ``hf:HuggingFaceTB/SmolLM2-135M-Instruct``,
``offline:smollm2-135m-instruct``, ``openai:gpt-4o@https://api.openai.com/v1`` or ``scripted:tests/rules.yaml``.
Backends are registered once, in ``BACKENDS`` below, by small loader functions that import their module lazily,
so that ``import iteralign`` never pulls in torch, vLLM or openai.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from iteralign.types import Completion, Conversation, GenerationParams, LoglikelihoodRequest


class ChatModel(ABC):
    """A model that answers conversations. Backends implement ``generate`` only."""

    #: The spec string the model was loaded from (for logs and reports).
    name: str = "model"

    @abstractmethod
    def generate(self, conversations: list[Conversation], params: GenerationParams) -> list[Completion]:
        """Answer each conversation (a list of role/content messages); one completion per conversation, in order."""

    def identity(self) -> dict[str, Any]:
        """What makes this model's outputs what they are, for the call cache: backend, name, weights/adapter hashes.

        Backends whose weights can change under the same name (a tuned adapter, a local directory) must include a
        content hash here, otherwise the cache would return the old model's answers.
        """
        return {"backend": type(self).__name__, "name": self.name}

    def close(self) -> None:
        """Release resources (servers, GPU memory). Optional."""


class Scorer(ABC):
    """A model that can score text: the basis of multiple-choice evaluation."""

    @abstractmethod
    def loglikelihood(self, requests: list[LoglikelihoodRequest]) -> list[float]:
        """Sum of log-probabilities of each ``continuation`` token given ``context`` (raw text, no chat template)."""


class ModelConfig(BaseModel):
    """How to load one model. In YAML a bare spec string is accepted as ``{spec: ...}``."""

    #: hide_input_in_errors: a validation error must not repeat a secret pasted into ``api_key_env``.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    spec: str = Field(description="Backend and model, e.g. 'offline:smollm2-135m-instruct' (see `iteralign models`).")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto", description="Weights dtype for local backends; 'auto' picks bfloat16 on CPU/GPU where supported."
    )
    adapter: str | None = Field(None, description="Path of a PEFT LoRA adapter to apply on top of the weights.")
    batch_size: int = Field(16, ge=1, description="Conversations per forward pass (local backends).")
    device: str = Field("auto", description="'auto', 'cpu', 'cuda', 'cuda:1', ...")
    trust_remote_code: bool = Field(False, description="Allow transformers to run code shipped with a model.")
    chat_template: str | None = Field(
        None, description="Path of a Jinja chat template overriding the model's (used as fallback when it has none)."
    )
    api_key_env: str = Field("OPENAI_API_KEY", description="Name of the environment variable holding the API key "
                             "(never stored), e.g. OPENAI_API_KEY; a key pasted here is refused, not echoed.")
    max_concurrency: int = Field(8, ge=1, description="Concurrent requests for API backends.")
    timeout_s: float = Field(120.0, gt=0, description="Per-request timeout for API backends.")
    max_retries: int = Field(5, ge=0, description="Retries on 429/5xx/timeouts for API backends.")
    backoff_base_s: float = Field(1.0, ge=0, description="First retry delay for API backends; doubles per retry "
                                  "(with jitter, capped at 30 s).")
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs per model for the vLLM backend.")
    engine_args: dict[str, Any] = Field(
        default_factory=dict, description="Extra keyword arguments of the vLLM engine (`vllm.LLM`), e.g. "
        "{gpu_memory_utilization: 0.4, max_model_len: 4096}; vllm: backend only."
    )
    cache: bool = Field(True, description="Wrap the model in the SQLite call cache.")

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return {"spec": value} if isinstance(value, str) else value

    @field_validator("api_key_env")
    @classmethod
    def _env_var_name(cls, value: str) -> str:
        from iteralign.envvar import check_env_var_name

        return check_env_var_name(value, "api_key_env")

    @model_validator(mode="after")
    def _check_spec(self) -> "ModelConfig":
        backend = parse_spec(self.spec).backend
        if self.engine_args and backend != "vllm":
            raise ValueError(f"engine_args applies to the vllm: backend only, not {backend}: ({self.spec})")
        return self


class SpecError(ValueError):
    """A model spec that names no known backend or is malformed."""


SPEC_FORMS = {
    "hf": "hf:<hub id or local directory>",
    "gguf": "gguf:<path to a .gguf file>",
    "offline": "offline:<name>  (a model shipped in a PyPI package; see `iteralign models`)",
    "openai": "openai:<model>[@<base_url>]  (any OpenAI-compatible endpoint)",
    "vllm": "vllm:<hub id or local directory>  (needs the 'vllm' extra and a GPU)",
    "scripted": "scripted:<rules.yaml>  (deterministic replies, for tests and dry runs)",
}


@dataclass(frozen=True)
class ModelSpec:
    """A parsed spec: backend name, model name or path, and an optional base URL (openai only)."""

    backend: str
    name: str
    base_url: str | None = None

    def __str__(self) -> str:
        return f"{self.backend}:{self.name}" + (f"@{self.base_url}" if self.base_url else "")


def parse_spec(spec: str) -> ModelSpec:
    """Split ``backend:name[@base_url]``; raise ``SpecError`` listing the valid forms on anything else."""
    valid = "\n  ".join(SPEC_FORMS.values())
    match = re.fullmatch(r"([a-z]+):(.+)", spec.strip()) if isinstance(spec, str) else None
    if not match:
        raise SpecError(f"malformed model spec {spec!r}; valid forms:\n  {valid}")
    backend, rest = match.groups()
    if backend not in SPEC_FORMS:
        raise SpecError(f"unknown backend {backend!r} in model spec {spec!r}; valid forms:\n  {valid}")
    base_url = None
    if backend == "openai" and "@" in rest:
        rest, base_url = rest.split("@", 1)
        if not re.match(r"https?://", base_url):
            raise SpecError(f"base URL {base_url!r} in {spec!r} must start with http:// or https://")
    if not rest.strip():
        raise SpecError(f"model spec {spec!r} names no model; expected {SPEC_FORMS[backend]}")
    return ModelSpec(backend, rest.strip(), base_url)


def _load_hf(spec: ModelSpec, cfg: ModelConfig) -> ChatModel:
    from iteralign.models.hf import HFModel

    return HFModel.load(spec.name, cfg)


def _load_gguf(spec: ModelSpec, cfg: ModelConfig) -> ChatModel:
    from iteralign.models.hf import HFModel
    from iteralign.models.offline import convert_gguf

    return HFModel.load(str(convert_gguf(spec.name)), cfg)


def _load_offline(spec: ModelSpec, cfg: ModelConfig) -> ChatModel:
    from iteralign.models.hf import HFModel
    from iteralign.models.offline import ensure_converted

    return HFModel.load(str(ensure_converted(spec.name)), cfg, name=str(spec))


def _load_openai(spec: ModelSpec, cfg: ModelConfig) -> ChatModel:
    from iteralign.models.openai_api import OpenAIModel

    return OpenAIModel(spec.name, spec.base_url, cfg, backoff_base_s=cfg.backoff_base_s)


def _load_vllm(spec: ModelSpec, cfg: ModelConfig) -> ChatModel:
    from iteralign.models.vllm import VLLMModel

    return VLLMModel(spec.name, cfg)


def _load_scripted(spec: ModelSpec, cfg: ModelConfig) -> ChatModel:
    from iteralign.models.scripted import ScriptedModel

    return ScriptedModel.from_file(spec.name)


#: The one place backends are registered: backend name -> loader (imports lazily).
BACKENDS: dict[str, Callable[[ModelSpec, ModelConfig], ChatModel]] = {
    "hf": _load_hf,
    "gguf": _load_gguf,
    "offline": _load_offline,
    "openai": _load_openai,
    "vllm": _load_vllm,
    "scripted": _load_scripted,
}


def load_model(cfg: ModelConfig | str) -> ChatModel:
    """Build the backend a config (or bare spec) names. The call cache is applied by ``models.cache.cached``."""
    cfg = ModelConfig.model_validate(cfg)
    spec = parse_spec(cfg.spec)
    return BACKENDS[spec.backend](spec, cfg)
