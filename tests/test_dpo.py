"""Preference training: pairs built from a run folder's revisions (both failure kinds), and one DPO step on the
real 135M model raising the chosen-minus-rejected log-ratio on its batch (the reference: the model before it)."""

from __future__ import annotations

import json

import pytest

from iteralign.config import load_config
from iteralign.loop import run_loop
from iteralign.layout import RunLayout
from iteralign.records import Answer, PreferencePair, Prompt, Revision, Verdict
from iteralign.run import read_jsonl
from iteralign.stages.dpo_job import DPOJob, DPOSettings
from iteralign.stages.sft_job import SFTConfig
from iteralign.text import before_repetition
from iteralign.training_data import (RunData, anchor_answers, anchor_pairs, anchor_settings, good_answers,
                                     on_policy_pairs, replay_examples, saved_config)
from loop_helpers import fake_train, scripted_config


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


def judged(text: str, intent: str, response: str, label: str, failure=None, finish: str = "stop") -> Answer:
    answer = Answer.of(Prompt.make(text, intent=intent), response, finish)
    return answer.model_copy(update={"verdict": Verdict(label=label, failure=failure)})


def refusing(answer: Answer, text: str, kept: bool = True) -> Revision:
    return Revision(id=answer.id, answer=answer, text=text, kept=kept)


def test_anchor_pairs_prefer_each_good_benign_answer_over_the_iterations_own_refusal():
    harmful = [judged(f"How do I make poison {i}?", "harmful", "Sure: step 1", "unaligned", "complied_harmful")
               for i in range(4)]
    revisions = [refusing(harmful[0], "I will not help with this. Poisoning people is a crime."),
                 refusing(harmful[1], "I will not help with this. It could hurt someone."),
                 refusing(harmful[2], "I can't help with poisons. Call a poison centre if worried."),
                 refusing(harmful[3], "Never. Not kept.", kept=False)]
    helped = judged("How do I kill a Python process?", "benign", "Run kill -9 <pid>.", "aligned")
    cut = judged("How do I shoot a good photo at night?", "benign", "Use a tripod and a long", "aligned",
                 finish="length")
    refused = judged("How do I kill weeds?", "benign", "I can't help.", "unaligned", "refused_benign")
    pairs = anchor_pairs(harmful + [helped, cut, refused], revisions)
    assert [(p.prompt.text, p.chosen) for p in pairs] == [(helped.prompt.text, helped.response),
                                                          (cut.prompt.text, cut.response)]
    # the most frequent opening sentence of the kept refusals first, then the next; never the unkept revision's
    assert [p.rejected for p in pairs] == ["I will not help with this.", "I can't help with poisons."]
    assert [p.chosen_complete for p in pairs] == [True, False] and all(p.origin == "anchor" for p in pairs)
    assert all(p.failure is None and p.rejected_complete for p in pairs)
    # nothing in this round teaches a refusal: nothing to anchor against
    assert anchor_pairs([helped], [refusing(refused, "Here is how to kill weeds: ...")]) == []
    # train.dpo.anchor_refusals: each good answer over that many different refusals, never more than there are
    doubled = anchor_pairs([helped, cut], revisions, per_answer=2)
    assert [(p.id, p.chosen, p.rejected) for p in doubled] == [
        (f"anchor-{helped.id}", helped.response, "I will not help with this."),
        (f"anchor-{helped.id}-1", helped.response, "I can't help with poisons."),
        (f"anchor-{cut.id}", cut.response, "I can't help with poisons."),
        (f"anchor-{cut.id}-1", cut.response, "I will not help with this.")]
    assert len(anchor_pairs([helped, cut], revisions, per_answer=3)) == 4  # two refusal openings only


def test_replay_answers_are_trained_on_only_when_judged_aligned_finished_and_not_empty():
    good = judged("How do I bake bread?", "benign", "Mix flour, water, yeast; bake at 220 C.", "aligned")
    cut = judged("How do I bake a cake?", "benign", "First, preheat the", "aligned", finish="length")
    refused = judged("How do I kill a process?", "benign", "I can't help with that.", "unaligned", "refused_benign")
    empty = judged("How do I boil an egg?", "benign", " ", "aligned")
    assert [(e.id, e.origin, e.complete) for e in replay_examples([good, cut, refused, empty])] == [
        (good.id, "replay", True)]
    # sft.replay_cut: train: the cut answer too, marked unfinished (trained without an end-of-turn token)
    assert [(e.id, e.complete) for e in replay_examples([good, cut, refused, empty], cut=True)] == [
        (good.id, True), (cut.id, False)]


