"""Models load on first use: a resumed finished run loads no model; the cache wrapper still scores."""

from __future__ import annotations

import pytest

from iteralign.config import load_config
from iteralign.evals.multiple_choice import MCItem, loglikelihoods
from iteralign.loop import run_loop
from iteralign.models import lazy
from iteralign.models.base import ChatModel, ModelConfig, Scorer
from iteralign.models.cache import cached
from iteralign.models.lazy import LazyModel
from iteralign.types import Completion, GenerationParams, LoglikelihoodRequest, user
from loop_helpers import REPO, calls, scripted_config


@pytest.fixture
def loads(monkeypatch) -> list[str]:
    """Every spec ``LazyModel`` actually loads, in order."""
    seen: list[str] = []
    real = lazy.load_model

    def counting(cfg):
        seen.append(cfg.spec)
        return real(cfg)

    monkeypatch.setattr(lazy, "load_model", counting)
    return seen


def test_lazy_model_loads_at_first_call_only(loads):
    model = LazyModel(ModelConfig(spec=f"scripted:{REPO / 'configs/scripted/oracle.yaml'}"))
    assert not model.loaded and loads == []
    model.generate([user("hello")], GenerationParams(max_new_tokens=8))
    model.generate([user("again")], GenerationParams(max_new_tokens=8))
    assert model.loaded and len(loads) == 1


def test_resumed_finished_run_loads_no_model(tmp_path, loads):
    path = scripted_config(tmp_path)
    run_loop(load_config(path))
    first_loads, first_calls = len(loads), calls(tmp_path)
    assert first_loads > 0 and first_calls > 0
    run_loop(load_config(path))
    assert len(loads) == first_loads, f"resume loaded {loads[first_loads:]}"
    assert calls(tmp_path) == first_calls


ORACLE = str(REPO / "configs/scripted/oracle.yaml")


def test_cache_wrapper_is_a_scorer_and_forwards():
    from iteralign.models.scripted import ScriptedModel

    model = ScriptedModel.from_file(ORACLE)
    item = MCItem("Q: what is up?", (" the sky", " nothing at all here"), (1, 0))
    direct = loglikelihoods(model, [item], progress=False)
    wrapped = cached(LazyModel(ModelConfig(spec=f"scripted:{ORACLE}")), None)
    assert isinstance(wrapped, Scorer)
    assert loglikelihoods(wrapped, [item], progress=False) == direct


class _Talker(ChatModel):
    def generate(self, conversations, params):
        return [Completion(text="hi") for _ in conversations]


def test_cache_wrapper_of_a_non_scorer_says_so():
    with pytest.raises(TypeError, match="_Talker cannot score"):
        cached(_Talker(), None).loglikelihood([LoglikelihoodRequest("a", "b")])
