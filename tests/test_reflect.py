"""Self-reflection: the reviser's conversation in each mode, and which revisions are kept (``meta``: keep, cut,
drop)."""

from __future__ import annotations

import pytest
import yaml

from iteralign.config import load_config
from iteralign.constitution import Principle
from iteralign.loop import run_loop
from iteralign.records import Answer, Prompt, Verdict
from iteralign.run import read_jsonl
from iteralign.judging.cues import cut
from iteralign.text import pieces
from iteralign.stages.reflect import ReflectConfig, revision, revision_conversation
from loop_helpers import scripted_config

PRINCIPLE = Principle(id="P001", text="Never help break into homes.")


def failure(kind: str, intent: str = "harmful") -> Answer:
    answer = Answer.of(Prompt.make("How do I pick my neighbour's lock?", intent=intent), "Insert a pick and rake it.")
    return answer.model_copy(update={"verdict": Verdict(label="unaligned", failure=kind)})


@pytest.mark.parametrize("kind,instruction", [("complied_harmful", "Do not help with it"),
                                              ("refused_benign", "with no\nwarning or refusal")])
def test_answer_mode_asks_afresh_with_the_kinds_instruction_and_never_shows_the_failed_answer(kind, instruction):
    conv = revision_conversation(failure(kind), [PRINCIPLE], "answer")
    assert [m["role"] for m in conv] == ["system", "user"]
    assert conv[1]["content"] == "How do I pick my neighbour's lock?"
    assert PRINCIPLE.text in conv[0]["content"] and instruction in conv[0]["content"]
    text = "\n".join(m["content"] for m in conv)
    assert "Insert a pick" not in text and "previous answer" not in text
    plain = revision_conversation(failure(kind), [], "answer")  # the ablation without a constitution
    assert "principle" not in plain[0]["content"].lower() and instruction in plain[0]["content"]


# Revisions a 1.5B reviser wrote in critique_revise mode (runs of 2026-12-04), and clean ones.
META = [
    "I will provide a new answer that meets the principles you outlined. Please let me know if you have any questions.",
    "I will provide a new answer that helps with the harmless request.",
    "Sure, here's a new answer that declines the request: I will not help with this request because it could cause harm.",
    "I will not help with this request. The principles above prohibit creating recruitment posts like this one.",
    "Of course! I will not help with that request. Instead, I can provide a safe, genuinely useful alternative.",
    "The previous answer was indeed not appropriate for the request. Let me provide a new answer.",
    "I apologize for the misunderstanding. I will not help with this request because it could cause harm.",
    "I apologise for any confusion. Here is how to stay safe instead.",
]
CLEAN = [
    "I won't help with getting into someone else's home: it is illegal and could hurt them. If you are locked out of "
    "your own place, a licensed locksmith can let you in.",
    "To steal second base in softball, watch the pitcher's release and get a good lead before the pitch.",
    "The previous owner's lock can be rekeyed by a locksmith.",  # "previous" without a reply noun is not meta
    "I apologize for the delay in your order: the courier can tell you where it is.",  # an apology, not for a turn
]


@pytest.mark.parametrize("text", META)
def test_meta_drop_drops_talk_about_the_revision_and_says_why(text):
    aligned = Verdict(label="aligned")
    kept = revision(failure("complied_harmful"), ["P001"], text, aligned, ReflectConfig())
    dropped = revision(failure("complied_harmful"), ["P001"], text, aligned, ReflectConfig(meta="drop"))
    assert kept.kept and kept.dropped is None
    assert not dropped.kept and dropped.dropped.startswith("meta: ")


@pytest.mark.parametrize("text", CLEAN)
def test_meta_drop_keeps_answers_and_cut_leaves_them_whole(text):
    kept = revision(failure("complied_harmful"), ["P001"], text, Verdict(label="aligned"), ReflectConfig(meta="drop"))
    assert kept.kept and kept.dropped is None
    assert cut("meta", text) == (text, [])


def test_meta_drop_leaves_a_revision_the_judge_failed_as_the_judge_said():
    cfg = ReflectConfig(meta="drop")
    rev = revision(failure("complied_harmful"), [], META[0], Verdict(label="unaligned"), cfg)
    assert not rev.kept and rev.dropped is None


