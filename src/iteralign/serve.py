"""An OpenAI-compatible server over any local backend: ``iteralign serve --model SPEC --port P``.

Exposes ``POST /v1/chat/completions`` and ``GET /v1/models``, so that the ``openai:`` backend (or any OpenAI client)
can use a local model: ``openai:<name>@http://127.0.0.1:P/v1``. It exists for two reasons: to run the loop with an
API-style oracle on one machine, and to test the ``openai:`` backend against a real HTTP server.

Concurrent requests are batched (``serve_batching``): requests with equal decoding parameters that arrive within
``batch_window_ms`` of each other, or wait while the model is busy, share one ``model.generate`` call, up to
``max_batch_size``; one worker thread owns the model. At most ``max_queue`` requests wait: beyond that the answer is
503 with ``Retry-After`` (the ``openai:`` backend retries it). Requests larger than the limits (messages, characters,
``max_tokens``) get a 400 with an OpenAI-style error body; a request not answered within ``request_timeout_s`` gets
a 504 and leaves the queue, as does one whose client disconnects. ``stream: true`` is served as server-sent events
when the backend can stream (``serve_stream``), else refused with a 400. ``GET /health`` (no API key needed) and
``GET /metrics`` (``serve_metrics``) report the queue, batch sizes, tokens/s and errors. The ``model`` field of a
request is not checked: the server answers with its one model.

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
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from iteralign.models.base import ChatModel
from iteralign.serve_batching import BatchScheduler, QueueFull, can_stream
from iteralign.serve_metrics import ServeMetrics
from iteralign.serve_stream import start_stream
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
    stream_options: dict[str, Any] | None = None

    def params(self, default_max_tokens: int = 256) -> GenerationParams:
        stop = [self.stop] if isinstance(self.stop, str) else self.stop or []
        return GenerationParams(
            max_new_tokens=self.max_completion_tokens or self.max_tokens or default_max_tokens,
            temperature=self.temperature, top_p=self.top_p, stop=tuple(stop), seed=self.seed or 0,
            frequency_penalty=self.frequency_penalty,
        )


class ServeLimits(BaseModel):
    """How the server batches and what it accepts: the ``iteralign serve`` options of the same names."""

    model_config = ConfigDict(extra="forbid")
    max_batch_size: int = Field(16, ge=1, description="Most requests answered by one model call.")
    batch_window_ms: float = Field(5.0, ge=0, description="How long the oldest waiting request waits for companions.")
    max_queue: int = Field(64, ge=1, description="Most requests waiting for a batch; beyond it, 503 + Retry-After.")
    request_timeout_s: float = Field(300.0, gt=0, description="A request not answered by then gets a 504.")
    max_messages: int = Field(256, ge=1, description="Most messages in one request.")
    max_input_chars: int = Field(200_000, ge=1, description="Most characters of message content in one request.")
    max_tokens: int = Field(4096, ge=1, description="Largest max_tokens accepted (and the cap of the 256 default).")

    def violation(self, body: ChatRequest) -> tuple[str, str] | None:
        """(field, message) for the first limit ``body`` exceeds, or None."""
        chars = sum(len(m.content) for m in body.messages)
        asked = body.max_completion_tokens or body.max_tokens or 0
        if len(body.messages) > self.max_messages:
            return "messages", f"{len(body.messages)} messages; this server accepts at most {self.max_messages}"
        if chars > self.max_input_chars:
            return "messages", f"{chars} characters of content; this server accepts at most {self.max_input_chars}"
        if asked > self.max_tokens:
            field = "max_completion_tokens" if body.max_completion_tokens else "max_tokens"
            return field, f"{field}={asked}; this server generates at most {self.max_tokens} tokens per request"
        return None


@dataclass
class ServerStats:
    """What the server saw: request and fault counts, peak concurrency, the last decoding parameters (for tests)."""

    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    faults_served: int = 0
    last_params: GenerationParams | None = None


class ServerState:
    """The model, its batching scheduler, the limits, the remaining faults and the counters of one app."""

    def __init__(self, model: ChatModel, name: str, plan: FaultPlan, api_key: str | None,
                 limits: ServeLimits) -> None:
        self.model, self.name, self.api_key, self.limits = model, name, api_key, limits
        self.hang_s = plan.hang_s
        self.faults: deque[Fault] = deque(plan.faults)
        self.stats = ServerStats()
        self.metrics = ServeMetrics()
        self.scheduler = BatchScheduler(model, max_batch_size=limits.max_batch_size,
                                        batch_window_s=limits.batch_window_ms / 1000, max_queue=limits.max_queue,
                                        on_batch=self.metrics.record_batch)

    def set_faults(self, plan: FaultPlan) -> None:
        """Replace the pending faults (tests script each case this way)."""
        self.faults, self.hang_s = deque(plan.faults), plan.hang_s

    def next_fault(self) -> Fault:
        return self.faults.popleft() if self.faults else "ok"

    def snapshot(self) -> dict[str, Any]:
        """``GET /metrics``: live queue and request counts, then the counters of ``ServeMetrics``."""
        return {"model": self.name, "queue_length": self.scheduler.queue_length(),
                "running": self.scheduler.running(), "in_flight": self.stats.in_flight,
                "requests": self.stats.requests, "faults_served": self.stats.faults_served,
                "limits": self.limits.model_dump(), **self.metrics.snapshot()}


class Unauthorized(Exception):
    """A request without the server's API key."""


