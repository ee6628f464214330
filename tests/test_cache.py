"""The model handle and its SQLite call cache: loaded on first use, repeated calls cost zero model calls, the key
covers model identity (computed without loading), messages and params; scoring passes through."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pytest
import yaml

from iteralign.config import load_config
from iteralign.evals.multiple_choice import MCItem, loglikelihoods
from iteralign.loop import run_loop
from iteralign.models import base
from iteralign.models.base import ChatModel, ModelConfig
from iteralign.models.cache import CallCache, call_key
from iteralign.models.handle import ModelHandle
from iteralign.models.scripted import ScriptedModel
from iteralign.types import Completion, GenerationParams, LoglikelihoodRequest, user
from loop_helpers import REPO, calls, scripted_config


def rules(tmp: Path, default: str = "Sure.", name: str = "rules.yaml") -> str:
    path = tmp / name
    path.write_text(yaml.safe_dump({"default": default}))
    return f"scripted:{path}"


@pytest.fixture
def loads(monkeypatch) -> list[str]:
    """Every spec a handle actually loads, in order."""
    seen: list[str] = []
    real = base.BACKENDS.get("scripted").load

    def counting(self, spec, cfg):
        seen.append(cfg.spec)
        return real(self, spec, cfg)

    monkeypatch.setattr(base.BACKENDS.get("scripted"), "load", counting)
    return seen


def test_handle_loads_at_first_call_only_and_knows_its_identity_before(tmp_path, loads):
    handle = ModelHandle(rules(tmp_path))
    ident = handle.identity()
    assert not handle.loaded and loads == []
    handle.generate([user("hello")], GenerationParams(max_new_tokens=8))
    handle.generate([user("again")], GenerationParams(max_new_tokens=8))
    assert handle.loaded and len(loads) == 1 and handle.model.identity() == ident


def test_resumed_finished_run_loads_no_model(tmp_path, loads):
    path = scripted_config(tmp_path)
    run_loop(load_config(path))
    first_loads, first_calls = len(loads), calls(tmp_path)
    assert first_loads > 0 and first_calls > 0
    run_loop(load_config(path))
    assert len(loads) == first_loads, f"resume loaded {loads[first_loads:]}"
    assert calls(tmp_path) == first_calls


def test_repeat_call_is_served_from_cache(tmp_path):
    model = ModelHandle(rules(tmp_path), CallCache(tmp_path / "c.sqlite"))
    convs = [user("a"), user("b")]
    first = model.generate(convs, GenerationParams())
    assert model.model.calls == 2 and model.usage.calls == 2 and model.usage.cache_hits == 0
    second = model.generate(convs, GenerationParams())
    assert model.model.calls == 2, "a repeated identical call must not reach the model"
    assert model.usage.cache_hits == 2 and [c.text for c in second] == [c.text for c in first]
    assert all(c.cached for c in second)


def test_only_misses_reach_the_model_and_order_is_kept(tmp_path):
    model = ModelHandle(rules(tmp_path, "echo {prompt}"), CallCache(tmp_path / "c.sqlite"))
    model.generate([user("b")], GenerationParams())
    out = model.generate([user("a"), user("b"), user("c")], GenerationParams())
    assert [c.text for c in out] == ["echo a", "echo b", "echo c"]
    assert model.model.calls == 3  # b once, then a and c


def test_key_changes_with_params_model_and_messages():
    ident = {"backend": "x", "name": "m"}
    key = call_key(ident, user("hi"), GenerationParams())
    assert call_key(ident, user("hi"), GenerationParams(max_new_tokens=7)) != key
    assert call_key(ident, user("hi!"), GenerationParams()) != key
    assert call_key({**ident, "adapter": "abc"}, user("hi"), GenerationParams()) != key
    assert call_key(dict(ident), user("hi"), GenerationParams()) == key


def test_different_model_identity_is_a_miss(tmp_path):
    cache = CallCache(tmp_path / "c.sqlite")
    ModelHandle(rules(tmp_path, "one", "a.yaml"), cache).generate([user("q")], GenerationParams())
    other = ModelHandle(rules(tmp_path, "two", "b.yaml"), cache)
    out = other.generate([user("q")], GenerationParams())
    assert out[0].text == "two" and other.model.calls == 1


def test_no_cache_still_counts_and_a_budget_guard_runs_before_model_calls(tmp_path):
    guarded = []
    model = ModelHandle(rules(tmp_path), None, guard=lambda: guarded.append(1))
    model.generate([user("a")], GenerationParams())
    model.generate([user("a")], GenerationParams())
    assert model.model.calls == 2 and model.usage.calls == 2 and model.usage.cache_hits == 0 and len(guarded) == 2
    cached = ModelHandle(ModelConfig(spec=rules(tmp_path)), CallCache(tmp_path / "c.sqlite"), lambda: guarded.append(1))
    cached.generate([user("z")], GenerationParams())
    cached.generate([user("z")], GenerationParams())
    assert len(guarded) == 3  # the cache hit is free: no budget check


def test_scoring_passes_through_and_a_non_scorer_says_so(tmp_path):
    oracle = f"scripted:{REPO / 'configs/scripted/oracle.yaml'}"
    item = MCItem("Q: what is up?", (" the sky", " nothing at all here"), (1, 0))
    direct = loglikelihoods(ScriptedModel.from_file(REPO / "configs/scripted/oracle.yaml"), [item], progress=False)
    assert loglikelihoods(ModelHandle(oracle), [item], progress=False) == direct
    handle = ModelHandle("openai:gpt-4o")
    handle._model = object()  # an API model: generates, cannot score
    with pytest.raises(TypeError, match="openai backend cannot score"):
        handle.loglikelihood([LoglikelihoodRequest("a", "b")])


class BatchSensitive(ChatModel):
    """Answers that depend on the rest of the batch, as bf16 greedy answers can (BENCHMARKS.md, "Batch make-up")."""

    name = "batch-sensitive"

    def generate(self, conversations, params):
        return [Completion(text=f"{c[-1]['content']} in a batch of {len(conversations)}") for c in conversations]

    def identity(self):
        return {"backend": "test", "name": self.name}


def test_a_cached_answer_is_the_one_given_in_the_batch_first_asked(tmp_path):
    """The cache's contract (README, "the call cache"): the key is model identity + conversation + decoding
    parameters, not the batch. A conversation first answered among others is later served that answer, even alone;
    without the cache the model answers it alone. Resume depends on this: a resumed stage sends only what is left."""
    params, spec = GenerationParams(), rules(tmp_path)
    cached = ModelHandle.around(BatchSensitive(), spec, CallCache(tmp_path / "c.sqlite"))
    assert [c.text for c in cached.generate([user("a"), user("b"), user("c")], params)][1] == "b in a batch of 3"
    again = cached.generate([user("b")], params)[0]
    assert again.text == "b in a batch of 3" and again.cached
    assert ModelHandle.around(BatchSensitive(), spec).generate([user("b")], params)[0].text == "b in a batch of 1"


def _writer(path: str, spec: str, start: int) -> None:
    model = ModelHandle(spec, CallCache(path))
    for i in range(start, start + 40):
        model.generate([user(f"q{i}")], GenerationParams())


def test_concurrent_processes_share_one_database(tmp_path):
    path, spec = str(tmp_path / "c.sqlite"), rules(tmp_path, "x")
    procs = [mp.get_context("spawn").Process(target=_writer, args=(path, spec, n * 20)) for n in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    assert len(CallCache(path)) == 80  # overlapping ranges 0-39, 20-59, 40-79
