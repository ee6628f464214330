"""The counters behind ``iteralign serve``'s ``GET /metrics``: responses by status, batch sizes, tokens per second.

Thread-safe: the batching worker reports each model call (``record_batch``) and the request handlers report each
chat response's status (``record_status``). ``snapshot`` returns plain JSON-able numbers; the server adds its live
queue length and request counts to it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque

from iteralign.serve_batching import BatchRecord


class ServeMetrics:
    """Totals since start-up, plus tokens/s over the last ``window_s`` seconds."""

    def __init__(self, window_s: float = 60.0) -> None:
        self.window_s = window_s
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._statuses: Counter[int] = Counter()
        self._batch_sizes: Counter[int] = Counter()
        self._model_errors = 0
        self._tokens = 0
        self._busy_s = 0.0
        self._recent: deque[tuple[float, int]] = deque()  # (end time, completion tokens) of recent batches

    def record_batch(self, record: BatchRecord) -> None:
        """One model call: its size, tokens and duration (a failed call counts as a model error)."""
        now = time.monotonic()
        with self._lock:
            self._batch_sizes[record.size] += 1
            self._busy_s += record.seconds
            if record.error is not None:
                self._model_errors += 1
                return
            self._tokens += record.completion_tokens
            self._recent.append((now, record.completion_tokens))
            self._trim(now)

    def record_status(self, status: int) -> None:
        """The HTTP status of one chat-completions response (injected faults included)."""
        with self._lock:
            self._statuses[status] += 1

    def snapshot(self) -> dict:
        """The counters as JSON-able numbers (see the README's serve section for their meaning)."""
        now = time.monotonic()
        with self._lock:
            self._trim(now)
            batches = sum(self._batch_sizes.values())
            span = min(self.window_s, now - self._started) or 1e-9
            return {
                "uptime_s": round(now - self._started, 3),
                "responses": {str(code): n for code, n in sorted(self._statuses.items())},
                "errors": sum(n for code, n in self._statuses.items() if code >= 400),
                "model_errors": self._model_errors,
                "batches": batches,
                "batch_sizes": {str(size): n for size, n in sorted(self._batch_sizes.items())},
                "mean_batch_size": round(sum(s * n for s, n in self._batch_sizes.items()) / batches, 3)
                if batches else 0.0,
                "completion_tokens": self._tokens,
                "model_busy_s": round(self._busy_s, 3),
                "tokens_per_s_busy": round(self._tokens / self._busy_s, 2) if self._busy_s else 0.0,
                "tokens_per_s_recent": round(sum(t for _, t in self._recent) / span, 2),
                "recent_window_s": self.window_s,
            }

    def _trim(self, now: float) -> None:
        while self._recent and self._recent[0][0] < now - self.window_s:
            self._recent.popleft()