def error_response(status: int, message: str, kind: str = "invalid_request_error", code: str | None = None,
                   param: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    """An OpenAI-style error body, so that clients raise their usual typed exceptions."""
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}},
                        status_code=status, headers=headers)


def create_app(model: ChatModel, *, name: str | None = None, faults: FaultPlan | None = None,
               api_key: str | None = None, limits: ServeLimits | None = None) -> FastAPI:
    """The FastAPI app over ``model``; ``app.state.iteralign`` is its ``ServerState``. ``api_key`` makes the server
    demand ``Authorization: Bearer <api_key>`` (401 otherwise) everywhere but ``/health``."""
    state = ServerState(model, name or getattr(model, "name", "model"), faults or FaultPlan(), api_key,
                        limits or ServeLimits())

    def _check_key(request: Request) -> None:
        # A dependency, not an HTTP middleware: Starlette's BaseHTTPMiddleware hides client disconnects from handlers.
        if state.api_key is not None and request.url.path != "/health":
            given = request.headers.get("authorization", "")
            if not secrets.compare_digest(given.encode(), f"Bearer {state.api_key}".encode()):
                raise Unauthorized()

    app = FastAPI(title="iteralign OpenAI-compatible server", docs_url=None, redoc_url=None,
                  dependencies=[Depends(_check_key)])
    app.state.iteralign = state

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        fields = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        state.metrics.record_status(400)
        return error_response(400, f"invalid request: {fields}")

    @app.exception_handler(Unauthorized)
    async def _unauthorized(request: Request, exc: Unauthorized):
        state.metrics.record_status(401)
        return error_response(401, "invalid or missing API key", code="invalid_api_key")

    @app.get("/v1/models")
    async def _models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": state.name, "object": "model", "created": 0,
                                            "owned_by": "iteralign"}]}

    @app.get("/health")
    async def _health() -> dict[str, Any]:
        return {"status": "ok", "model": state.name, "queue_length": state.scheduler.queue_length(),
                "max_queue": state.limits.max_queue}

    @app.get("/metrics")
    async def _metrics() -> dict[str, Any]:
        return state.snapshot()

    @app.post("/v1/chat/completions")
    async def _chat(body: ChatRequest, request: Request):
        state.stats.requests += 1
        state.stats.in_flight += 1
        state.stats.max_in_flight = max(state.stats.max_in_flight, state.stats.in_flight)
        try:
            response = await _answer(state, body, request)
        finally:
            state.stats.in_flight -= 1
        if not isinstance(response, StreamingResponse):  # a stream reports its status when it ends
            state.metrics.record_status(response.status_code)
        return response

    return app


async def _answer(state: ServerState, body: ChatRequest, request: Request) -> Response:
    """Serve one chat request: refuse what this server cannot do, else the next fault if any, else the model."""
    if body.n != 1:
        return error_response(400, f"n={body.n} is not supported: this server returns one choice (n=1)", code="n")
    if body.stream and not can_stream(state.model):
        return error_response(400, f"stream=true is not supported by this server's backend ({state.name}); "
                              "send stream=false", code="stream", param="stream")
    if violation := state.limits.violation(body):
        return error_response(400, f"request too large: {violation[1]}", param=violation[0])
    fault = state.next_fault()
    if fault != "ok":
        state.stats.faults_served += 1
        log.info("fault injected: %s", fault)
        return await _fault(state, fault, request)
    state.stats.last_params = body.params(min(256, state.limits.max_tokens))
    try:
        if body.stream:
            return _stream(state, body, state.stats.last_params)
        return await _generate(state, body, state.stats.last_params, request)
    except QueueFull as full:
        return error_response(503, f"{full}; the queue holds at most {state.limits.max_queue} requests",
                              kind="server_error", code="server_busy", headers={"Retry-After": str(full.retry_after_s)})