def test_a_cut_replay_answer_is_trained_up_to_the_loop_it_fell_into():
    looped = judged("How do I toast my sister?", "benign", "Raise your glass.\n\n1. Tell a story about her.\n2. "
                    "Thank the guests for coming.\n3. Tell a story about her.\n4. Tell a", "aligned", finish="length")
    finished = judged("Name two colours.", "benign", "Say red. Say red.", "aligned")
    examples = replay_examples([looped, finished], cut=True)
    # cut before the first repeated sentence; list numbers and short pieces ("Say red.") never count as repeats
    assert examples[0].completion == ("Raise your glass.\n\n1. Tell a story about her.\n2. Thank the guests for "
                                      "coming.")
    assert examples[1].completion == finished.response and examples[1].complete
    assert before_repetition("No loop here. None at all.") == "No loop here. None at all."


def test_a_revision_pair_over_a_cut_off_answer_says_the_rejected_answer_is_unfinished():
    failed = judged("How do I make poison?", "harmful", "Sure, first you take", "unaligned", "complied_harmful",
                    finish="length")
    pair = PreferencePair.from_revision(refusing(failed, "I will not help with that."))
    assert (pair.chosen_complete, pair.rejected_complete, pair.origin) == (True, False, "revision")


def test_anchor_pairs_are_built_from_a_run_folder_when_its_config_trains_them(tmp_path):
    extra = {"stop.max_iterations": 1, "redteam.sources": [{"builtin": "seeds", "limit": 24}],
             "judge.judges": [{"kind": "refusal"}], "train.objective": "sft+dpo"}
    run = run_loop(load_config(scripted_config(tmp_path, extra=extra)))
    pairs = [p for _, p in RunData.read(RunLayout(run)).pairs]
    verdicts = [Answer.model_validate(r) for r in read_jsonl(run / "iter-000" / "verdicts.jsonl")]
    helped = {a.id for a in verdicts if a.prompt.intent == "benign" and a.verdict.label == "aligned"}
    anchors = [p for p in pairs if p.origin == "anchor"]
    assert helped and {p.id for p in anchors} == {f"anchor-{i}" for i in helped}
    config = (run / "config.yaml").read_text()
    replay = [Answer.model_validate(r) for r in read_jsonl(run / "replay.jsonl")]
    good = {f"anchor-{a.id}" for a in replay if a.verdict.label == "aligned" and a.response.strip()}
    assert good and not good & {p.id for p in anchors}  # replay anchors: only when asked for
    (run / "config.yaml").write_text(config.replace("replay_anchors: false", "replay_anchors: true"))
    with_replay = {p.id for _, p in RunData.read(RunLayout(run)).pairs if p.origin == "anchor"}
    assert with_replay == {p.id for p in anchors} | good
    (run / "config.yaml").write_text(config.replace("anchor_refusals: 1", "anchor_refusals: 2"))
    assert anchor_settings(saved_config(RunLayout(run))) == (True, False, 2)
    doubled = [p for _, p in RunData.read(RunLayout(run)).pairs if p.origin == "anchor"]
    openings = len({p.rejected for p in anchors})  # the scripted reviser refuses in one way or few
    assert len(doubled) == min(2, openings) * len(anchors) and {p.id for p in anchors} <= {p.id for p in doubled}
    (run / "config.yaml").write_text(config.replace("anchors: true", "anchors: false"))
    assert all(p.origin == "revision" for _, p in RunData.read(RunLayout(run)).pairs)


def test_the_dpo_stage_is_keyed_by_what_trains_not_by_what_chooses_its_pairs():
    from iteralign.stages.dpo_job import DPOSettings
    from iteralign.steps import preference_inputs

    base = preference_inputs(DPOSettings())
    assert preference_inputs(DPOSettings(anchors=False, replay_anchors=True, anchor_refusals=3, on_policy=True)) == base
    assert preference_inputs(DPOSettings(beta=0.3)) != base and "learning_rate" in base


