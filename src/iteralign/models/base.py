"""The model interfaces (``ChatModel``, ``Scorer``), the ``Backend`` protocol and its registry, and the spec parser.

A *spec* is one string naming a backend and a model, e.g. ``hf:HuggingFaceTB/SmolLM2-135M-Instruct``,
``offline:smollm2-135m-instruct``, ``openai:gpt-4o@https://api.openai.com/v1`` or ``scripted:tests/rules.yaml``.
Backends live in the ``BACKENDS`` registry: iteralign's own in ``models.backends`` (each imports its library only
when a model is loaded, so ``import iteralign`` never pulls in torch, vLLM or openai), others from installed packages
through the ``iteralign.backends`` entry-point group.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from iteralign.registry import Registry
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

    def label_logprobs(self, conversations: list[Conversation], labels: list[str]) -> list[dict[str, float]]:
        """Optional capability: per conversation, ``{label: log-probability of the label's first token}`` as the first
        token of the answer (one forward pass, nothing generated). Judges use it to classify without parsing text
        (``judging.label_scores``). Labels must differ in their first token. Backends that cannot raise
        ``NotImplementedError`` (this default); callers then fall back to an anchored ``FINAL: <label>`` line."""
        raise NotImplementedError(f"{type(self).__name__} does not give label log-probabilities")

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


@dataclass(frozen=True)
class ModelSpec:
    """A parsed spec: backend name, model name or path, and an optional base URL (openai only)."""

    backend: str
    name: str
    base_url: str | None = None

    def __str__(self) -> str:
        return f"{self.backend}:{self.name}" + (f"@{self.base_url}" if self.base_url else "")


class Backend(ABC):
    """How iteralign uses one kind of model spec: load it, identify it without loading it, train from its weights,
    and name what training produced. Register a subclass with ``@BACKENDS.register("name")``; only ``load`` is
    required (a backend that cannot be fine-tuned keeps the defaults)."""

    #: The spec form shown in error messages, e.g. ``hf:<hub id or local directory>``.
    form: str = "<backend>:<model>"

    def parse(self, backend: str, rest: str) -> ModelSpec:
        """The parsed spec (override to read more than a name, as ``openai:`` reads ``@base_url``)."""
        return ModelSpec(backend, rest)

    @abstractmethod
    def load(self, spec: ModelSpec, cfg: "ModelConfig") -> ChatModel:
        """Build the model (this is where weights are read)."""

    def identity(self, spec: ModelSpec, cfg: "ModelConfig") -> dict[str, Any]:
        """What makes the model's outputs what they are (the call-cache key, stage fingerprints), computed *without*
        loading it: content hashes of local weights and adapters, never a path that could move."""
        from iteralign.models.hf_weights import adapter_fingerprint

        return {"backend": spec.backend, "name": spec.name,
                "adapter": adapter_fingerprint(cfg.adapter) if cfg.adapter else None}

    def train_source(self, spec: ModelSpec) -> str:
        """The local directory or hub id that transformers loads to fine-tune this model."""
        raise SpecError(f"cannot fine-tune {spec}: the target must be a local model (hf:, gguf:, offline:, vllm:)")

    def tuned(self, cfg: "ModelConfig", trained: str, method: str) -> "ModelConfig":
        """The config serving the result of training ``cfg``'s model: LoRA keeps the base and adds the adapter
        folder ``trained``; full fine-tuning serves the saved model folder ``trained`` with this backend."""
        if method == "lora":
            return cfg.model_copy(update={"adapter": trained})
        return cfg.model_copy(update={"spec": f"{self.serve_tuned_as}:{trained}", "adapter": None})

    #: The backend that serves a fully fine-tuned copy (a transformers folder): hf, or vllm for vllm targets.
    serve_tuned_as: str = "hf"


#: Every backend a spec can name: iteralign's own (``models.backends``) and installed plugins'.
BACKENDS: Registry[type[Backend]] = Registry("backend", "iteralign.backends", builtins=("iteralign.models.backends",))


def backend_of(spec: ModelSpec | str) -> Backend:
    """The backend object for a spec (parsed or not)."""
    name = spec.backend if isinstance(spec, ModelSpec) else parse_spec(spec).backend
    return BACKENDS.get(name)()


def parse_spec(spec: str) -> ModelSpec:
    """Split ``backend:name[...]`` and let the backend parse the rest; ``SpecError`` lists the valid forms."""
    forms = "\n  ".join(cls.form for _, cls in BACKENDS.items())
    match = re.fullmatch(r"([a-z][a-z0-9_]*):(.+)", spec.strip()) if isinstance(spec, str) else None
    if not match:
        raise SpecError(f"malformed model spec {spec!r}; valid forms:\n  {forms}")
    backend, rest = match.groups()
    if backend not in BACKENDS:
        raise SpecError(f"unknown backend {backend!r} in model spec {spec!r}; valid forms:\n  {forms}")
    parsed = BACKENDS.get(backend)().parse(backend, rest.strip())
    if not parsed.name.strip():
        raise SpecError(f"model spec {spec!r} names no model; expected {BACKENDS.get(backend).form}")
    return parsed


def load_model(cfg: "ModelConfig | str") -> ChatModel:
    """Build the backend a config (or bare spec) names, loading it now (``models.handle`` loads lazily)."""
    cfg = ModelConfig.model_validate(cfg)
    spec = parse_spec(cfg.spec)
    return backend_of(spec).load(spec, cfg)
