"""The transformers backend on the real SmolLM2-135M-Instruct: batching must not change answers or scores."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from iteralign.models.base import ModelConfig
from iteralign.models.hf import MAX_STOP_CRITERIA, FrequencyPenalty, HFModel, render_plain
from iteralign.models.hf_scoring import encode_pair
from iteralign.models.hf_weights import directory_fingerprint
from iteralign.types import GenerationParams, LoglikelihoodRequest, user

pytestmark = pytest.mark.model

PROMPTS = [
    user("Name three colours."),
    user("What is 2+2?"),
    user("Write a haiku about the sea, the wind and the long night that follows a storm."),
    user("Hi"),
    user("Explain photosynthesis in one sentence.", system="You are a terse biology teacher."),
    user("Translate 'good morning' to French."),
    user("List the planets of the solar system in order from the sun, with one fact about each."),
    [{"role": "user", "content": "My name is Ada."}, {"role": "assistant", "content": "Nice to meet you, Ada!"},
     {"role": "user", "content": "What is my name?"}],
]
GREEDY = GenerationParams(max_new_tokens=24)


def _load(path: Path, **overrides) -> HFModel:
    cfg = ModelConfig(spec=f"hf:{path}", dtype="float32", batch_size=8, device="cpu")
    return HFModel.load(str(path), cfg.model_copy(update=overrides))


@pytest.fixture(scope="module")
def smol(smol_path: Path) -> HFModel:
    return _load(smol_path)


@pytest.mark.heavy(35)
def test_batched_greedy_equals_one_at_a_time_float32(smol: HFModel):
    batched = smol.generate(PROMPTS, GREEDY)
    single = [smol.generate([conv], GREEDY)[0] for conv in PROMPTS]
    assert [c.text for c in batched] == [c.text for c in single]
    assert [(c.completion_tokens, c.finish_reason) for c in batched] == [
        (c.completion_tokens, c.finish_reason) for c in single
    ]
    assert "4" in batched[1].text  # the answers are in the callers' order, not the length order
    assert all(c.prompt_tokens > 0 and c.text.strip() for c in batched)


@pytest.mark.heavy(15)
def test_float32_greedy_does_not_depend_on_the_neighbours(smol: HFModel):
    """The half of the cache's contract that holds exactly: in float32, a greedy answer is the same whatever else is
    in its batch (other prompts, other padding width, another batch size), so a cached answer is what a rerun gives.
    In bf16 it is not (BENCHMARKS.md, "Batch make-up"), and the cache keeps the answer first given."""
    together = [c.text for c in smol.generate(PROMPTS, GREEDY)]
    smol.cfg = smol.cfg.model_copy(update={"batch_size": 3})
    try:
        regrouped: dict[int, str] = {}
        for group in ([6, 0, 3], [5, 1, 7, 2, 4]):
            regrouped.update(zip(group, (c.text for c in smol.generate([PROMPTS[i] for i in group], GREEDY))))
    finally:
        smol.cfg = smol.cfg.model_copy(update={"batch_size": 8})
    assert [regrouped[i] for i in range(len(PROMPTS))] == together


def test_stop_strings_and_finish_reasons(smol: HFModel):
    conv = [user("Count from 1 to 10, separated by commas.")]
    stopped = smol.generate(conv, GenerationParams(max_new_tokens=40, stop=("5",)))[0]
    assert stopped.finish_reason == "stop" and "5" not in stopped.text and "4" in stopped.text
    assert stopped.completion_tokens < 40
    cut = smol.generate(conv, GenerationParams(max_new_tokens=3))[0]
    assert cut.finish_reason == "length" and cut.completion_tokens == 3
    ended = smol.generate([user("Hi")], GenerationParams(max_new_tokens=64))[0]
    assert ended.finish_reason == "stop" and ended.completion_tokens < 64  # ended on <|im_end|> (= pad)


def test_a_stop_strings_criterion_is_built_once_and_stops_every_call(smol: HFModel, monkeypatch):
    """Building transformers' StopStringCriteria reads the whole vocabulary (0.7 s for a 151k one): once per stop
    strings and model, and the kept one still stops each later call where the string completes."""
    import transformers

    built = []

    class Counted(transformers.StopStringCriteria):
        def __init__(self, tokenizer, stop_strings):
            built.append(tuple(stop_strings))
            super().__init__(tokenizer, stop_strings)

    monkeypatch.setattr(transformers, "StopStringCriteria", Counted)
    conv = [user("Count from 1 to 10, separated by commas.")]
    params = GenerationParams(max_new_tokens=40, stop=("7",))
    first, again = smol.generate(conv, params)[0], smol.generate(conv + [], params)[0]
    other = smol.generate(conv, GenerationParams(max_new_tokens=40, stop=("6",)))[0]
    assert built == [("7",), ("6",)]  # the second "7" call reused its criterion
    assert first == again and first.finish_reason == "stop" and "6" in first.text and "7" not in first.text
    assert other.finish_reason == "stop" and "5" in other.text and "6" not in other.text
    assert other.completion_tokens < first.completion_tokens < 40
    for k in range(MAX_STOP_CRITERIA):  # as many other stop strings: the least recently used go
        smol.generate(conv, GenerationParams(max_new_tokens=1, stop=(f"stop{k}",)))
    smol.generate(conv, GenerationParams(max_new_tokens=1, stop=("6",)))
    assert len(smol._stop_criteria) == MAX_STOP_CRITERIA and ("7",) not in smol._stop_criteria
    assert built[-1] == ("6",)  # "6" had gone too: built again


def test_loglikelihood_batched_equals_single(smol: HFModel):
    requests = [
        LoglikelihoodRequest("The capital of France is", " Paris"),
        LoglikelihoodRequest("The capital of France is", " Tokyo"),
        LoglikelihoodRequest("Q: What is 2+2?\nA: ", "4"),  # trailing space moves to the continuation
        LoglikelihoodRequest("", "Hello world"),
        LoglikelihoodRequest("The sky is", " blue because sunlight is scattered by the molecules of the air."),
        LoglikelihoodRequest("x", ""),
    ]
    batched = smol.loglikelihood(requests)
    single = [smol.loglikelihood([r])[0] for r in requests]
    assert max(abs(b - s) for b, s in zip(batched, single)) < 1e-4
    assert batched[0] > batched[1]  # Paris beats Tokyo
    assert batched[-1] == 0.0 and all(s < 0 for s in batched[:-1])


def test_encode_pair_follows_lm_eval(smol: HFModel):
    tok = smol.tokenizer
    context, continuation = encode_pair(tok, "Answer: ", "yes")
    whole = tok("Answer: yes", add_special_tokens=False).input_ids
    assert context == tok("Answer:", add_special_tokens=False).input_ids
    assert context + continuation == whole
    assert encode_pair(tok, "", "yes")[0] == [tok.bos_token_id]


def test_plain_fallback_when_tokenizer_has_no_template(smol: HFModel):
    tokenizer = copy.deepcopy(smol.tokenizer)
    tokenizer.chat_template = None
    plain = HFModel(smol.model, tokenizer, smol.cfg, name="plain", identity=smol.identity() | {"chat_template": "x"})
    conv = user("Hello", system="Be brief.")
    assert render_plain(conv) == "System: Be brief.\nUser: Hello\nAssistant:"
    assert plain.encode_chat(conv) == tokenizer("System: Be brief.\nUser: Hello\nAssistant:").input_ids
    answer = plain.generate([conv], GenerationParams(max_new_tokens=30))[0]
    assert "\nUser:" not in answer.text  # the fallback's own stop string
    assert plain.identity()["chat_template"] != smol.identity()["chat_template"]


def test_chat_template_file_overrides(smol_path: Path, tmp_path: Path):
    template = tmp_path / "t.jinja"
    template.write_text("{% for m in messages %}<<{{ m['content'] }}>>{% endfor %}{% if add_generation_prompt %}=>"
                        "{% endif %}")
    model = _load(smol_path, chat_template=str(template))
    assert model.encode_chat(user("hey")) == model.tokenizer("<<hey>>=>", add_special_tokens=False).input_ids
    with pytest.raises(FileNotFoundError, match="chat_template"):
        _load(smol_path, chat_template=str(tmp_path / "missing.jinja"))


def test_adapter_changes_identity(smol: HFModel, smol_path: Path, tmp_path: Path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    def save_adapter(seed: int, out: Path) -> Path:
        torch.manual_seed(seed)
        base = AutoModelForCausalLM.from_pretrained(smol_path, dtype=torch.float32)
        lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
        get_peft_model(base, lora).save_pretrained(out)
        return out

    first = _load(smol_path, adapter=str(save_adapter(0, tmp_path / "a")))
    second = _load(smol_path, adapter=str(save_adapter(1, tmp_path / "b")))
    ids = [smol.identity(), first.identity(), second.identity()]
    assert ids[0]["adapter"] is None and ids[1]["adapter"] and ids[1]["adapter"] != ids[2]["adapter"]
    assert ids[0]["weights"] == ids[1]["weights"]  # same base, different adapter
    greedy = GenerationParams(max_new_tokens=8)
    assert first.generate([user("Hi")], greedy)[0].text != smol.generate([user("Hi")], greedy)[0].text
    for model in (first, second):
        model.release()


def test_sampled_weights_fingerprint_sees_changed_values(tmp_path: Path):
    import torch
    from safetensors.torch import save_file

    weights = {"w": torch.zeros(4096, 64)}
    save_file(weights, tmp_path / "model.safetensors")
    before = directory_fingerprint(tmp_path)
    weights["w"] += 1e-3  # same names, shapes, dtypes and size: only values change, as after a fine-tune
    save_file(weights, tmp_path / "model.safetensors")
    assert directory_fingerprint(tmp_path) != before


def test_frequency_penalty_counts_generated_tokens_only():
    import torch

    scores = torch.zeros(1, 5)
    input_ids = torch.tensor([[3, 3, 1, 1, 2]])  # prompt = first two tokens
    out = FrequencyPenalty(0.5, prompt_len=2)(input_ids, scores)
    assert out.tolist() == [[0.0, -1.0, -0.5, 0.0, 0.0]]
