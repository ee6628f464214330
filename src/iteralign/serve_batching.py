"""Dynamic batching for ``iteralign serve``: concurrent requests with the same decoding parameters share one call.

A local backend answers a batch of 16 conversations several times faster than 16 single calls (BENCHMARKS.md), but
a server receives requests one by one. ``BatchScheduler`` sits between the two:

- ``submit`` puts a request in a bounded FIFO queue (``QueueFull`` beyond ``max_queue`` waiting requests, so that
  the server can answer 503 with ``Retry-After`` instead of letting a burst wait without limit) and returns a
  ``concurrent.futures.Future`` of its ``Completion``;
- one worker thread owns the model (local backends are not thread-safe): it takes the oldest waiting request, waits
  for companions until ``batch_window_s`` after that request's arrival, and until ``batch_window_s`` or
  ``AFTER_CALL_FRACTION`` of the previous call's duration (whichever is longer) after the end of the previous model
  call (no wait when the queue already holds a full group), then answers the oldest request together with every
  waiting request with *equal* ``GenerationParams`` (the grouping key), up to ``max_batch_size``, in one
  ``model.generate`` call. The wait after a call matters under load: the clients just answered send their next
  request soon after, and without it they would form a batch of their own behind the requests that waited,
  splitting a steady stream of 16 clients into partial batches that each cost nearly a full batch's time. On a busy
  CPU "soon" can be tens of milliseconds, hence the wait in proportion to the call (it costs at most that fraction
  of throughput);
- a future cancelled while its request still waits (the client left, the request timed out) leaves the queue and
  costs no model time; one cancelled after its batch started is answered and the answer dropped.

Requests with a ``stream`` callback are never grouped: they run alone through the backend's
``generate_stream(conversation, params, on_text)``.

Greedy answers equal one-at-a-time answers wherever the backend's batched greedy output does (float32 on the
transformers backend, tested). Sampled answers depend on the batch they land in, as with any batching server: the
seed seeds the batch, not each request.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable, Hashable

from iteralign.models.base import ChatModel
from iteralign.types import Conversation, GenerationParams

log = logging.getLogger(__name__)

#: After a model call of t seconds, wait up to t * this (or the batch window, if longer) for the clients just answered.
AFTER_CALL_FRACTION = 0.02


class QueueFull(Exception):
    """The queue holds ``max_queue`` waiting requests; ``retry_after_s`` estimates when there will be room."""

    def __init__(self, waiting: int, retry_after_s: int) -> None:
        super().__init__(f"server busy: {waiting} requests waiting; retry in {retry_after_s} s")
        self.waiting, self.retry_after_s = waiting, retry_after_s


@dataclass(eq=False)
class Job:
    """One waiting request. ``key`` groups compatible jobs; a streaming job's key is unique to it."""

    conversation: Conversation
    params: GenerationParams
    on_text: Callable[[str], None] | None = None
    future: Future = field(default_factory=Future)
    arrived: float = field(default_factory=time.monotonic)

    @property
    def key(self) -> Hashable:
        return self if self.on_text else self.params


@dataclass
class BatchRecord:
    """What the worker reports after each model call (for the server's metrics)."""

    size: int
    completion_tokens: int
    seconds: float
    error: BaseException | None = None


