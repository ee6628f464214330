"""The SQLite call cache: repeated calls cost zero model calls; the key covers model, messages and params."""

from __future__ import annotations

import multiprocessing as mp

from iteralign.models.base import ChatModel
from iteralign.models.cache import CachedChatModel, CallCache, call_key
from iteralign.models.scripted import Rules, ScriptedModel
from iteralign.types import Completion, GenerationParams, user


def _model(reply: str = "Sure.") -> ScriptedModel:
    return ScriptedModel(Rules(default=reply))


def test_repeat_call_is_served_from_cache(tmp_path):
    inner = _model()
    model = CachedChatModel(inner, CallCache(tmp_path / "c.sqlite"))
    convs = [user("a"), user("b")]
    first = model.generate(convs, GenerationParams())
    assert inner.calls == 2 and model.misses == 2 and model.hits == 0
    second = model.generate(convs, GenerationParams())
    assert inner.calls == 2, "a repeated identical call must not reach the model"
    assert model.hits == 2 and [c.text for c in second] == [c.text for c in first]
    assert all(c.cached for c in second)


def test_only_misses_reach_the_model_and_order_is_kept(tmp_path):
    inner = ScriptedModel(Rules(default="echo {prompt}"))
    model = CachedChatModel(inner, CallCache(tmp_path / "c.sqlite"))
    model.generate([user("b")], GenerationParams())
    out = model.generate([user("a"), user("b"), user("c")], GenerationParams())
    assert [c.text for c in out] == ["echo a", "echo b", "echo c"]
    assert inner.calls == 3  # b once, then a and c


def test_key_changes_with_params_model_and_messages():
    ident = {"backend": "x", "name": "m"}
    base = call_key(ident, user("hi"), GenerationParams())
    assert call_key(ident, user("hi"), GenerationParams(max_new_tokens=7)) != base
    assert call_key(ident, user("hi!"), GenerationParams()) != base
    assert call_key({**ident, "adapter": "abc"}, user("hi"), GenerationParams()) != base
    assert call_key(dict(ident), user("hi"), GenerationParams()) == base


def test_different_model_identity_is_a_miss(tmp_path):
    cache = CallCache(tmp_path / "c.sqlite")
    CachedChatModel(_model("one"), cache).generate([user("q")], GenerationParams())
    other = _model("two")
    out = CachedChatModel(other, cache).generate([user("q")], GenerationParams())
    assert out[0].text == "two" and other.calls == 1


def test_no_cache_still_counts(tmp_path):
    inner = _model()
    model = CachedChatModel(inner, None)
    model.generate([user("a")], GenerationParams())
    model.generate([user("a")], GenerationParams())
    assert inner.calls == 2 and model.usage.calls == 2 and model.hits == 0


def _writer(path: str, start: int) -> None:
    model = CachedChatModel(_model("x"), CallCache(path))
    for i in range(start, start + 40):
        model.generate([user(f"q{i}")], GenerationParams())


def test_concurrent_processes_share_one_database(tmp_path):
    path = str(tmp_path / "c.sqlite")
    procs = [mp.get_context("spawn").Process(target=_writer, args=(path, n * 20)) for n in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert all(p.exitcode == 0 for p in procs)
    assert len(CallCache(path)) == 80  # overlapping ranges 0-39, 20-59, 40-79


class BatchSensitive(ChatModel):
    """Answers that depend on the rest of the batch, as bf16 greedy answers can (BENCHMARKS.md, "Batch make-up")."""

    name = "batch-sensitive"

    def generate(self, conversations, params):
        return [Completion(text=f"{c[-1]['content']} in a batch of {len(conversations)}") for c in conversations]


def test_a_cached_answer_is_the_one_given_in_the_batch_first_asked(tmp_path):
    """The cache's contract (README, "the call cache"): the key is model identity + conversation + decoding
    parameters, not the batch. A conversation first answered among others is later served that answer, even alone;
    without the cache the model answers it alone. Resume depends on this: a resumed stage sends only what is left."""
    params = GenerationParams()
    cached = CachedChatModel(BatchSensitive(), CallCache(tmp_path / "c.sqlite"))
    assert [c.text for c in cached.generate([user("a"), user("b"), user("c")], params)][1] == "b in a batch of 3"
    again = cached.generate([user("b")], params)[0]
    assert again.text == "b in a batch of 3" and again.cached
    assert CachedChatModel(BatchSensitive(), None).generate([user("b")], params)[0].text == "b in a batch of 1"
