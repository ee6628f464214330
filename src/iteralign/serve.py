"""An OpenAI-compatible server over any local backend: ``iteralign serve --model SPEC --port P``.

Exposes ``POST /v1/chat/completions`` and ``GET /v1/models``, so that the ``openai:`` backend (or any OpenAI client)
can use a local model: ``openai:<name>@http://127.0.0.1:P/v1``. It exists for two reasons: to run the loop with an
API-style oracle on one machine, and to test the ``openai:`` backend against a real HTTP server.

Calls to the local model are serialised with a lock (local backends are not thread-safe and batch on their own);
concurrent requests queue. The ``model`` field of a request is not checked: the server answers with its one model.

Fault injection (``--fault-plan FILE``, YAML or JSON) makes the next chat requests fail in a scripted order, so that
retries and error paths are exercised for real::

    faults: [429, 500, timeout, malformed, ok]   # consumed one per request, in order; then every request is ok
    hang_s: 30                                   # how long "timeout" holds a request (it ends early on disconnect)

An integer is an HTTP error status with an OpenAI-style error body; ``timeout`` holds the request without answering;
``malformed`` answers 200 with truncated JSON; ``ok`` serves normally. A bare list is accepted as ``faults``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Literal, Union

import yaml
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from iteralign.models.base import ChatModel
from iteralign.types import Conversation, GenerationParams

log = logging.getLogger(__name__)

Fault = Union[int, Literal["timeout", "malformed", "ok"]]


class FaultPlan(BaseModel):
    """Scripted failures for the next chat requests (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")
    faults: list[Fault] = Field(default_factory=list, description="One entry per request, consumed in order.")
    hang_s: float = Field(30.0, gt=0, description="How long a 'timeout' fault holds the request.")

    @classmethod
    def load(cls, path: str | Path) -> "FaultPlan":
        """Read a plan from YAML or JSON; errors name the file and the field."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            return cls.model_validate({"faults": data} if isinstance(data, list) else data or {})
        # ValueError: not UTF-8, an integer of 5000 digits; RecursionError: nesting deeper than the stack
        except (OSError, yaml.YAMLError, ValidationError, ValueError, RecursionError) as exc:
            raise ValueError(f"invalid fault plan {path}: {exc}") from None


class ChatMessage(BaseModel):
    """One message of a request (text content only)."""

    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant"]
    content: str


class ChatRequest(BaseModel):
    """The part of the OpenAI chat-completions request this server honours; unknown fields are ignored, as
    OpenAI-compatible servers do, so that clients sending newer fields still work."""

    model_config = ConfigDict(extra="ignore")
    model: str = ""
    messages: list[ChatMessage] = Field(min_length=1)
    temperature: float = Field(1.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = 1
    frequency_penalty: float = 0.0
    stream: bool = False

    def params(self) -> GenerationParams:
        stop = [self.stop] if isinstance(self.stop, str) else self.stop or []
        return GenerationParams(
            max_new_tokens=self.max_completion_tokens or self.max_tokens or 256, temperature=self.temperature,
            top_p=self.top_p, stop=tuple(stop), seed=self.seed or 0, frequency_penalty=self.frequency_penalty,
        )


@dataclass
class ServerStats:
    """What the server saw: request and fault counts, peak concurrency, the last decoding parameters (for tests)."""

    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    faults_served: int = 0
    last_params: GenerationParams | None = None


class ServerState:
    """The model, the remaining faults and the counters of one app."""

    def __init__(self, model: ChatModel, name: str, plan: FaultPlan, api_key: str | None) -> None:
        self.model, self.name, self.api_key = model, name, api_key
        self.hang_s = plan.hang_s
        self.faults: deque[Fault] = deque(plan.faults)
        self.stats = ServerStats()
        self.model_lock = threading.Lock()

    def set_faults(self, plan: FaultPlan) -> None:
        """Replace the pending faults (tests script each case this way)."""
        self.faults, self.hang_s = deque(plan.faults), plan.hang_s

    def next_fault(self) -> Fault:
        return self.faults.popleft() if self.faults else "ok"

    def generate(self, conv: Conversation, params: GenerationParams):
        with self.model_lock:
            return self.model.generate([conv], params)[0]


class Unauthorized(Exception):
    """A request without the server's API key."""


def error_response(status: int, message: str, kind: str = "invalid_request_error",
                   code: str | None = None) -> JSONResponse:
    """An OpenAI-style error body, so that clients raise their usual typed exceptions."""
    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": code}}, status_code=status)


def create_app(model: ChatModel, *, name: str | None = None, faults: FaultPlan | None = None,
               api_key: str | None = None) -> FastAPI:
    """The FastAPI app over ``model``; ``app.state.iteralign`` is its ``ServerState``. ``api_key`` makes the server
    demand ``Authorization: Bearer <api_key>`` (401 otherwise)."""
    state = ServerState(model, name or getattr(model, "name", "model"), faults or FaultPlan(), api_key)

    def _check_key(request: Request) -> None:
        # A dependency, not an HTTP middleware: Starlette's BaseHTTPMiddleware hides client disconnects from handlers.
        if state.api_key is not None:
            given = request.headers.get("authorization", "")
            if not secrets.compare_digest(given.encode(), f"Bearer {state.api_key}".encode()):
                raise Unauthorized()

    app = FastAPI(title="iteralign OpenAI-compatible server", docs_url=None, redoc_url=None,
                  dependencies=[Depends(_check_key)])
    app.state.iteralign = state

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        fields = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return error_response(400, f"invalid request: {fields}")

    @app.exception_handler(Unauthorized)
    async def _unauthorized(request: Request, exc: Unauthorized):
        return error_response(401, "invalid or missing API key", code="invalid_api_key")

    @app.get("/v1/models")
    async def _models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": state.name, "object": "model", "created": 0,
                                            "owned_by": "iteralign"}]}

    @app.post("/v1/chat/completions")
    async def _chat(body: ChatRequest, request: Request):
        state.stats.requests += 1
        state.stats.in_flight += 1
        state.stats.max_in_flight = max(state.stats.max_in_flight, state.stats.in_flight)
        try:
            return await _answer(state, body, request)
        finally:
            state.stats.in_flight -= 1

    return app


