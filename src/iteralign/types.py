"""Plain data types shared by every stage: messages, generation parameters, completions, scoring requests.

They are deliberately small and serialisable (dicts in, dataclasses out) so that stages can write them to JSONL
and backends can pass them to libraries (transformers chat templates and the OpenAI API both take role/content
dicts) without conversion.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field


class Message(TypedDict):
    """One chat turn: ``{"role": "system" | "user" | "assistant", "content": "..."}``."""

    role: str
    content: str


Conversation = list[Message]


def user(text: str, system: str | None = None) -> Conversation:
    """The common case: an optional system message and one user turn."""
    conv: Conversation = [{"role": "system", "content": system}] if system else []
    conv.append({"role": "user", "content": text})
    return conv


class Strict(BaseModel):
    """Base of every config section: an unknown key is an error naming it, never a silently ignored setting.
    ``hide_input_in_errors``: a ValidationError's text must not repeat a secret pasted into a model's api_key_env."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class GenerationParams(BaseModel):
    """Decoding parameters, the same for every backend (each maps them to its library's names).

    Part of the call-cache key, so every field that changes the output belongs here.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_new_tokens: int = Field(256, ge=1, description="Upper bound on generated tokens per completion.")
    temperature: float = Field(0.0, ge=0.0, description="0 means greedy decoding.")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling mass (ignored when greedy).")
    stop: tuple[str, ...] = Field((), description="Stop strings; the completion is cut before the first one.")
    frequency_penalty: float = Field(0.0, description="OpenAI-style penalty per previous occurrence of a token.")
    repetition_penalty: float = Field(1.0, gt=0.0, description="transformers-style multiplicative penalty.")
    seed: int = Field(0, description="Sampling seed; makes sampled outputs reproducible and cacheable.")


FinishReason = Literal["stop", "length"]


@dataclass
class Completion:
    """One generated answer with its token accounting."""

    text: str
    finish_reason: FinishReason = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class LoglikelihoodRequest:
    """Score ``continuation`` given ``context`` (raw text, no chat template), as lm-evaluation-harness does."""

    context: str
    continuation: str


@dataclass
class Usage:
    """Call and token counters a backend or cache accumulates; summed into the run's cost ledger."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_hits: int = 0
    extra: dict = field(default_factory=dict)

    def add(self, completions: list[Completion]) -> None:
        for c in completions:
            if c.cached:
                self.cache_hits += 1
            else:
                self.calls += 1
                self.prompt_tokens += c.prompt_tokens
                self.completion_tokens += c.completion_tokens
