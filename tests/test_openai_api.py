"""The `openai:` backend driven against a real `iteralign serve` on loopback: round trips, retries, errors, secrets."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import traceback
import uuid

import pytest

from iteralign.models.base import ChatModel, ModelConfig, load_model
from iteralign.models.openai_api import ModelCallError, OpenAIModel, is_loopback
from iteralign.serve import FaultPlan, create_app, running_server
from iteralign.types import Completion, GenerationParams, user

GREEDY = GenerationParams(max_new_tokens=64)


def make_model(url: str | None, key_env: str = "ITERALIGN_TEST_KEY_UNSET", **cfg) -> OpenAIModel:
    """A client with test-sized timeouts and a 10 ms backoff base."""
    config = ModelConfig(spec="openai:test", api_key_env=key_env, **{"timeout_s": 0.5, "max_retries": 4, **cfg})
    return OpenAIModel("test-model", url, config, backoff_base_s=0.01, backoff_max_s=0.05)


def test_round_trip_records_usage_and_finish_reason(scripted_server):
    model = make_model(scripted_server.url)
    out = model.generate([user("hello there"), user("how to make a bomb", system="be safe")], GREEDY)
    assert [c.text for c in out] == ["Sure, here is a short answer about hello there", "I can't help with that."]
    # the scripted backend counts words; the server reports them as usage and the client records them per call
    assert [(c.prompt_tokens, c.completion_tokens) for c in out] == [(2, 9), (7, 5)]
    assert model.usage.calls == 2 and model.usage.prompt_tokens == 9 and model.usage.completion_tokens == 14
    assert model.retries == 0
    short = model.generate([user("hello")], GenerationParams(max_new_tokens=3))[0]
    assert (short.text, short.finish_reason) == ("Sure, here is", "length")


def test_decoding_parameters_reach_the_server(scripted_server):
    params = GenerationParams(max_new_tokens=50, temperature=0.7, top_p=0.9, seed=7, stop=("\n\n",),
                              frequency_penalty=0.5)
    make_model(scripted_server.url).generate([user("hi")], params)
    assert scripted_server.state.stats.last_params == params


def test_more_than_four_stop_strings_are_applied_client_side(scripted_server):
    params = GenerationParams(stop=("zz1", "zz2", "zz3", "zz4", "here"))
    out = make_model(scripted_server.url).generate([user("hi")], params)[0]
    assert scripted_server.state.stats.last_params.stop == ("zz1", "zz2", "zz3", "zz4")  # the API maximum
    assert out.text == "Sure, "


@pytest.mark.parametrize("faults", [[429], [500, 502, 503], ["timeout"], ["malformed"], [429, "timeout", "malformed"]])
def test_transient_faults_are_retried_then_succeed(scripted_server, faults):
    scripted_server.state.set_faults(FaultPlan(faults=faults))
    model = make_model(scripted_server.url, timeout_s=0.3)
    out = model.generate([user("hello")], GREEDY)[0]
    assert out.text == "Sure, here is a short answer about hello"
    assert model.retries == len(faults)
    assert scripted_server.state.stats.faults_served == len(faults)
    assert scripted_server.state.stats.requests == len(faults) + 1  # no hidden retries inside the openai client


def test_clear_error_after_the_retry_limit(scripted_server):
    scripted_server.state.set_faults(FaultPlan(faults=[500] * 10))
    model = make_model(scripted_server.url, max_retries=2)
    with pytest.raises(ModelCallError) as err:
        model.generate([user("hello")], GREEDY)
    message = str(err.value)
    assert "test-model" in message and scripted_server.url in message
    assert "3 attempt(s)" in message and "HTTP 500" in message
    assert scripted_server.state.stats.requests == 3 and model.retries == 2
    assert model.usage.extra["failures"] == 1


def test_connection_refused_is_retried_then_reported():
    with running_server(create_app(_SlowModel(0))) as dead_url:
        pass  # the server is stopped: its port now refuses connections
    model = make_model(dead_url, max_retries=2)
    with pytest.raises(ModelCallError, match=r"3 attempt\(s\).*connection error"):
        model.generate([user("hello")], GREEDY)
    assert model.retries == 2


def test_401_is_not_retried(scripted_server, monkeypatch):
    scripted_server.state.api_key = "the-right-key"
    monkeypatch.setenv("ITERALIGN_TEST_KEY", "a-wrong-key")
    model = make_model(scripted_server.url, key_env="ITERALIGN_TEST_KEY")
    with pytest.raises(ModelCallError, match="not retried.*HTTP 401"):
        model.generate([user("hello")], GREEDY)
    assert model.retries == 0
    monkeypatch.setenv("ITERALIGN_TEST_KEY", "the-right-key")  # the key is read at call time
    assert model.generate([user("hello")], GREEDY)[0].text.startswith("Sure")


def test_missing_key_names_the_variable_for_remote_urls(monkeypatch):
    monkeypatch.delenv("ITERALIGN_TEST_KEY", raising=False)
    model = make_model("https://api.example.invalid/v1", key_env="ITERALIGN_TEST_KEY")
    with pytest.raises(ModelCallError, match="ITERALIGN_TEST_KEY is not set"):
        model.generate([user("hello")], GREEDY)
    assert is_loopback("http://127.0.0.1:8000/v1") and is_loopback("http://localhost/v1")
    assert not is_loopback("https://api.openai.com/v1") and not is_loopback(None)


def test_loopback_servers_get_a_dummy_key(scripted_server, monkeypatch):
    monkeypatch.delenv("ITERALIGN_TEST_KEY", raising=False)
    out = make_model(scripted_server.url, key_env="ITERALIGN_TEST_KEY").generate([user("hi")], GREEDY)
    assert out[0].text.endswith("about hi")


def test_generate_works_inside_a_running_event_loop(scripted_server):
    model = make_model(scripted_server.url)

    async def caller() -> list[Completion]:
        return model.generate([user("from a loop")], GREEDY)

    assert asyncio.run(caller())[0].text.endswith("about from a loop")


class _SlowModel(ChatModel):
    """Takes ``delay`` seconds per call, so concurrent requests overlap at the server."""

    name = "slow"

    def __init__(self, delay: float) -> None:
        self.delay = delay

    def generate(self, conversations, params):
        time.sleep(self.delay)
        return [Completion("ok", "stop", 1, 1) for _ in conversations]


@pytest.mark.parametrize("bound", [1, 2, 8])
def test_concurrency_bound_is_respected(bound):
    app = create_app(_SlowModel(0.05))
    with running_server(app) as url:
        model = make_model(url, max_concurrency=bound, timeout_s=5)
        assert [c.text for c in model.generate([user(str(i)) for i in range(8)], GREEDY)] == ["ok"] * 8
    peak = app.state.iteralign.stats.max_in_flight
    # never more than `bound` in flight, and the bound is reached (so a looser or absent bound would be seen)
    if bound < 8:
        assert peak == bound
    else:
        assert peak > 2


def test_load_model_builds_the_backend_from_a_spec(scripted_server, monkeypatch):
    monkeypatch.setenv("ITERALIGN_TEST_KEY", "sk-never-shown")
    model = load_model(ModelConfig(spec=f"openai:my-model@{scripted_server.url}", api_key_env="ITERALIGN_TEST_KEY"))
    assert isinstance(model, OpenAIModel)
    assert model.identity() == {"backend": "openai", "model": "my-model", "base_url": scripted_server.url}
    assert model.generate([user("hi")], GREEDY)[0].text.endswith("about hi")


def test_the_key_never_leaks(scripted_server, tmp_path, monkeypatch, caplog, capfd):
    from iteralign.models.cache import CallCache
    from iteralign.models.handle import ModelHandle

    secret = f"sk-iteralign-test-{uuid.uuid4().hex}"
    monkeypatch.setenv("ITERALIGN_SECRET_KEY", secret)
    scripted_server.state.api_key = secret
    for name in (None, "openai", "httpx", "httpx2", "httpcore", "httpcore2", "iteralign"):
        caplog.set_level(logging.DEBUG, logger=name)
    model = make_model(scripted_server.url, key_env="ITERALIGN_SECRET_KEY", max_retries=2, timeout_s=0.3)
    cache = CallCache(tmp_path / "cache.sqlite")
    wrapped = ModelHandle.around(model, model.cfg, cache)
    wrapped.generate([user("hello"), user("bomb")], GREEDY)
    errors = []
    for faults, server_key in (([500] * 5, secret), (["timeout", "malformed", 429], secret), ([], "another-key")):
        scripted_server.state.set_faults(FaultPlan(faults=faults))
        scripted_server.state.api_key = server_key
        with pytest.raises(ModelCallError) as err:
            wrapped.generate([user(f"fails {len(errors)}")], GREEDY)
        errors.append(err.value)
    assert len(cache) == 2 and model.retries == 2 + 2  # the failures really happened (500s, then the mixed burst)
    assert any(r.name.startswith(("openai", "httpx", "httpcore")) for r in caplog.records)  # debug logs were on
    texts = [caplog.text, repr(model), repr(wrapped), json.dumps(model.identity()), *capfd.readouterr()]
    for exc in errors:
        assert exc.__cause__ is None and exc.__context__ is None  # the client's exception (with headers) is gone
        texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    assert all(secret not in t for t in texts)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name.startswith("cache.sqlite") for p in files)
    assert all(secret.encode() not in p.read_bytes() for p in files)
    assert threading.active_count() < 50  # no worker threads left behind by run_sync


def test_a_server_without_logprobs_is_asked_once_then_label_questions_fall_back(scripted_server):
    """The served scripted model returns no logprobs: the first label question costs one request (the first
    conversation alone), later ones none; callers (``label_scores.label_probs``) then parse a FINAL line."""
    model = make_model(scripted_server.url)
    convs = [user("hello there"), user("hello again"), user("how to make a bomb")]
    with pytest.raises(NotImplementedError, match="no logprobs"):
        model.label_logprobs(convs, ["yes", "no"])
    assert model.usage.calls == 1
    with pytest.raises(NotImplementedError, match="no logprobs"):
        model.label_logprobs(convs, ["yes", "no"])
    assert model.usage.calls == 1 and model.label_logprobs([], ["yes"]) == []


def test_a_server_with_logprobs_answers_every_label_question_in_order(monkeypatch):
    """The first question alone (it tells whether logprobs come back), the rest together; rows stay in order."""
    model, sent = make_model("http://127.0.0.1:9/v1"), []

    async def fake_generate_all(convs, params, key, logprobs=False):
        sent.append(len(convs))
        return [[("yes" if "yes" in c[-1]["content"] else "no", -0.1)] for c in convs]

    monkeypatch.setattr(model, "_generate_all", fake_generate_all)
    convs = [user("say yes"), user("say no"), user("yes again")]
    rows = model.label_logprobs(convs, ["yes", "no"])
    assert [max(r, key=r.get) for r in rows] == ["yes", "no", "yes"] and sent == [1, 2]
    model.label_logprobs(convs, ["yes", "no"])
    assert sent == [1, 2, 3]  # known to give logprobs: one batch
