"""Training sees the prompts generation feeds the model (issue: SFT tokenized its own way, ignored the configured
chat template, and failed on models without one): for a chat-template model, a template-less one and a template
override, the ids TRL's trainer receives start with exactly the generation prompt, and the loss covers exactly the
answer and its end-of-turn token."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from iteralign.models.chat_format import encode_chat
from iteralign.records import Example, Prompt
from iteralign.stages.sft import to_dataset
from iteralign.stages.tokens import encode_example, end_of_turn_ids, load_tokenizer
from iteralign.types import user

pytestmark = pytest.mark.model

PROMPT, ANSWER = "How do I boil an egg?", "Put it in boiling water for nine minutes, then cool it in cold water."


@pytest.fixture(scope="module")
def templateless(smol_path: Path, tmp_path_factory) -> Path:
    """The 135M tokenizer and config with its chat template removed (a base model, as Llama-2-7b-hf is)."""
    folder = tmp_path_factory.mktemp("base")
    for name in ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                 "special_tokens_map.json"):
        if (smol_path / name).exists():
            shutil.copy(smol_path / name, folder / name)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    assert not load_tokenizer(str(folder)).chat_template
    return folder


def trainer_rows(base: str, tokenizer, examples: list[Example]):
    """The rows TRL's SFTTrainer trains on (its own dataset preparation run on ours)."""
    import torch
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    args = SFTConfig(output_dir="/tmp/unused", completion_only_loss=True, report_to="none", use_cpu=True,
                     max_length=512)
    dataset = to_dataset(examples, tokenizer, end_of_turn_ids(base, tokenizer))
    return SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer).train_dataset


def check(tokenizer, rows, base: str) -> None:
    prompt_ids = encode_chat(tokenizer, user(PROMPT))  # what generation feeds the model
    row = rows[0]
    assert row["input_ids"][: len(prompt_ids)] == prompt_ids
    trained = [t for t, label in zip(row["input_ids"], row["labels"]) if label != -100]
    assert row["labels"][: len(prompt_ids)] == [-100] * len(prompt_ids)
    assert trained == row["input_ids"][len(prompt_ids):]  # the loss covers everything after the prompt...
    assert trained[-1] in end_of_turn_ids(base, tokenizer)  # ...which ends with the end-of-turn token
    assert tokenizer.decode(trained[:-1]).strip() == ANSWER  # and is the answer itself


def test_chat_template_model_trains_on_the_generation_prompt(smol_path):
    tokenizer = load_tokenizer(str(smol_path))
    rows = trainer_rows(str(smol_path), tokenizer, [Example(id="e", prompt=Prompt.make(PROMPT), completion=ANSWER)])
    check(tokenizer, rows, str(smol_path))
    assert tokenizer.convert_ids_to_tokens(rows[0]["input_ids"][-1]) == "<|im_end|>"


def test_templateless_model_trains_on_the_plain_prompt(smol_path, templateless):
    tokenizer = load_tokenizer(str(templateless))
    assert encode_chat(tokenizer, user(PROMPT)) == tokenizer(f"User: {PROMPT}\nAssistant:").input_ids
    rows = trainer_rows(str(smol_path), tokenizer, [Example(id="e", prompt=Prompt.make(PROMPT), completion=ANSWER)])
    check(tokenizer, rows, str(templateless))


def test_a_configured_template_override_is_the_one_trained_on(smol_path, tmp_path):
    template = tmp_path / "template.jinja"
    template.write_text("{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}</s>{% endfor %}"
                        "{% if add_generation_prompt %}[assistant] {% endif %}")
    tokenizer = load_tokenizer(str(smol_path), str(template))
    prompt_ids, answer_ids = encode_example(tokenizer, end_of_turn_ids(str(smol_path), tokenizer), PROMPT, ANSWER)
    assert tokenizer.decode(prompt_ids) == f"[user] {PROMPT}</s>[assistant] "
    assert tokenizer.decode(answer_ids).startswith(ANSWER)


@pytest.mark.parametrize("which", ["chat template", "template-less"])
def test_an_answer_cut_off_by_the_length_limit_is_encoded_without_an_end_of_turn(smol_path, templateless, which):
    base = str(smol_path if which == "chat template" else templateless)
    tokenizer = load_tokenizer(base)
    eos = end_of_turn_ids(base, tokenizer)
    prompt_ids, finished = encode_example(tokenizer, eos, PROMPT, ANSWER)
    cut_prompt, cut = encode_example(tokenizer, eos, PROMPT, ANSWER, complete=False)
    assert cut_prompt == prompt_ids and finished[-1] in eos | {tokenizer.eos_token_id}
    assert cut == finished[:-1] and tokenizer.decode(cut).strip() == ANSWER


def test_a_cut_example_is_trained_on_its_text_without_the_end_of_turn(smol_path):
    """``sft.replay_cut: train``: a replay answer cut by the length limit (``Example.complete`` False) is trained on
    every token of its text and not on an end-of-turn token, which would teach the model to stop mid-sentence."""
    base = str(smol_path)
    tokenizer = load_tokenizer(base)
    prompt = Prompt(id="p", text=PROMPT, intent="benign")
    examples = [Example(id="a", prompt=prompt, completion=ANSWER, origin="replay"),
                Example(id="b", prompt=prompt, completion=ANSWER, origin="replay", complete=False)]
    finished, cut = to_dataset(examples, tokenizer, end_of_turn_ids(base, tokenizer)).to_list()
    assert cut["input_ids"] == finished["input_ids"][:-1]
    assert cut["completion_mask"] == finished["completion_mask"][:-1] and cut["completion_mask"][-1] == 1
    answer = [t for t, m in zip(cut["input_ids"], cut["completion_mask"]) if m]
    assert tokenizer.decode(answer).strip() == ANSWER