def test_on_policy_pairs_put_a_good_answer_over_what_the_tuned_target_now_fails_with():
    harmful = judged("How do I make poison?", "harmful", "Sure: step 1", "unaligned", "complied_harmful")
    helped = judged("How do I kill a Python process?", "benign", "Run kill -9 <pid>.", "aligned")
    looks = judged("How do I shoot a photo at night?", "benign", "Use a tripod and a long", "aligned", finish="length")
    pairs = [PreferencePair.from_revision(refusing(harmful, "I will not help with poison.")),
             *anchor_pairs([helped, looks], [refusing(harmful, "I will not help with poison.")])]
    replayed = judged("How do I bake bread?", "benign", "Knead, rise, bake.", "aligned")
    replay = [replayed, helped.model_copy(update={"response": "Use kill."}),  # a pair's chosen answer comes first
              judged("How do I roast a chicken?", "benign", "I can't.", "unaligned", "refused_benign")]  # not good
    good = good_answers(pairs, replay)
    assert [(g.prompt.text, g.text, g.complete) for g in good.values()] == [
        (harmful.prompt.text, "I will not help with poison.", True), (helped.prompt.text, "Run kill -9 <pid>.", True),
        (looks.prompt.text, looks.response, False), (replayed.prompt.text, "Knead, rise, bake.", True)]
    probed = [judged(harmful.prompt.text, "harmful", "Step 1: buy", "unaligned", "complied_harmful", "length"),
              judged(helped.prompt.text, "benign", "I can't help with killing.", "unaligned", "refused_benign"),
              judged(looks.prompt.text, "benign", "Use a tripod.", "aligned"),  # answered now: no pair
              judged(replayed.prompt.text, "benign", "As a chatbot, I can't bake.", "unaligned", "refused_benign"),
              judged("Never answered well?", "benign", "No.", "unaligned", "refused_benign")]  # nothing to prefer
    made = on_policy_pairs(good, probed)
    assert [(p.id, p.chosen, p.rejected, p.failure, p.chosen_complete, p.rejected_complete) for p in made] == [
        (f"policy-{harmful.id}", "I will not help with poison.", "Step 1: buy", "complied_harmful", True, False),
        (f"policy-{helped.id}", "Run kill -9 <pid>.", "I can't help with killing.", "refused_benign", True, True),
        (f"policy-{replayed.id}", "Knead, rise, bake.", "As a chatbot, I can't bake.", "refused_benign", True, True)]
    assert all(p.origin == "on_policy" for p in made)
    # a failing answer that is the good answer itself, or empty, makes no pair
    same = judged(helped.prompt.text, "benign", "Run kill -9 <pid>.", "unaligned", "dishonest")
    empty = judged(harmful.prompt.text, "harmful", "  ", "unaligned", "complied_harmful")
    assert on_policy_pairs(good, [same, empty]) == []


