"""``stream: true`` for ``iteralign serve``: OpenAI's ``chat.completion.chunk`` events over server-sent events.

The request goes through the batching queue like any other (so the queue bound and 503 apply), but runs alone
through the backend's ``generate_stream``, whose ``on_text`` pieces arrive here from the worker thread. The events
are the ones OpenAI clients parse: a first chunk with the assistant role, content deltas, a last chunk with the
finish reason, an optional usage chunk (``stream_options: {include_usage: true}``), then ``data: [DONE]``.

Stop strings: a backend streams what it decodes, which may run past a stop string (generation halts only after the
token that completes it). ``StopGuard`` therefore holds back the last ``len(longest stop) - 1`` characters until they
cannot start a stop string, and the completion's own text (cut at the stop) settles the end, so the concatenated
deltas equal the non-streamed answer.

An error after the first event cannot change the HTTP status (200 is already sent): it is sent as an ``error``
event before ``[DONE]``, and counted in the metrics under the status it would have had (500, 504; 499 when the
client left).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, AsyncIterator, Callable

from iteralign.serve_batching import BatchScheduler
from iteralign.types import Conversation, GenerationParams

log = logging.getLogger(__name__)


def sse(data: dict[str, Any] | str) -> str:
    """One server-sent event carrying ``data`` (JSON unless already a string)."""
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"


class StopGuard:
    """Releases streamed text only once it cannot be the start of a stop string (see the module docstring)."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self.stops = [s for s in stops if s]
        self.hold = max((len(s) for s in self.stops), default=1) - 1
        self.text, self.sent, self.stopped = "", 0, False

    def feed(self, piece: str) -> str:
        """Add a streamed piece; return the text now safe to send."""
        if self.stopped:
            return ""
        self.text += piece
        cuts = [self.text.find(s) for s in self.stops if s in self.text]
        if cuts:
            self.stopped = True
        return self._release(min(cuts) if cuts else len(self.text) - self.hold)

    def finish(self, final_text: str) -> str:
        """The rest of the authoritative ``final_text`` after what was sent ('' if the stream disagreed with it)."""
        sent = self.text[: self.sent]
        if not final_text.startswith(sent):
            log.warning("streamed text diverged from the completion; the stream ends with what was sent")
            return ""
        self.sent = len(final_text)
        return final_text[len(sent):]

    def _release(self, end: int) -> str:
        if end <= self.sent:
            return ""
        out, self.sent = self.text[self.sent : end], end
        return out


def start_stream(scheduler: BatchScheduler, conversation: Conversation, params: GenerationParams, *,
                 header: dict[str, Any], include_usage: bool, timeout_s: float,
                 on_done: Callable[[int], None]) -> AsyncIterator[str]:
    """Queue a streaming request (raises ``QueueFull`` at once, before any byte is sent) and return its events.
    ``header`` holds the chunk fields every event repeats (id, created, model); ``on_done`` gets the final status."""
    loop = asyncio.get_running_loop()
    pieces: asyncio.Queue[str | None] = asyncio.Queue()
    push = lambda item: loop.call_soon_threadsafe(pieces.put_nowait, item)  # noqa: E731 - from the worker thread
    future = scheduler.submit(conversation, params, on_text=push)
    future.add_done_callback(lambda _: push(None))  # after every piece: the worker calls on_text before set_result
    return _events(future, pieces, StopGuard(params.stop), header, include_usage, timeout_s, on_done)


def _chunk(header: dict[str, Any], delta: dict[str, str], finish: str | None) -> dict[str, Any]:
    return {**header, "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


async def _events(future: Any, pieces: asyncio.Queue, guard: StopGuard, header: dict[str, Any], include_usage: bool,
                  timeout_s: float, on_done: Callable[[int], None]) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    deadline, status = loop.time() + timeout_s, 499  # 499 unless it ends normally: the client left mid-stream
    try:
        yield sse(_chunk(header, {"role": "assistant", "content": ""}, None))
        while (piece := await asyncio.wait_for(pieces.get(), max(0.0, deadline - loop.time()))) is not None:
            if text := guard.feed(piece):
                yield sse(_chunk(header, {"content": text}, None))
        done = future.result()
        if rest := guard.finish(done.text):
            yield sse(_chunk(header, {"content": rest}, None))
        yield sse(_chunk(header, {}, done.finish_reason))
        if include_usage:
            usage = {"prompt_tokens": done.prompt_tokens, "completion_tokens": done.completion_tokens,
                     "total_tokens": done.prompt_tokens + done.completion_tokens}
            yield sse({**header, "object": "chat.completion.chunk", "choices": [], "usage": usage})
        status = 200
    except TimeoutError:
        status = 504
        yield sse({"error": {"message": f"request timed out after {timeout_s:g} s", "type": "server_error",
                             "param": None, "code": "timeout"}})
    except Exception as exc:  # noqa: BLE001 - the model call failed: said in the stream, the server goes on
        status = 500
        yield sse({"error": {"message": f"model error: {type(exc).__name__}: {str(exc)[:200]}",
                             "type": "server_error", "param": None, "code": None}})
    finally:
        future.cancel()  # still waiting (timeout, client gone): it leaves the queue
        on_done(status)
    yield sse("[DONE]")