async def _answer(state: ServerState, body: ChatRequest, request: Request):
    """Serve one chat request: the next fault if any, else the model's completion."""
    if body.n != 1:
        return error_response(400, f"n={body.n} is not supported: this server returns one choice (n=1)", code="n")
    if body.stream:
        return error_response(400, "stream=true is not supported by this server", code="stream")
    fault = state.next_fault()
    if fault != "ok":
        state.stats.faults_served += 1
        log.info("fault injected: %s", fault)
    if isinstance(fault, int):
        return error_response(fault, f"injected fault: HTTP {fault}", kind="server_error" if fault >= 500 else
                              "invalid_request_error")
    if fault == "timeout":
        deadline = time.monotonic() + state.hang_s
        while time.monotonic() < deadline and not await request.is_disconnected():
            await asyncio.sleep(0.02)
        return error_response(504, "injected fault: request held past the client's timeout")
    if fault == "malformed":
        return Response('{"id": "chatcmpl-broken", "choices": [{"index": 0, "mess', media_type="application/json")
    conv: Conversation = [{"role": m.role, "content": m.content} for m in body.messages]
    state.stats.last_params = body.params()
    done = await asyncio.to_thread(state.generate, conv, state.stats.last_params)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
        "model": state.name,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": done.text},
                     "finish_reason": done.finish_reason}],
        "usage": {"prompt_tokens": done.prompt_tokens, "completion_tokens": done.completion_tokens,
                  "total_tokens": done.prompt_tokens + done.completion_tokens},
    }


@contextlib.contextmanager
def running_server(app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` from a background thread; yields the base URL (``http://host:port/v1``). Port 0 = a free port,
    bound before the server starts, so there is no race for it. Stops the server cleanly on exit."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="iteralign-serve")
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"server on {host}:{sock.getsockname()[1]} did not start")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{sock.getsockname()[1]}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def serve(spec: str, host: str = "127.0.0.1", port: int = 8000, fault_plan: str | Path | None = None,
          api_key_env: str | None = None, name: str | None = None) -> None:
    """Load ``spec`` and serve it until interrupted (the ``iteralign serve`` command)."""
    import uvicorn

    from iteralign.models.base import load_model

    api_key = None
    if api_key_env:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise ValueError(f"--api-key-env names {api_key_env}, but that environment variable is not set")
    elif host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("serving on %s without an API key: anyone who can reach this port can use the model", host)
    plan = FaultPlan.load(fault_plan) if fault_plan else FaultPlan()
    app = create_app(load_model(spec), name=name or spec, faults=plan, api_key=api_key)
    print(json.dumps({"serving": name or spec, "base_url": f"http://{host}:{port}/v1"}), flush=True)
    uvicorn.run(app, host=host, port=port, log_level="info")
