"""A content-addressed SQLite cache of model calls (used by ``models.handle.ModelHandle``).

The key is a SHA-256 of (model identity, messages, generation params) (label log-probabilities: of identity, messages
and the labels, under a prefix of their own), so a tuned adapter, a different prompt or a
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
from typing import Any

from iteralign.types import Completion, Conversation, GenerationParams

_SCHEMA = "CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, completion TEXT NOT NULL)"


def call_key(identity: dict[str, Any], conversation: Conversation, params: GenerationParams) -> str:
    """The cache key of one call: stable across processes and Python versions."""
    payload = json.dumps([identity, conversation, params.model_dump(mode="json")], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def label_key(identity: dict[str, Any], conversation: Conversation, labels: list[str]) -> str:
    """The cache key of one label-log-probability call (a namespace of its own: never equal to a ``call_key``)."""
    payload = json.dumps(["label_logprobs", identity, conversation, labels], sort_keys=True, ensure_ascii=False)
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
        return {key: Completion(**row) for key, row in self._get_json(keys).items()}

    def put_many(self, items: dict[str, Completion]) -> None:
        self._put_json({k: {**c.to_dict(), "cached": False} for k, c in items.items()})

    def get_scores(self, keys: list[str]) -> dict[str, dict[str, float]]:
        """Stored label log-probabilities by key (rows written by ``put_scores``)."""
        return self._get_json(keys)

    def put_scores(self, items: dict[str, dict[str, float]]) -> None:
        self._put_json(items)

    def _get_json(self, keys: list[str]) -> dict[str, Any]:
        """The stored rows of ``keys`` that exist, decoded (queried in chunks under SQLite's variable limit)."""
        found: dict[str, Any] = {}
        conn = self._conn()
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, blob in conn.execute(f"SELECT key, completion FROM calls WHERE key IN ({marks})", chunk):
                found[key] = json.loads(blob)
        return found

    def _put_json(self, items: dict[str, Any]) -> None:
        rows = [(k, json.dumps(v)) for k, v in items.items()]
        with self._conn() as conn:  # one transaction: all or nothing
            conn.executemany("INSERT OR REPLACE INTO calls (key, completion) VALUES (?, ?)", rows)

    def __len__(self) -> int:
        return self._conn().execute("SELECT COUNT(*) FROM calls").fetchone()[0]