async def _fault(state: ServerState, fault: Fault, request: Request) -> Response:
    """Serve an injected fault (see the module docstring)."""
    if isinstance(fault, int):
        return error_response(fault, f"injected fault: HTTP {fault}", kind="server_error" if fault >= 500 else
                              "invalid_request_error")
    if fault == "timeout":
        deadline = time.monotonic() + state.hang_s
        while time.monotonic() < deadline and not await request.is_disconnected():
            await asyncio.sleep(0.02)
        return error_response(504, "injected fault: request held past the client's timeout")
    return Response('{"id": "chatcmpl-broken", "choices": [{"index": 0, "mess', media_type="application/json")


def _conversation(body: ChatRequest) -> Conversation:
    return [{"role": m.role, "content": m.content} for m in body.messages]


def _header(state: ServerState) -> dict[str, Any]:
    return {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": state.name}


async def _generate(state: ServerState, body: ChatRequest, params: GenerationParams, request: Request) -> Response:
    """Queue the request for a batch and wait for its completion, the timeout or the client's departure."""
    waiter = asyncio.wrap_future(state.scheduler.submit(_conversation(body), params))
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        done, _ = await asyncio.wait({waiter, gone}, timeout=state.limits.request_timeout_s,
                                     return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not waiter.done():
            waiter.cancel()  # still waiting: it leaves the queue; already in a batch: its answer is dropped
    if gone in done and waiter not in done:
        return error_response(499, "client closed the request")  # nobody reads it; counted in the metrics
    if waiter not in done:
        return error_response(504, f"request not answered within {state.limits.request_timeout_s:g} s",
                              kind="server_error", code="timeout")
    if (exc := waiter.exception()) is not None:
        return error_response(500, f"model error: {type(exc).__name__}: {str(exc)[:200]}", kind="server_error")
    answer = waiter.result()
    return JSONResponse({
        **_header(state), "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.text},
                     "finish_reason": answer.finish_reason}],
        "usage": {"prompt_tokens": answer.prompt_tokens, "completion_tokens": answer.completion_tokens,
                  "total_tokens": answer.prompt_tokens + answer.completion_tokens},
    })


async def _disconnected(request: Request) -> None:
    """Return when the client disconnects (the body is already read, so the next ASGI message is the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _stream(state: ServerState, body: ChatRequest, params: GenerationParams) -> StreamingResponse:
    """Queue a streaming request (``QueueFull`` is raised here, before any byte is sent) and stream its events."""
    include_usage = bool((body.stream_options or {}).get("include_usage"))
    events = start_stream(state.scheduler, _conversation(body), params, header=_header(state),
                          include_usage=include_usage, timeout_s=state.limits.request_timeout_s,
                          on_done=state.metrics.record_status)
    return StreamingResponse(events, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@contextlib.contextmanager
def running_server(app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` from a background thread; yields the base URL (``http://host:port/v1``). Port 0 = a free port,
    bound before the server starts, so there is no race for it. Stops the server, then its batching worker, on exit
    (the same app may be served again: the worker restarts with the next request)."""
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
        if isinstance(state := getattr(app.state, "iteralign", None), ServerState):
            state.scheduler.close()


def serve(spec: str, host: str = "127.0.0.1", port: int = 8000, fault_plan: str | Path | None = None,
          api_key_env: str | None = None, name: str | None = None, limits: ServeLimits | None = None,
          dtype: str = "auto") -> None:
    """Load ``spec`` and serve it until interrupted (the ``iteralign serve`` command). A local backend's own batch
    size is set to ``limits.max_batch_size``, so that one batch of the server is one forward batch of the model."""
    import uvicorn

    from iteralign.envvar import check_env_var_name
    from iteralign.models.base import ModelConfig, load_model

    api_key = None
    if api_key_env:
        check_env_var_name(api_key_env, "--api-key-env")  # a key pasted here is refused, and never echoed
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise ValueError(f"--api-key-env names {api_key_env}, but that environment variable is not set")
    elif host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("serving on %s without an API key: anyone who can reach this port can use the model", host)
    plan = FaultPlan.load(fault_plan) if fault_plan else FaultPlan()
    limits = limits or ServeLimits()
    model = load_model(ModelConfig(spec=spec, dtype=dtype, batch_size=limits.max_batch_size))
    app = create_app(model, name=name or spec, faults=plan, api_key=api_key, limits=limits)
    print(json.dumps({"serving": name or spec, "base_url": f"http://{host}:{port}/v1"}), flush=True)
    try:
        uvicorn.run(app, host=host, port=port, log_level="info")
    finally:
        app.state.iteralign.scheduler.close()
