"""Small fake backends for the serve tests: they record every model call, and can be slowed or held on purpose."""

from __future__ import annotations

import threading
import time

from iteralign.models.base import ChatModel
from iteralign.models.openai_api import cut_at_stop
from iteralign.types import Completion, Conversation, GenerationParams


def last_user(conv: Conversation) -> str:
    return next(m["content"] for m in reversed(conv) if m["role"] == "user")


class EchoModel(ChatModel):
    """Answers ``echo: <last user message>`` (cut at a stop string). One call takes ``delay_s`` whatever its batch
    size (as batching backends roughly do); ``gate`` (an Event), when given, holds every call until it is set;
    ``fail`` makes every call raise. ``calls`` lists each call's batch as (last user messages, params)."""

    name = "echo"

    def __init__(self, delay_s: float = 0.0, gate: threading.Event | None = None, fail: bool = False) -> None:
        self.delay_s, self.gate, self.fail = delay_s, gate, fail
        self.calls: list[tuple[list[str], GenerationParams]] = []
        self.started = threading.Event()  # set when the first call begins
        self._lock = threading.Lock()

    def generate(self, conversations: list[Conversation], params: GenerationParams) -> list[Completion]:
        with self._lock:
            self.calls.append(([last_user(c) for c in conversations], params))
        self.started.set()
        if self.gate is not None:
            self.gate.wait(timeout=30)
        time.sleep(self.delay_s)
        if self.fail:
            raise RuntimeError("the model broke")
        return [Completion(cut_at_stop(f"echo: {last_user(c)}", params.stop), "stop", 3, 2) for c in conversations]

    def answered(self) -> list[str]:
        """Every conversation the model was called with, in call order."""
        with self._lock:
            return [prompt for batch, _ in self.calls for prompt in batch]


class StreamingEchoModel(EchoModel):
    """``EchoModel`` that can stream: ``generate_stream`` sends its answer in pieces of ``piece`` characters."""

    def __init__(self, piece: int = 3, **kw) -> None:
        super().__init__(**kw)
        self.piece = piece

    def generate_stream(self, conversation: Conversation, params: GenerationParams, on_text) -> Completion:
        done = self.generate([conversation], params)[0]
        text = f"echo: {last_user(conversation)}"  # the raw text, before any stop string cuts it
        for i in range(0, len(text), self.piece):
            on_text(text[i : i + self.piece])
        return done
