"""The vLLM backend's own logic, checked on CPU without vLLM: parameter mapping, LoRA set-up, the missing-extra
error, and the prompt-logprob arithmetic of scoring, against a hand-written fake engine that computes what vLLM
reports (``prompt_logprobs[i]`` = ``{token: Logprob}`` of prompt token ``i`` given the ones before, ``None`` at 0)
with the transformers model. The real engine is covered by tests/test_backend_contract.py on a GPU machine."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

from iteralign.models.base import ModelConfig, load_model
from iteralign.models.vllm import VLLMModel, continuation_logprob, lora_rank, sampling_kwargs
from iteralign.types import GenerationParams, LoglikelihoodRequest


@dataclass
class FakeLogprob:
    logprob: float


@dataclass
class FakeEngine:
    """Just enough of ``vllm.LLM`` for scoring: ``prompt_logprobs`` computed by a transformers forward pass."""

    model: object
    tokenizer: object
    calls: list = field(default_factory=list)
    llm_engine: object = field(default_factory=lambda: SimpleNamespace(model_config=SimpleNamespace(max_model_len=64)))

    def get_tokenizer(self):
        return self.tokenizer

    def generate(self, prompts, sampling, use_tqdm=True, lora_request=None):
        import torch

        self.calls.append((prompts, sampling, lora_request))
        outputs = []
        for prompt in prompts:
            ids = prompt["prompt_token_ids"]
            with torch.inference_mode():
                logprobs = torch.log_softmax(self.model(torch.tensor([ids])).logits[0].float(), -1)
            entries = [None] + [{t: FakeLogprob(float(logprobs[i - 1, t]))} for i, t in enumerate(ids) if i > 0]
            outputs.append(SimpleNamespace(prompt_logprobs=entries, outputs=[]))
        return outputs


FAKE_API = SimpleNamespace(SamplingParams=lambda **kw: SimpleNamespace(**kw),
                           LoRARequest=lambda name, int_id, path: SimpleNamespace(name=name, id=int_id, path=path))


def test_sampling_parameters_map_to_vllm_names():
    greedy = sampling_kwargs(GenerationParams(max_new_tokens=7, top_p=0.5, stop=("\n\n",), frequency_penalty=0.5,
                                              repetition_penalty=1.1, seed=3), ["\n\n"])
    assert greedy | {"stop": None} == {
        "n": 1, "max_tokens": 7, "temperature": 0.0, "top_p": 1.0, "seed": 3, "stop": None,
        "frequency_penalty": 0.5, "repetition_penalty": 1.1, "skip_special_tokens": True}
    assert greedy["stop"] == ["\n\n"]
    assert sampling_kwargs(GenerationParams(temperature=0.7, top_p=0.9), [])["top_p"] == 0.9


@pytest.mark.parametrize("r,expected", [(4, 8), (8, 8), (16, 16), (17, 32), (300, 320)])
def test_lora_rank_rounds_up_to_a_rank_vllm_accepts(tmp_path, r, expected):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": r}))
    assert lora_rank(str(tmp_path)) == expected
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 8, "rank_pattern": {"q_proj": 64}}))
    assert lora_rank(str(tmp_path)) == 64
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 1024}))
    with pytest.raises(ValueError, match="exceeds"):
        lora_rank(str(tmp_path))


def test_missing_vllm_names_the_extra():
    pytest.importorskip("torch")
    try:
        import vllm  # noqa: F401

        pytest.skip("vLLM is installed here")
    except ImportError:
        pass
    with pytest.raises(ImportError, match=r"iteralign\[vllm\]"):
        load_model("vllm:HuggingFaceTB/SmolLM2-135M-Instruct")


def test_continuation_logprob_reads_the_last_tokens_and_old_float_format():
    entries = [None, {5: FakeLogprob(-1.0)}, {6: -2.0, 9: -0.1}, {7: FakeLogprob(-3.0)}]
    assert continuation_logprob(entries, [4, 5, 6, 7], 2) == -5.0
    assert continuation_logprob(entries, [4, 5, 6, 7], 3) == -6.0


@pytest.mark.model
def test_scores_through_prompt_logprobs_equal_the_transformers_backend(smol_hf, smol_path, smol_adapter):
    requests = [LoglikelihoodRequest("The capital of France is", " Paris"),
                LoglikelihoodRequest("Q: 2+2?\nA: ", "4"),  # trailing space moves to the continuation (lm-eval)
                LoglikelihoodRequest("", "Hello world"), LoglikelihoodRequest("x", ""),
                LoglikelihoodRequest("word " * 80, " end")]  # longer than max_model_len: cut on the left
    engine = FakeEngine(smol_hf.model, smol_hf.tokenizer)
    cfg = ModelConfig(spec=f"vllm:{smol_path}", adapter=str(smol_adapter))
    model = VLLMModel(str(smol_path), cfg, engine=engine, api=FAKE_API)
    scores = model.loglikelihood(requests)
    expected = smol_hf.loglikelihood(requests[:4])
    assert scores[:4] == pytest.approx(expected, abs=1e-4) and scores[3] == 0.0
    assert scores[4] < 0
    prompts, sampling, lora = engine.calls[0]
    assert len(prompts) == 4 and max(len(p["prompt_token_ids"]) for p in prompts) == 63  # room for 1 new token
    assert sampling.prompt_logprobs == 1 and sampling.max_tokens == 1
    assert lora.path == str(smol_adapter.resolve())
    kwargs = model.engine_kwargs()
    assert kwargs["enable_lora"] and kwargs["max_lora_rank"] == 8 and kwargs["model"] == str(smol_path)
    assert model.identity()["adapter"].startswith("sha256:") and model.identity()["backend"] == "vllm"


def test_adapters_of_one_base_share_an_engine(tmp_path, smol_path, smol_adapter):
    """Each iteration's adapter is a LoRARequest on the engine already loaded for the base (one ``vllm.LLM`` per
    base), kept while SFT runs only when its memory is capped; a larger adapter than it was built for reloads it."""
    import json

    from iteralign.models.vllm_engines import EnginePool

    built, stopped = [], []

    def make_engine(**kwargs):
        engine = SimpleNamespace(kwargs=kwargs, get_tokenizer=lambda: None, llm_engine=SimpleNamespace(
            engine_core=SimpleNamespace(shutdown=lambda: stopped.append(kwargs["max_lora_rank"]))))
        built.append(engine)
        return engine

    api = SimpleNamespace(LLM=make_engine, LoRARequest=FAKE_API.LoRARequest)
    pool = EnginePool()
    import iteralign.models.vllm as vllm_module

    original, vllm_module.POOL = vllm_module.POOL, pool
    try:
        capped = {"gpu_memory_utilization": 0.35}
        base = VLLMModel(str(smol_path), ModelConfig(spec=f"vllm:{smol_path}", engine_args=capped), api=api)
        tuned = VLLMModel(str(smol_path), ModelConfig(spec=f"vllm:{smol_path}", adapter=str(smol_adapter),
                                                      engine_args=capped), api=api)
        assert len(built) == 1 and tuned._engine is base._engine and base._lora is None
        assert tuned._lora.path == str(smol_adapter.resolve()) and tuned._lora.id == pool.lora_id(tuned._lora.path)
        base.close()  # capped: stays loaded for the next iteration's adapter
        assert not stopped and len(pool) == 1
        big = tmp_path / "big"
        big.mkdir()
        (big / "adapter_config.json").write_text(json.dumps({"r": 128}))
        VLLMModel(str(smol_path), ModelConfig(spec=f"vllm:{smol_path}", adapter=str(big), engine_args=capped), api=api)
        assert len(built) == 2 and stopped == [64] and built[1].kwargs["max_lora_rank"] == 128
        full = VLLMModel(str(smol_path), ModelConfig(spec=f"vllm:{smol_path}"), api=api)  # default memory share
        full.close()  # holds most of the GPU: shut down so that SFT gets it
        assert len(built) == 3 and stopped == [64, 64] and len(pool) == 1
        pool.close_all()
        assert stopped == [64, 64, 128] and len(pool) == 0
    finally:
        vllm_module.POOL = original