class BatchScheduler:
    """Groups concurrent requests into model calls on one worker thread (see the module docstring)."""

    def __init__(self, model: ChatModel, *, max_batch_size: int = 16, batch_window_s: float = 0.005,
                 max_queue: int = 64, on_batch: Callable[[BatchRecord], None] | None = None) -> None:
        if max_batch_size < 1 or max_queue < 1 or batch_window_s < 0:
            raise ValueError("max_batch_size and max_queue must be >= 1 and batch_window_s >= 0")
        self.model, self.max_batch_size, self.batch_window_s, self.max_queue = (
            model, max_batch_size, batch_window_s, max_queue)
        self.on_batch = on_batch
        self._waiting: list[Job] = []
        self._running = 0
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._batch_s = 0.0  # moving average of a model call's duration, for Retry-After
        self._last_end = 0.0  # when the previous model call ended (monotonic); read by the worker thread only
        self._last_call_s = 0.0  # how long it took

    # -- the request side --------------------------------------------------------------------------------------
    def submit(self, conversation: Conversation, params: GenerationParams,
               on_text: Callable[[str], None] | None = None) -> Future:
        """Queue one request; its future resolves to a ``Completion`` (or the model's exception). Raises
        ``QueueFull`` when ``max_queue`` requests are already waiting. ``on_text`` (streaming) is called from the
        worker thread with each new piece of text."""
        job = Job(conversation, params, on_text)
        with self._cond:
            if len(self._waiting) >= self.max_queue:
                raise QueueFull(len(self._waiting), self._retry_after())
            self._waiting.append(job)
            self._closed = False
            self._ensure_worker()
            self._cond.notify_all()
        job.future.add_done_callback(lambda _: self._forget(job))
        return job.future

    def queue_length(self) -> int:
        """Requests waiting for a batch (not counting the batch being answered)."""
        with self._cond:
            return len(self._waiting)

    def running(self) -> int:
        """Requests in the model call under way."""
        with self._cond:
            return self._running

    def close(self) -> None:
        """Stop the worker after its current batch; waiting requests are cancelled. ``submit`` restarts it."""
        with self._cond:
            self._closed = True
            waiting, self._waiting = self._waiting, []
            self._cond.notify_all()
            thread = self._thread
        for job in waiting:
            job.future.cancel()
        if thread is not None:
            thread.join(timeout=30)

    def _retry_after(self) -> int:
        """Whole seconds until the waiting requests should be through: batches ahead x average batch time."""
        batches_ahead = math.ceil(len(self._waiting) / self.max_batch_size) + 1
        return max(1, math.ceil(batches_ahead * self._batch_s))

    def _forget(self, job: Job) -> None:
        with self._cond:
            if job in self._waiting:  # cancelled while waiting: it leaves the queue
                self._waiting.remove(job)
                self._cond.notify_all()

    def _ensure_worker(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._work, daemon=True, name="iteralign-batcher")
            self._thread.start()

    # -- the worker side ---------------------------------------------------------------------------------------
    def _work(self) -> None:
        while (batch := self._next_batch()) is not None:
            self._answer(batch)

    def _next_batch(self) -> list[Job] | None:
        """Block until a batch is due (see the module docstring); None once closed."""
        with self._cond:
            while True:
                if self._closed:
                    self._thread = None  # a submit() from now on starts a new worker
                    return None
                if not self._waiting:
                    self._cond.wait()
                    continue
                first = self._waiting[0]
                group = [job for job in self._waiting if job.key == first.key][: self.max_batch_size]
                after_call = max(self.batch_window_s, self._last_call_s * AFTER_CALL_FRACTION)
                due = max(first.arrived + self.batch_window_s, self._last_end + after_call)
                wait_s = due - time.monotonic()
                if len(group) >= self.max_batch_size or wait_s <= 0 or first.on_text:
                    for job in group:
                        self._waiting.remove(job)
                    batch = [job for job in group if job.future.set_running_or_notify_cancel()]
                    if batch:
                        self._running = len(batch)
                        return batch
                    continue
                self._cond.wait(wait_s)

    def _answer(self, batch: list[Job]) -> None:
        """One model call for the batch; every future gets its completion, or the call's exception."""
        start, error = time.monotonic(), None
        try:
            if batch[0].on_text:
                results = [self.model.generate_stream(batch[0].conversation, batch[0].params, batch[0].on_text)]
            else:
                results = self.model.generate([job.conversation for job in batch], batch[0].params)
            if len(results) != len(batch):
                raise RuntimeError(f"the model returned {len(results)} completions for {len(batch)} conversations")
        except Exception as exc:  # noqa: BLE001 - handed to every waiting request, which answers 500
            log.exception("model call failed for a batch of %d", len(batch))
            results, error = [], exc
        seconds = time.monotonic() - start
        with self._cond:
            self._running = 0
            self._batch_s = seconds if not self._batch_s else 0.8 * self._batch_s + 0.2 * seconds
        for i, job in enumerate(batch):
            if error is None:
                job.future.set_result(results[i])
            else:
                job.future.set_exception(error)
        self._last_end, self._last_call_s = time.monotonic(), seconds  # the clients just answered may come back soon
        if self.on_batch:
            self.on_batch(BatchRecord(len(batch), sum(c.completion_tokens for c in results), seconds, error))


def can_stream(model: ChatModel) -> bool:
    """Whether the backend streams text as it generates (has ``generate_stream``)."""
    return callable(getattr(model, "generate_stream", None))

