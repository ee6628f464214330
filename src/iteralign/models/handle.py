"""``ModelHandle``: one model of a run, as every stage uses it: loaded on first use, answers cached, usage counted,
budget checked.

The backend API underneath is plain (``ChatModel.generate``, optionally ``Scorer.loglikelihood``); the handle adds
what a run needs around it, in one place:

- **lazy loading**: a resumed run whose stages are done never reads the weights;
- **identity without loading**: ``identity()`` comes from the backend's file hashes and settings, so the call cache
  and the stages' input fingerprints work before (and without) a load;
- **the call cache**: identical calls are answered from SQLite; only the misses reach the model, in one batch;
- **usage and budget**: calls, cache hits and tokens are counted; ``guard`` (the run's budget) runs before any batch
  that reaches the model.

The optional capabilities of judges pass through: ``label_logprobs`` (cached like generations, in a key namespace
of its own; ``NotImplementedError`` from backends without it) and ``hidden_states`` (not cached).
"""

from __future__ import annotations

import gc
from typing import Any, Callable, Sequence

from iteralign.models.base import ChatModel, ModelConfig, Scorer, backend_of, parse_spec
from iteralign.models.cache import CallCache, call_key, label_key
from iteralign.types import Completion, Conversation, GenerationParams, LoglikelihoodRequest, Usage


class ModelHandle(ChatModel, Scorer):
    """A model config made usable: see the module docstring."""

    def __init__(self, cfg: ModelConfig | str, cache: CallCache | None = None,
                 guard: Callable[[], None] | None = None) -> None:
        self.cfg = ModelConfig.model_validate(cfg)
        self.spec = parse_spec(self.cfg.spec)
        self.backend = backend_of(self.spec)
        self.name = self.cfg.spec
        self.cache = cache if self.cfg.cache else None
        self.guard = guard
        self.usage = Usage()
        self._model: ChatModel | None = None
        self._identity: dict[str, Any] | None = None

    @classmethod
    def around(cls, model: ChatModel, cfg: ModelConfig | str, cache: CallCache | None = None) -> "ModelHandle":
        """A handle over a model built elsewhere (its own ``identity()`` keys the cache)."""
        handle = cls(cfg, cache)
        handle._model, handle._identity = model, model.identity()
        return handle

    def identity(self) -> dict[str, Any]:
        """The backend's identity of this config, computed once, without loading the model."""
        if self._identity is None:
            self._identity = self.backend.identity(self.spec, self.cfg)
        return self._identity

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def model(self) -> ChatModel:
        """The backend's model object, loaded now if it was not yet."""
        if self._model is None:
            self._model = self.backend.load(self.spec, self.cfg)
        return self._model

    def generate(self, conversations: list[Conversation], params: GenerationParams) -> list[Completion]:
        cache = self.cache  # (an empty CallCache is falsy: compare with None)
        keys = [call_key(self.identity(), c, params) for c in conversations] if cache is not None else []
        found = cache.get_many(keys) if cache is not None else {}
        todo = [i for i in range(len(conversations)) if not keys or keys[i] not in found]
        fresh: list[Completion] = []
        if todo:
            if self.guard is not None:
                self.guard()  # cache hits are free: only a batch that reaches the model is checked
            fresh = self.model.generate([conversations[i] for i in todo], params)
            if cache is not None:
                cache.put_many({keys[i]: c for i, c in zip(todo, fresh)})
        by_index = dict(zip(todo, fresh))
        out = [by_index[i] if i in by_index else _cached(found[keys[i]]) for i in range(len(conversations))]
        self.usage.add(out)
        return out

    def loglikelihood(self, requests: list[LoglikelihoodRequest]) -> list[float]:
        """Scores from the backend's model (not cached: scoring is one forward pass, cheaper than a cache of it)."""
        model = self.model
        if not isinstance(model, Scorer):
            raise TypeError(f"{self.cfg.spec}: the {self.spec.backend} backend cannot score log-likelihoods; "
                            "multiple-choice benchmarks need one that can (hf, gguf, offline, vllm)")
        return model.loglikelihood(requests)

    def label_logprobs(self, conversations: list[Conversation], labels: list[str]) -> list[dict[str, float]]:
        """The backend's label log-probabilities (``ChatModel.label_logprobs``), cached like generations; each
        conversation scored counts as one call or one cache hit."""
        cache = self.cache
        keys = [label_key(self.identity(), c, labels) for c in conversations] if cache is not None else []
        found = cache.get_scores(keys) if cache is not None else {}
        todo = [i for i in range(len(conversations)) if not keys or keys[i] not in found]
        fresh: list[dict[str, float]] = []
        if todo:
            if self.guard is not None:
                self.guard()
            fresh = self.model.label_logprobs([conversations[i] for i in todo], labels)
            if cache is not None:
                cache.put_scores({keys[i]: row for i, row in zip(todo, fresh)})
        self.usage.calls += len(todo)
        self.usage.cache_hits += len(conversations) - len(todo)
        by_index = dict(zip(todo, fresh))
        return [by_index[i] if i in by_index else found[keys[i]] for i in range(len(conversations))]

    def hidden_states(self, conversations: list[Conversation], layer: int | Sequence[int],
                      *pooling: Any, **opening: Any) -> list[list[float]]:
        """The backend's hidden states after decoder ``layer`` at each prompt's last token, or read as ``pooling``
        (``pool, skip``: ``hf_labels.hidden_features``) when given, after an ``opening`` run once when given (hf,
        gguf, offline); ``NotImplementedError`` from backends without them. Passed on as given, so a backend that
        gives only last-token states still serves last-token probes."""
        model = self.model
        if not callable(getattr(model, "hidden_states", None)):
            raise NotImplementedError(f"{self.cfg.spec}: the {self.spec.backend} backend gives no hidden states")
        return model.hidden_states(conversations, layer, *pooling, **opening)

    def close(self) -> None:
        """Free the loaded model (it is reloaded on next use); counts stay."""
        model, self._model = self._model, None
        if model is not None:
            model.close()
            gc.collect()


def _cached(completion: Completion) -> Completion:
    completion.cached = True
    return completion
