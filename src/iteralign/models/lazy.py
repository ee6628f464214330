"""A model that is loaded the first time it is used, so that resuming a finished run loads nothing.

``Roles`` hands every stage its models up front (``roles.get(cfg)``), but a stage that is already done reads its
records back without calling the model. Loading the 1.5B oracle just to skip a stage cost seconds per model on
resume; behind this proxy the weights are read only when a call actually reaches the model (a cache miss, a
``loglikelihood`` or an attribute such as ``tokenizer``).
"""

from __future__ import annotations

from typing import Any

from iteralign.models.base import ChatModel, ModelConfig, Scorer, load_model
from iteralign.types import Completion, Conversation, GenerationParams, LoglikelihoodRequest


class LazyModel(ChatModel, Scorer):
    """Stands in for ``load_model(cfg)`` until the first call; then forwards everything to the loaded model."""

    def __init__(self, cfg: ModelConfig) -> None:
        self.cfg = cfg
        self.name = cfg.spec
        self._inner: ChatModel | None = None

    @property
    def loaded(self) -> bool:
        return self._inner is not None

    def load(self) -> ChatModel:
        if self._inner is None:
            self._inner = load_model(self.cfg)
            self.name = self._inner.name
        return self._inner

    def generate(self, conversations: list[Conversation], params: GenerationParams) -> list[Completion]:
        return self.load().generate(conversations, params)

    def loglikelihood(self, requests: list[LoglikelihoodRequest]) -> list[float]:
        inner = self.load()
        if not isinstance(inner, Scorer):
            raise TypeError(f"{type(inner).__name__} ({self.cfg.spec}) cannot score log-likelihoods; multiple-choice "
                            "benchmarks need a backend that implements Scorer (hf, gguf, offline)")
        return inner.loglikelihood(requests)

    def identity(self) -> dict[str, Any]:
        return self.load().identity()

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()
            self._inner = None

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_") or attr == "cfg":  # not yet set (copy/unpickle) or private: never load for these
            raise AttributeError(attr)
        return getattr(self.load(), attr)
