"""API faults end to end: the loop with an ``openai:`` oracle served over HTTP by ``iteralign.serve``.

The oracle is the scripted oracle of the other loop tests behind a real OpenAI-compatible server, so an API run must
produce exactly what the all-scripted reference run produces. Rate limits, 5xx bursts, timeouts and malformed
replies are retried and the run completes with no extra model call; a server that dies mid-run stops the CLI with
one line naming the stage and the endpoint (exit 2, no traceback); after a restart the same command resumes and
finishes without redoing finished work.
"""

from __future__ import annotations

import json
import random
import socket
import subprocess
import time
import uuid

import pytest

from rel_helpers import CALLS_PER_KILL, assert_same_run, calls, child_env, cli, config, lines

from iteralign.config import load_config
from iteralign.loop import run_loop
from iteralign.models.scripted import ScriptedModel
from iteralign.serve import FaultPlan, create_app, running_server

#: Never more than four faults in a row; requests in flight together share them, so the test allows one request as
#: many retries as there are faults (it must get through whatever its share).
FAULTS = [429, 429, 500, 502, "ok", 503, "malformed", "timeout", "ok", 500, 429, 504]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def oracle(port: int, **settings) -> dict:
    """The oracle's model config: the served scripted oracle, test-sized timeouts and a 10 ms backoff."""
    return {"spec": f"openai:scripted@http://127.0.0.1:{port}/v1", "batch_size": 4, "timeout_s": 0.5,
            "backoff_base_s": 0.01, "max_retries": 4, **settings}


def served_oracle(tmp, **kw):
    """The app serving the rules file ``loop_helpers.scripted_config`` wrote (it logs each answer to calls-oracle.log)."""
    return create_app(ScriptedModel.from_file(tmp / "oracle.yaml"), name="scripted", **kw)


@pytest.mark.heavy(10)
def test_rate_limits_5xx_timeouts_and_malformed_replies_are_retried(tmp_path, clean_run):
    port = free_port()
    cfg = config(tmp_path, extra={"models.oracle": oracle(port, max_retries=len(FAULTS))})
    app = served_oracle(tmp_path, faults=FaultPlan(faults=FAULTS, hang_s=5))
    with running_server(app, port=port):
        run = run_loop(load_config(cfg))
    assert app.state.iteralign.stats.faults_served == len(FAULTS) - FAULTS.count("ok")
    assert_same_run(run, clean_run.path)
    # faults never reach the model, and a retried request is answered once: the same calls as the scripted run, and
    # one more, the request that learns the server gives no logprobs (the look-alikes' intent question then asks
    # for a FINAL line, as the scripted oracle, which has no label rules, is asked without any request)
    assert lines(tmp_path / "calls-oracle.log") == clean_run.oracle_calls + 1


@pytest.mark.heavy(20)
def test_dead_server_stops_the_run_with_one_line_then_the_rerun_resumes(tmp_path, clean_run, monkeypatch):
    port, secret = free_port(), f"sk-iteralign-{uuid.uuid4().hex}"
    monkeypatch.setenv("ITERALIGN_REL_KEY", secret)
    cfg = config(tmp_path, latency=0.02, extra={"models.oracle": oracle(port, max_retries=2,
                                                                        api_key_env="ITERALIGN_REL_KEY")})
    stop_after = random.Random(5).randint(5, clean_run.oracle_calls - 10)
    proc = subprocess.Popen(cli(cfg), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env())
    with running_server(served_oracle(tmp_path, api_key=secret), port=port):
        deadline = time.time() + 90
        while lines(tmp_path / "calls-oracle.log") < stop_after and proc.poll() is None and time.time() < deadline:
            time.sleep(0.01)
    out, err = proc.communicate(timeout=120)  # the server is gone: the run must stop by itself
    stderr = err.decode()
    assert proc.returncode == 2, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr[-3000:]
    assert f"http://127.0.0.1:{port}/v1" in errors[0] and "connection error" in errors[0]
    assert "in stage " in errors[0] and "rerun to resume" in errors[0]
    run = tmp_path / "runs" / "r"
    failed = {k: v for k, v in json.loads((run / "manifest.json").read_text())["stages"].items()
              if v["status"] == "failed"}
    assert len(failed) == 1 and f"in stage {next(iter(failed))} " in errors[0]

    with running_server(served_oracle(tmp_path, api_key=secret), port=port):
        resumed = run_loop(load_config(cfg))
    assert_same_run(resumed, clean_run.path)
    assert clean_run.calls <= calls(tmp_path) <= clean_run.calls + CALLS_PER_KILL
    leaked = [p for p in [*resumed.rglob("*"), *tmp_path.glob("*.log")] if p.is_file() and secret.encode() in p.read_bytes()]
    assert not leaked and secret not in stderr + out.decode()
