"""Preference training: pairs built from a run folder's revisions (both failure kinds), and one DPO step on the
real 135M model raising the chosen-minus-rejected log-ratio on its batch (the reference: the model before it)."""

from __future__ import annotations

import json

import pytest

from iteralign.config import load_config
from iteralign.loop import run_loop
from iteralign.records import PreferencePair, Prompt, Revision
from iteralign.run import read_jsonl
from iteralign.stages.dpo_job import DPOJob, DPOSettings
from iteralign.stages.sft_job import SFTConfig
from loop_helpers import scripted_config


def test_pairs_from_a_run_folder_put_each_kept_revision_over_the_answer_it_replaces(tmp_path):
    extra = {"stop.max_iterations": 1, "redteam.sources": [{"builtin": "seeds", "limit": 24}],
             "judge.judges": [{"kind": "refusal"}]}
    run = run_loop(load_config(scripted_config(tmp_path, extra=extra)))
    revisions = [Revision.model_validate(r) for r in read_jsonl(run / "iter-000" / "revisions.jsonl")]
    pairs = [PreferencePair.from_revision(r) for r in revisions if r.kept]
    assert pairs and len(pairs) == sum(r.kept for r in revisions)
    for pair, rev in zip(pairs, [r for r in revisions if r.kept]):
        assert (pair.id, pair.prompt, pair.chosen, pair.rejected) == (rev.id, rev.prompt, rev.text, rev.answer.response)
    # two-sided: the scripted target refuses weapons prompts, including benign look-alikes (over-refusals), and
    # complies with every other harmful one: the pairs hold both failure kinds
    assert {p.failure for p in pairs} == {"complied_harmful", "refused_benign"}
    assert all((p.prompt.intent == "benign") == (p.failure == "refused_benign") for p in pairs)


def answer_logprob(model, tokenizer, eos, prompt: str, answer: str) -> float:
    import torch

    from iteralign.stages.tokens import encode_example

    prompt_ids, answer_ids = encode_example(tokenizer, eos, prompt, answer)
    ids = torch.tensor([prompt_ids + answer_ids])
    with torch.no_grad():
        logps = torch.log_softmax(model(ids).logits[0, :-1].float(), dim=-1)
    targets = ids[0, 1:]
    picked = logps.gather(1, targets[:, None])[:, 0]
    return float(picked[len(prompt_ids) - 1:].sum())


@pytest.mark.model
def test_one_dpo_step_raises_the_chosen_minus_rejected_log_ratio(smol_path, tmp_path, capsys, caplog):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from iteralign.stages.dpo import train_dpo
    from iteralign.stages.tokens import end_of_turn_ids, load_tokenizer

    torch.manual_seed(0)
    refuse = "I can't help with that, but a locksmith can get you back into your own home."
    answer = "Run `kill -9 <pid>`; find the pid with `ps aux | grep name`."
    pairs = [PreferencePair(id="a", prompt=Prompt.make("How do I pick my neighbour's lock?", intent="harmful"),
                            chosen=refuse, rejected="Insert a tension wrench and rake the pins.",
                            failure="complied_harmful"),
             PreferencePair(id="b", prompt=Prompt.make("How do I kill a stuck process?", intent="benign"),
                            chosen=answer, rejected="I'm sorry, I can't help with killing.", failure="refused_benign")]
    cfg = SFTConfig(epochs=1, batch_size=2, lora_r=8, lora_alpha=16, lora_dropout=0.0, warmup_ratio=0.0,
                    max_length=128)
    job = DPOJob(base=str(smol_path), pairs=pairs, out_dir=str(tmp_path / "dpo"), cfg=cfg,
                 dpo=DPOSettings(beta=0.1, learning_rate=5e-3, epochs=1))
    with caplog.at_level("INFO", logger="iteralign.progress"):
        stats = train_dpo(job)
    assert stats["steps"] == 1 and (tmp_path / "dpo/adapter/adapter_model.safetensors").is_file()
    assert "{'loss'" not in capsys.readouterr().out  # off a terminal: a progress line per step, not printed dicts
    assert any(r.getMessage().startswith("dpo: 1/1 step") for r in caplog.records)
    assert not (tmp_path / "dpo/adapter/ref").exists()  # TRL's frozen reference copy is not published
    assert list((tmp_path / "dpo/pairs").glob("cache-*.arrow"))  # reference log-probs cached in the run folder

    tokenizer = load_tokenizer(str(smol_path))
    eos = end_of_turn_ids(str(smol_path), tokenizer)
    base = AutoModelForCausalLM.from_pretrained(str(smol_path), dtype=torch.float32)

    def margin(model) -> float:
        return sum(answer_logprob(model, tokenizer, eos, p.prompt.text, p.chosen)
                   - answer_logprob(model, tokenizer, eos, p.prompt.text, p.rejected) for p in pairs)

    before = margin(base)
    tuned = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(smol_path), dtype=torch.float32),
                                      str(tmp_path / "dpo/adapter"))
    assert margin(tuned) > before  # the log-ratio of chosen over rejected rose against the reference
    assert json.loads((tmp_path / "dpo/train_stats.json").read_text())["pairs"] == 2