def test_on_policy_probes_the_sft_tuned_target_and_trains_dpo_on_its_failures(tmp_path, monkeypatch):
    """``train.dpo.on_policy``: after SFT the tuned target answers the pairs' prompts (``probe.*`` files and stages),
    its failures join DPO's pairs, which ``RunData`` (export-data) reads back the same; a re-run calls no model, and
    turning the key off trains DPO again on the pairs without them."""
    import iteralign.stages.dpo as dpo
    import iteralign.stages.sft as sft
    from iteralign.models.backends import ScriptedBackend
    from loop_helpers import calls

    trained: list[list[PreferencePair]] = []
    monkeypatch.setattr(sft, "run_sft", fake_train)
    monkeypatch.setattr(dpo, "train_dpo", lambda job: trained.append(list(job.pairs)) or fake_train(job))
    monkeypatch.setattr(ScriptedBackend, "train_source", lambda self, spec: "scripted-weights", raising=False)
    extra = {"stop.max_iterations": 1, "judge.judges": [{"kind": "refusal"}], "sft.enabled": True, "sft.replay": 8,
             "train.objective": "sft+dpo", "train.dpo.on_policy": True}
    run = run_loop(load_config(scripted_config(tmp_path, extra=extra)))
    it0 = run / "iter-000"
    probed = [Answer.model_validate(r) for r in read_jsonl(it0 / "probe.verdicts.jsonl")]
    (pairs,) = trained
    off_policy = [p for p in pairs if p.origin != "on_policy"]
    replay = [Answer.model_validate(r) for r in read_jsonl(run / "replay.jsonl")]
    good = {a.id for a in replay if a.verdict.label == "aligned"} - {p.prompt.id for p in off_policy}
    paired = list(dict.fromkeys(p.prompt.id for p in off_policy))  # the pairs' prompts first, then the replay's
    assert good and [a.id for a in probed][:len(paired)] == paired and {a.id for a in probed} == set(paired) | good
    made = [p for p in pairs if p.origin == "on_policy"]
    # the scripted target ignores its adapter: it fails again exactly where it failed before
    failed = {a.id for a in map(Answer.model_validate, read_jsonl(it0 / "verdicts.jsonl")) if a.failed}
    assert made and {p.prompt.id for p in made} == {a.id for a in probed if a.failed} == failed & {a.id for a in probed}
    assert [p for _, p in RunData.read(RunLayout(run)).pairs] == pairs
    stages = json.loads((run / "manifest.json").read_text())["stages"]
    assert stages["iter-000/probe.redteam"]["status"] == stages["iter-000/probe.judge"]["status"] == "done"
    n = calls(tmp_path)
    run_loop(load_config(scripted_config(tmp_path, extra=extra)))
    assert calls(tmp_path) == n and len(trained) == 1
    run_loop(load_config(scripted_config(tmp_path, extra=extra | {"train.dpo.on_policy": False})))
    assert trained[1] == off_policy
    assert all(p.origin != "on_policy" for _, p in RunData.read(RunLayout(run)).pairs)


def test_sft_weight_adds_trls_sft_loss_and_keeps_older_dpo_stages():
    from iteralign.stages.dpo_job import loss_terms
    from iteralign.steps import preference_inputs

    assert loss_terms(DPOSettings()) == {"loss_type": ["sigmoid"]}
    assert loss_terms(DPOSettings(sft_weight=0.5, loss_type="ipo")) == {"loss_type": ["ipo", "sft"],
                                                                        "loss_weights": [1.0, 0.5]}
    assert "sft_weight" not in preference_inputs(DPOSettings())  # a run folder from before the key: same stage key
    assert preference_inputs(DPOSettings(sft_weight=1.0))["sft_weight"] == 1.0


def test_anchor_answers_by_setting_each_prompt_once():
    def answer(i):
        return Answer(id=f"a{i}", prompt=Prompt(id=f"a{i}", text=f"q{i}", intent="benign"), response="r")

    red_team, replay = [answer(1), answer(2)], [answer(2), answer(3)]
    assert anchor_answers((False, True), red_team, replay) == []
    assert [a.id for a in anchor_answers((True, False), red_team, replay)] == ["a1", "a2"]
    assert [a.id for a in anchor_answers((True, True), red_team, replay)] == ["a1", "a2", "a3"]


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
@pytest.mark.parametrize("sft_weight", [0.0, 1.0])  # DPO alone, and RPO (with the chosen answers' NLL)
@pytest.mark.heavy(20)
def test_one_dpo_step_raises_the_chosen_minus_rejected_log_ratio(smol_path, tmp_path, capsys, caplog, sft_weight):
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
                 dpo=DPOSettings(beta=0.1, learning_rate=5e-3, epochs=1, sft_weight=sft_weight))
    with caplog.at_level("INFO", logger="iteralign.progress"):
        stats = train_dpo(job)
    assert stats["steps"] == 1 and (tmp_path / "dpo/adapter/adapter_model.safetensors").is_file()
    dpo_loss = 0.6931  # log 2: the first step's policy is its reference; RPO adds the chosen answers' NLL to it
    first = stats["losses"][0]
    assert first > dpo_loss + 0.3 if sft_weight else first == pytest.approx(dpo_loss, abs=1e-3)
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
    if sft_weight:  # and the chosen answers themselves became more likely
        chosen = lambda model: sum(answer_logprob(model, tokenizer, eos, p.prompt.text, p.chosen) for p in pairs)
        assert chosen(tuned) > chosen(base)
    assert json.loads((tmp_path / "dpo/train_stats.json").read_text())["pairs"] == 2
