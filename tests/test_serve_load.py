"""`iteralign serve` under load, over real HTTP on loopback with fake models: batching, the queue bound (503 +
Retry-After), size limits, timeouts, disconnects, streaming, /health and /metrics, and an overload test in which
200 requests against a queue of 32, retried by the `openai:` backend, are each answered exactly once."""

from __future__ import annotations

import threading
import time
from collections import Counter

import httpx
import pytest
from serve_fakes import EchoModel, StreamingEchoModel

from iteralign.models.base import ModelConfig
from iteralign.models.openai_api import OpenAIModel
from iteralign.serve import ServeLimits, create_app, running_server
from iteralign.types import GenerationParams, user

GREEDY = GenerationParams(max_new_tokens=8)


def post(url: str, content: str = "hello", timeout: float = 10, **fields) -> httpx.Response:
    body = {"model": "any", "messages": [{"role": "user", "content": content}], **fields}
    return httpx.post(f"{url}/chat/completions", json=body, timeout=timeout)


def in_background(url: str, content: str, results: dict, **kw) -> threading.Thread:
    """POST in a thread; the response (or the exception) lands in ``results[content]``."""

    def run() -> None:
        try:
            results[content] = post(url, content, **kw)
        except httpx.HTTPError as exc:
            results[content] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def until(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def client(url: str, **cfg) -> OpenAIModel:
    settings = {"timeout_s": 30, "max_retries": 0, **cfg}
    return OpenAIModel("m", url, ModelConfig(spec="openai:m", **settings), backoff_base_s=0.02, backoff_max_s=0.5)


def test_concurrent_requests_share_model_calls():
    model = EchoModel(delay_s=0.05)
    app = create_app(model, limits=ServeLimits(batch_window_ms=200, max_batch_size=8))
    with running_server(app) as url:
        answers = client(url, max_concurrency=8).generate([user(f"q{i}") for i in range(8)], GREEDY)
        metrics = httpx.get(f"{url[:-3]}/metrics", timeout=5).json()
    assert [a.text for a in answers] == [f"echo: q{i}" for i in range(8)]
    assert sorted(model.answered()) == sorted(f"q{i}" for i in range(8)) and len(model.calls) < 8
    assert metrics["responses"] == {"200": 8} and metrics["completion_tokens"] == 16
    assert sum(int(size) * n for size, n in metrics["batch_sizes"].items()) == 8 and metrics["mean_batch_size"] > 1


def test_a_full_queue_answers_503_with_retry_after():
    gate = threading.Event()
    model = EchoModel(gate=gate)
    app = create_app(model, limits=ServeLimits(max_queue=2, max_batch_size=1, batch_window_ms=0))
    state, results = app.state.iteralign, {}
    with running_server(app) as url:
        threads = [in_background(url, "first", results)]
        until(model.started.is_set)
        threads += [in_background(url, f"q{i}", results) for i in range(2)]
        until(lambda: state.scheduler.queue_length() == 2)
        refused = post(url, "refused")
        gate.set()
        [t.join(10) for t in threads]
    assert refused.status_code == 503 and int(refused.headers["retry-after"]) >= 1
    assert refused.json()["error"]["code"] == "server_busy" and "at most 2" in refused.json()["error"]["message"]
    assert {k: r.status_code for k, r in results.items()} == {"first": 200, "q0": 200, "q1": 200}
    assert "refused" not in model.answered()


@pytest.mark.parametrize(("fields", "param", "needle"), [
    ({"messages": [{"role": "user", "content": "x"}] * 5}, "messages", "5 messages"),
    ({"messages": [{"role": "user", "content": "x" * 101}]}, "messages", "101 characters"),
    ({"max_tokens": 17}, "max_tokens", "max_tokens=17"),
    ({"max_completion_tokens": 17}, "max_completion_tokens", "max_completion_tokens=17"),
])
def test_requests_over_the_limits_get_a_400(fields, param, needle):
    model = EchoModel()
    app = create_app(model, limits=ServeLimits(max_messages=4, max_input_chars=100, max_tokens=16))
    with running_server(app) as url:
        response = post(url, **fields)
        assert post(url, max_tokens=16).status_code == 200  # at the limit is fine
    error = response.json()["error"]
    assert response.status_code == 400 and error["type"] == "invalid_request_error" and error["param"] == param
    assert needle in error["message"] and model.answered() == ["hello"]


def test_the_default_max_tokens_respects_the_limit():
    app = create_app(EchoModel(), limits=ServeLimits(max_tokens=16))
    with running_server(app) as url:
        assert post(url).status_code == 200
    assert app.state.iteralign.stats.last_params.max_new_tokens == 16


def test_a_request_past_the_timeout_gets_a_504_and_leaves_the_queue():
    gate = threading.Event()
    model = EchoModel(gate=gate)
    app = create_app(model, limits=ServeLimits(request_timeout_s=0.5, batch_window_ms=0))
    results = {}
    with running_server(app) as url:
        first = in_background(url, "first", results)
        until(model.started.is_set)
        late = post(url, "late")
        gate.set()
        first.join(10)
        metrics = httpx.get(f"{url[:-3]}/metrics", timeout=5).json()
    assert late.status_code == 504 and late.json()["error"]["code"] == "timeout"
    assert results["first"].status_code == 504  # its batch ran past the timeout too: answered, then dropped
    assert model.answered() == ["first"]  # "late" timed out while waiting: it never reached the model
    assert metrics["responses"] == {"504": 2}


def test_a_client_that_leaves_takes_its_request_out_of_the_queue():
    gate = threading.Event()
    model = EchoModel(gate=gate)
    app = create_app(model, limits=ServeLimits(batch_window_ms=0))
    state, results = app.state.iteralign, {}
    with running_server(app) as url:
        first = in_background(url, "first", results)
        until(model.started.is_set)
        with pytest.raises(httpx.ReadTimeout):
            post(url, "impatient", timeout=0.3)
        until(lambda: state.scheduler.queue_length() == 0)
        gate.set()
        first.join(10)
        metrics = httpx.get(f"{url[:-3]}/metrics", timeout=5).json()
    assert results["first"].status_code == 200 and model.answered() == ["first"]
    assert metrics["responses"] == {"200": 1, "499": 1}


def test_a_model_error_is_a_500_and_counted():
    app = create_app(EchoModel(fail=True))
    with running_server(app) as url:
        response = post(url)
        metrics = httpx.get(f"{url[:-3]}/metrics", timeout=5).json()
    assert response.status_code == 500 and "the model broke" in response.json()["error"]["message"]
    assert metrics["model_errors"] == 1 and metrics["errors"] == 1


def test_health_needs_no_key_but_metrics_does():
    app = create_app(EchoModel(), api_key="k", limits=ServeLimits(max_queue=7))
    with running_server(app) as url:
        root = url[:-3]
        health = httpx.get(f"{root}/health", timeout=5)
        denied = httpx.get(f"{root}/metrics", timeout=5)
        metrics = httpx.get(f"{root}/metrics", headers={"Authorization": "Bearer k"}, timeout=5).json()
    assert health.json() == {"status": "ok", "model": "echo", "queue_length": 0, "max_queue": 7}
    assert denied.status_code == 401
    assert metrics["limits"]["max_queue"] == 7 and metrics["queue_length"] == 0 and metrics["responses"] == {"401": 1}


def test_streaming_follows_the_openai_chunk_format():
    import openai

    app = create_app(StreamingEchoModel(piece=2), name="streamer")
    with running_server(app) as url:
        api = openai.OpenAI(base_url=url, api_key="EMPTY", max_retries=0)
        chunks = list(api.chat.completions.create(
            model="streamer", messages=[{"role": "user", "content": "one two|three"}], stream=True, stop=["|"],
            stream_options={"include_usage": True}))
        whole = api.chat.completions.create(model="streamer", stop=["|"],
                                            messages=[{"role": "user", "content": "one two|three"}])
        metrics = httpx.get(f"{url[:-3]}/metrics", timeout=5).json()
    deltas = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert "".join(deltas) == whole.choices[0].message.content == "echo: one two" and len(deltas) > 3
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 2
    assert metrics["responses"] == {"200": 2}


def test_overload_every_request_is_answered_exactly_once():
    """200 requests, 64 at a time, against a queue of 32: the overflow gets 503s, the `openai:` backend retries them,
    and in the end every request has its own answer and reached the model exactly once."""
    model = EchoModel(delay_s=0.1)
    app = create_app(model, limits=ServeLimits(max_queue=32, max_batch_size=8, batch_window_ms=2))
    prompts = [f"request {i}" for i in range(200)]
    with running_server(app) as url:
        api = client(url, max_concurrency=64, max_retries=100)
        answers = api.generate([user(p) for p in prompts], GREEDY)
        metrics = httpx.get(f"{url[:-3]}/metrics", timeout=5).json()
    assert [a.text for a in answers] == [f"echo: {p}" for p in prompts]
    assert Counter(model.answered()) == Counter(prompts)  # each exactly once: no loss, no duplicate
    assert metrics["responses"]["200"] == 200 and metrics["responses"]["503"] == api.retries > 0
    assert max(int(size) for size in metrics["batch_sizes"]) <= 8
