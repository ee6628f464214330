"""Open registries: a separate package (tests/plugin, installed into the test venv by `make test`) adds a backend,
a judge and a benchmark through entry points, and a run uses all three without iteralign knowing them."""

from __future__ import annotations

import json
from importlib.metadata import entry_points

import pytest

from iteralign.config import ConfigError, load_config
from iteralign.evals.names import expand
from iteralign.loop import run_loop
from iteralign.run import read_jsonl
from loop_helpers import scripted_config


def test_the_plugin_package_is_installed():
    found = {group: [e.name for e in entry_points(group=f"iteralign.{group}")]
             for group in ("backends", "judges", "benchmarks")}
    assert found == {"backends": ["echo"], "judges": ["keyword"], "benchmarks": ["reply_length"]}, (
        "the test plugin is not installed: run `make test`, or pip install --no-deps -e tests/plugin")


def test_a_run_uses_a_plugin_backend_judge_and_benchmark(tmp_path):
    extra = {"models.target": {"spec": "echo:parrot", "batch_size": 4},
             "judge.judges": [{"kind": "keyword", "words": ["bomb", "gun"]}],
             "eval.benchmarks": ["reply_length"], "stop.max_iterations": 1}
    run = run_loop(load_config(scripted_config(tmp_path, extra=extra)))
    judged = read_jsonl(run / "iter-000" / "verdicts.jsonl")
    assert judged and all(r["response"].startswith("parrot: ") for r in judged)  # the plugin backend answered
    flagged = [r for r in judged if r["verdict"]["label"] == "unaligned"]
    assert flagged and all(r["verdict"]["judges"][0]["judge"] == "keyword" for r in judged)
    assert all(any(w in r["response"].lower() for w in ("bomb", "gun")) for r in flagged)
    score = json.loads((run / "baseline" / "eval.json").read_text())["benchmarks"]["reply_length"]
    assert score["n"] == 3 and score["score"] > 2  # "parrot: Say hello." is 3 words
    assert "reply_length" in expand(["all"]) and "reply_length" in expand(["generation"])


def test_a_plugin_judges_options_are_validated(tmp_path):
    with pytest.raises(ConfigError, match="words"):
        load_config(scripted_config(tmp_path, extra={"judge.judges": [{"kind": "keyword"}]}))
    with pytest.raises(ConfigError, match="unknown judge 'nope'.*keyword"):
        load_config(scripted_config(tmp_path, extra={"judge.judges": [{"kind": "nope"}]}))
