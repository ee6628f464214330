"""A content-addressed SQLite cache of model calls, wrapped around any ChatModel.

The key is a SHA-256 of (model identity, messages, generation params), so a tuned adapter, a different prompt or a
different decoding setting is a miss, and an identical call is answered without touching the model. SQLite in WAL
mode with a busy timeout makes one database safe to share between processes (several runs, `accelerate` workers).
Only model outputs are stored: no API keys (identity never contains one) and no config.

The key does not describe the batch a call was made in (the other conversations, batch size, padding). A greedy bf16
answer can depend on them, so a cached answer is the one the model gave in the batch it was first asked in; keying
on the batch would make every resumed or partly cached call a miss (README, "What a cached answer is").
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any, Callable

from iteralign.models.base import ChatModel, Scorer
from iteralign.types import Completion, Conversation, GenerationParams, LoglikelihoodRequest, Usage

_SCHEMA = "CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, completion TEXT NOT NULL)"


def call_key(identity: dict[str, Any], conversation: Conversation, params: GenerationParams) -> str:
    """The cache key of one call: stable across processes and Python versions."""
    payload = json.dumps([identity, conversation, params.model_dump(mode="json")], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class CallCache:
    """The SQLite file holding completions by key; one connection per thread."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._conn() as conn:
            conn.execute(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def get_many(self, keys: list[str]) -> dict[str, Completion]:
        found: dict[str, Completion] = {}
        conn = self._conn()
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, blob in conn.execute(f"SELECT key, completion FROM calls WHERE key IN ({marks})", chunk):
                found[key] = Completion(**json.loads(blob))
        return found

    def put_many(self, items: dict[str, Completion]) -> None:
        rows = [(k, json.dumps({**c.to_dict(), "cached": False})) for k, c in items.items()]
        with self._conn() as conn:  # one transaction: all or nothing
            conn.executemany("INSERT OR REPLACE INTO calls (key, completion) VALUES (?, ?)", rows)

    def __len__(self) -> int:
        return self._conn().execute("SELECT COUNT(*) FROM calls").fetchone()[0]


class CachedChatModel(ChatModel, Scorer):
    """Answers repeated calls from the cache and forwards only the misses, in one batch, to the wrapped model.

    With ``cache=None`` every call goes to the model; the wrapper then only counts (calls, tokens) for the ledger.
    ``loglikelihood`` (not cached) and other attributes (``model``, ``tokenizer``) pass through to the wrapped model;
    the wrapper is a ``Scorer`` so that multiple-choice benchmarks accept it, and says so when the model is not.
    """

    def __init__(self, inner: ChatModel, cache: CallCache | None) -> None:
        self.inner = inner
        self.cache = cache
        self.name = inner.name
        self.usage = Usage()
        self.guard: Callable[[], None] | None = None  # called before forwarding calls to the model (the budget)

    @property
    def hits(self) -> int:
        return self.usage.cache_hits

    @property
    def misses(self) -> int:
        return self.usage.calls

    def identity(self) -> dict[str, Any]:
        return self.inner.identity()

    def generate(self, conversations: list[Conversation], params: GenerationParams) -> list[Completion]:
        if self.cache is None:
            if self.guard is not None:
                self.guard()
            out = self.inner.generate(conversations, params)
            self.usage.add(out)
            return out
        ident = self.inner.identity()
        keys = [call_key(ident, conv, params) for conv in conversations]
        found = self.cache.get_many(keys)
        todo = [i for i, k in enumerate(keys) if k not in found]
        if todo and self.guard is not None:
            self.guard()  # cache hits are free: only a batch that reaches the model is checked
        fresh = self.inner.generate([conversations[i] for i in todo], params) if todo else []
        self.cache.put_many({keys[i]: c for i, c in zip(todo, fresh)})
        by_index = dict(zip(todo, fresh))
        out = [by_index[i] if i in by_index else _as_cached(found[k]) for i, k in enumerate(keys)]
        self.usage.add(out)
        return out

    def loglikelihood(self, requests: list[LoglikelihoodRequest]) -> list[float]:
        if not isinstance(self.inner, Scorer):
            raise TypeError(f"{type(self.inner).__name__} cannot score log-likelihoods; multiple-choice benchmarks "
                            "need a backend that implements Scorer (hf, gguf, offline)")
        return self.inner.loglikelihood(requests)

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, attr: str) -> Any:
        if attr == "inner":  # not yet set during unpickling/copy: avoid infinite recursion
            raise AttributeError(attr)
        return getattr(self.inner, attr)


def _as_cached(completion: Completion) -> Completion:
    completion.cached = True
    return completion


def cached(model: ChatModel, cache: CallCache | None) -> CachedChatModel:
    """Wrap ``model`` in the cache (or, with ``None``, in a counter only)."""
    return CachedChatModel(model, cache)