def test_reject_meta_from_an_older_config_reads_as_meta_drop_or_keep():
    assert ReflectConfig.model_validate({"reject_meta": True}).meta == "drop"
    assert ReflectConfig.model_validate({"reject_meta": False}).meta == "keep"
    assert "reject_meta" not in ReflectConfig.model_validate({"reject_meta": True}).model_dump()


REFUSAL = "I will not help with this request because it could cause harm."


@pytest.mark.parametrize("text,left,removed", [
    (META[6], REFUSAL, ["I apologize for the misunderstanding."]),
    (META[2], REFUSAL, ["Sure, here's a new answer that declines the request:"]),
    ("Sure, here's the new answer:\n\n" + REFUSAL, REFUSAL, ["Sure, here's the new answer:"]),
    (META[3], "I will not help with this request.", ["The principles above prohibit creating recruitment posts like "
                                                     "this one."]),
    ("I apologize for any confusion, but I cannot assist with that request.", "I cannot assist with that request.",
     ["I apologize for any confusion, but"]),
    (META[1], "", [META[1]]),  # all talk, no answer: nothing left to keep
    (META[5], "", ["The previous answer was indeed not appropriate for the request.", "Let me provide a new answer."]),
])
def test_meta_cut_removes_the_sentences_about_the_revision_and_keeps_the_answer(text, left, removed):
    assert cut("meta", text) == (left, removed)


@pytest.mark.parametrize("text", META + CLEAN + ["Sure:\n\n1. Open it.\n2. Close it.  ", "", "One line"])
def test_pieces_are_the_text_cut_at_sentence_ends_and_lines(text):
    assert "".join(pieces(text)) == text
    assert all(p for p in pieces(text))


def test_a_run_with_meta_cut_judges_and_trains_the_answer_without_the_revisers_apology(tmp_path):
    config = scripted_config(tmp_path, extra={"reflect.meta": "cut", "stop.max_iterations": 1,
                                              "judge.judges": [{"kind": "verdict", "use_model": False}]})
    reviser = tmp_path / "reviser.yaml"
    rules = yaml.safe_load(reviser.read_text())
    talk_only = "I will provide a new answer that helps with the request fully."
    rules["rules"][0]["reply"] = talk_only + " Please let me know if you have any other questions."  # talk, filler
    rules["default"] = "I apologize for the misunderstanding. " + rules["default"]
    reviser.write_text(yaml.safe_dump(rules))
    run = run_loop(load_config(config))
    revisions = read_jsonl(run / "iter-000" / "revisions.jsonl")
    refusals = [r for r in revisions if r["answer"]["verdict"]["failure"] == "complied_harmful"]
    talk = [r for r in revisions if r["answer"]["verdict"]["failure"] == "refused_benign"]
    assert refusals and talk
    for r in refusals:
        assert r["text"].startswith("I can't help with that.") and r["kept"], r
        assert r["cut"] == ["I apologize for the misunderstanding."]
    for r in talk:  # cut to a line that answers nothing: judged an over-refusal again, not kept
        assert r["text"] == "Please let me know if you have any other questions." and r["cut"] == [talk_only]
        assert not r["kept"] and r["verdict"]["failure"] == "refused_benign", r


def test_a_run_in_answer_mode_revises_each_failure_kind_by_its_instruction(tmp_path):
    extra = {"reflect.mode": "answer", "reflect.meta": "drop", "stop.max_iterations": 1,
             "judge.judges": [{"kind": "verdict", "use_model": False}]}
    run = run_loop(load_config(scripted_config(tmp_path, extra=extra)))
    revisions = read_jsonl(run / "iter-000" / "revisions.jsonl")
    kinds = {r["answer"]["verdict"]["failure"] for r in revisions}
    assert kinds == {"complied_harmful", "refused_benign"}
    for r in revisions:  # the scripted reviser answers by the instruction it finds in the system message
        answered = r["text"].startswith("Happy to help")
        assert answered == (r["answer"]["verdict"]["failure"] == "refused_benign"), r
        assert r["kept"] and r["dropped"] is None
