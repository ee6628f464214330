"""The ChatModel/Scorer contract every local backend keeps, run against each: scripted (always), transformers on
the real SmolLM2-135M (CPU), vLLM on the same model (skipped with the reason when vLLM or a GPU is absent).

Properties: one completion per conversation in the callers' order; max_new_tokens and stop strings respected with
the right finish_reason; greedy decoding deterministic; identity changes with a LoRA adapter; batched scoring
equals one-at-a-time scoring. The expected outputs come from the backend itself (greedy), never hard-coded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from iteralign.models.base import ChatModel, ModelConfig
from iteralign.types import GenerationParams, LoglikelihoodRequest, user

PROMPTS = [user("Name three colours."), user("Say hello.", system="You are terse."),
           user("Write a long story about a lighthouse keeper.")]
GREEDY = GenerationParams(max_new_tokens=16)
pytestmark = pytest.mark.model

REQUESTS = [LoglikelihoodRequest("The capital of France is", " Paris"),
            LoglikelihoodRequest("The capital of France is", " Rome"),
            LoglikelihoodRequest("Q: What is 2+2?\nA:", " 4"),
            LoglikelihoodRequest("", "Hello world")]


def vllm_unavailable() -> str | None:
    """Why the vLLM backend cannot run here, or None."""
    try:
        import vllm  # noqa: F401
    except ImportError:
        return "vLLM is not installed (pip install 'iteralign[vllm]' on a machine with an NVIDIA GPU)"
    import torch

    return None if torch.cuda.is_available() else "vLLM is installed but no CUDA GPU is visible"


@dataclass
class Backend:
    model: ChatModel
    with_adapter: Callable[[], ChatModel] | None  # None: the backend has no adapters (scripted)
    score_tolerance: float


@pytest.fixture(scope="module", params=["scripted", "hf", "vllm"])
def backend(request, tmp_path_factory):
    if request.param == "scripted":
        from iteralign.models.scripted import ScriptedModel

        rules = tmp_path_factory.mktemp("rules") / "rules.yaml"
        rules.write_text('default: "Sure, here is a short answer about {prompt} and some more words to say"\n')
        yield Backend(ScriptedModel.from_file(rules), None, 0.0)
        return
    smol_path: Path = request.getfixturevalue("smol_path")
    adapter = request.getfixturevalue("smol_adapter")
    if request.param == "hf":
        from iteralign.models.hf import HFModel

        cfg = ModelConfig(spec=f"hf:{smol_path}", dtype="float32", device="cpu")
        yield Backend(request.getfixturevalue("smol_hf"),
                      lambda: HFModel.load(str(smol_path), cfg.model_copy(update={"adapter": str(adapter)})), 1e-4)
        return
    reason = vllm_unavailable()
    if reason:
        pytest.skip(reason)
    from iteralign.models.vllm import VLLMModel

    cfg = ModelConfig(spec=f"vllm:{smol_path}", dtype="float32",
                      engine_args={"gpu_memory_utilization": 0.25, "enforce_eager": True})
    model = VLLMModel(str(smol_path), cfg)
    yield Backend(model, lambda: VLLMModel(str(smol_path), cfg.model_copy(update={"adapter": str(adapter)})), 1e-3)
    model.close()


@pytest.fixture(scope="module")
def reference(backend: Backend):
    """Greedy answers to PROMPTS in one batch: what the other properties are checked against."""
    return backend.model.generate(PROMPTS, GREEDY)


def test_one_completion_per_conversation_in_order(backend: Backend, reference):
    backward = backend.model.generate(PROMPTS[::-1], GREEDY)
    assert len(reference) == len(PROMPTS)
    assert [c.text for c in reference] == [c.text for c in backward[::-1]]
    assert all(c.text.strip() and c.prompt_tokens > 0 for c in reference)
    assert backend.model.generate([], GREEDY) == []


def test_greedy_is_deterministic(backend: Backend, reference):
    again = backend.model.generate(PROMPTS[:1], GREEDY)[0]
    assert (again.text, again.completion_tokens, again.finish_reason) == (
        reference[0].text, reference[0].completion_tokens, reference[0].finish_reason)


def test_max_new_tokens_is_respected_and_reported(backend: Backend, reference):
    long = backend.model.generate([PROMPTS[2]], GenerationParams(max_new_tokens=5))[0]
    assert long.completion_tokens <= 5 and long.finish_reason == "length"
    assert reference[2].completion_tokens <= GREEDY.max_new_tokens
    assert len(long.text) < len(reference[2].text)


def test_stop_string_cuts_the_completion(backend: Backend, reference):
    full = reference[2].text
    stop = full[len(full) // 2 : len(full) // 2 + 3]
    assert stop.strip(), f"pick a visible stop string from {full!r}"
    cut = backend.model.generate([PROMPTS[2]], GREEDY.model_copy(update={"stop": (stop,)}))[0]
    assert cut.text == full[: full.index(stop)]
    assert cut.finish_reason == "stop"


def test_identity_changes_with_an_adapter(backend: Backend, reference):
    if backend.with_adapter is None:
        pytest.skip("the scripted backend has no adapters")
    tuned = backend.with_adapter()
    try:
        base = backend.model.identity()
        assert tuned.identity()["adapter"].startswith("sha256:") and base["adapter"] is None
        assert {k: v for k, v in tuned.identity().items() if k != "adapter"} == {
            k: v for k, v in base.items() if k != "adapter"}
        assert tuned.generate([PROMPTS[0]], GREEDY)[0].text != reference[0].text
    finally:
        tuned.close()


def test_batched_scores_equal_single_scores(backend: Backend):
    scorer = backend.model
    batched = scorer.loglikelihood(REQUESTS)
    single = [scorer.loglikelihood([r])[0] for r in REQUESTS]
    assert batched == pytest.approx(single, abs=backend.score_tolerance)
    assert all(s < 0 for s in batched)
    assert scorer.loglikelihood([LoglikelihoodRequest("abc", "")]) == [0.0]
