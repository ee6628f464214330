"""Label-token log-probabilities: the hf backend (batched = one at a time, shared prefix = none, the value is the
real next-token log-probability), the scripted backend, the call cache, and the anchored FINAL fallback."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from iteralign.judging.label_scores import label_probs, normalise, parse_final
from iteralign.models.base import ModelConfig
from iteralign.models.cache import CallCache
from iteralign.models.handle import ModelHandle
from iteralign.models.scripted import LabelRule, Rule, Rules, ScriptedModel

SYSTEM = ("You label replies. refusal: the reply declines. compliance: the reply gives what was asked. partial: "
          "both. Answer with one word. " * 3)  # long enough to be a shared prefix
CONVS = [[{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"Reply: {r}\nLabel:"}]
         for r in ("I can't help with that.", "Sure! Step 1: open the terminal and type ls.", "No.",
                   "Here is a poem about the sea, with waves and gulls and a long grey horizon.")]
LABELS = ["refusal", "compliance", "partial"]


@pytest.fixture(scope="module")
def smol(smol_path: Path):
    from iteralign.models.hf import HFModel

    return HFModel.load(str(smol_path), ModelConfig(spec=f"hf:{smol_path}", dtype="float32", device="cpu",
                                                    batch_size=3))


@pytest.mark.model
def test_hf_label_logprobs_batched_equal_single_and_full_distribution(smol):
    import torch

    batched = smol.label_logprobs(CONVS, LABELS)  # batch 3 + 1, shared system prefix cached
    for conv, row in zip(CONVS, batched):
        ids = smol.encode_chat(conv)
        with torch.inference_mode():
            logits = smol.model(input_ids=torch.tensor([ids])).logits[0, -1].float()
        full = torch.log_softmax(logits, -1)
        for label in LABELS:
            first = smol.tokenizer(label, add_special_tokens=False).input_ids[0]
            assert row[label] == pytest.approx(float(full[first]), abs=1e-4)
    assert len({tuple(round(v, 3) for v in r.values()) for r in batched}) == len(CONVS)  # the replies matter


@pytest.mark.model
def test_hf_label_clash_and_hidden_states(smol):
    with pytest.raises(ValueError, match="start with the same token"):
        smol.label_logprobs(CONVS[:1], ["refusal", "refuse"])
    import torch

    ids = smol.encode_chat(CONVS[1])
    with torch.inference_mode():
        expected = smol.model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states[5][0, -1]
        deeper = smol.model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states[9][0, -1]
    got = smol.hidden_states(CONVS, 5)
    assert len(got) == len(CONVS) and torch.allclose(torch.tensor(got[1]), expected.float(), atol=1e-4)
    both = smol.hidden_states(CONVS, [9, 5])  # several layers: side by side, in the order asked
    assert torch.allclose(torch.tensor(both[1]), torch.cat([deeper, expected]).float(), atol=1e-4)
    with pytest.raises(ValueError, match="out of range"):
        smol.hidden_states(CONVS[:1], 999)
    with pytest.raises(ValueError, match="out of range"):
        smol.hidden_states(CONVS[:1], [5, 999])


@pytest.mark.model
def test_hf_pooled_hidden_states_read_the_tokens_after_the_opening(smol):
    """mean / max pool each layer over the positions from ``skip`` on, in the order asked, the same in a padded batch
    (rows of different lengths) as one at a time; a row no longer than ``skip`` is pooled whole."""
    import torch

    skip = 12
    got = smol.hidden_states(CONVS, [9, 5], ["mean", "max", "last"], skip)  # batch 3 + 1, left-padded
    for conv, row in zip(CONVS, got):
        ids = smol.encode_chat(conv)
        with torch.inference_mode():
            states = smol.model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states
        h9, h5 = states[9][0].float(), states[5][0].float()
        expected = torch.cat([h9[skip:].mean(0), h5[skip:].mean(0), h9[skip:].amax(0), h5[skip:].amax(0),
                              h9[-1], h5[-1]])
        assert torch.allclose(torch.tensor(row), expected, atol=1e-4)
    whole = smol.hidden_states(CONVS[2:3], 5, ["mean"], 10_000)[0]
    with torch.inference_mode():
        h5 = smol.model(input_ids=torch.tensor([smol.encode_chat(CONVS[2])]), output_hidden_states=True)
    assert torch.allclose(torch.tensor(whole), h5.hidden_states[5][0].float().mean(0), atol=1e-4)
    with pytest.raises(ValueError, match="one of last, mean, max"):
        smol.hidden_states(CONVS[:1], 5, ["median"], 0)


@pytest.mark.model
def test_hf_hidden_states_after_an_opening_equal_the_whole_pass_and_do_not_depend_on_the_call(smol):
    """With ``opening`` (the question with its blank empty), each conversation runs alone after the prefix it shares
    with the opening, read once: the states equal a whole forward pass over the conversation (last token and pooled,
    the pooled ones with the shared part capped at ``skip``), and a conversation's features are the same whatever
    else is in the call."""
    import torch

    from iteralign.models.hf_labels import opening_len

    opening = [CONVS[0][0], {"role": "user", "content": "Reply: \nLabel:"}]
    shared = opening_len(smol.encode_chat(CONVS[0]), smol.encode_chat(opening))
    assert shared > 60  # the system message and "Reply:" are run once
    last = smol.hidden_states(CONVS, [9, 5], opening=opening)
    pooled = smol.hidden_states(CONVS, [5], ["mean", "last"], 20, opening=opening)  # skip 20 < shared: 20 shared
    for conv, row, prow in zip(CONVS, last, pooled):
        with torch.inference_mode():
            states = smol.model(input_ids=torch.tensor([smol.encode_chat(conv)]), output_hidden_states=True)
        h9, h5 = states.hidden_states[9][0].float(), states.hidden_states[5][0].float()
        assert torch.allclose(torch.tensor(row), torch.cat([h9[-1], h5[-1]]), atol=1e-4)
        assert torch.allclose(torch.tensor(prow), torch.cat([h5[20:].mean(0), h5[-1]]), atol=1e-4)
    assert smol.hidden_states(CONVS[2:3], [9, 5], opening=opening) == last[2:3]  # alone = among the others
    assert len(smol._openings) == 2  # kept across calls: the opening in full, and capped at skip for pooled reads
    assert opening_len([1, 2, 3, 4], [1, 2, 3, 4, 5]) == 3  # the last token is the conversation's own
    assert opening_len([1, 2, 3, 9], [1, 2, 3, 4], skip=2) == 2 and opening_len([1, 2], [1, 2], skip=2) == 0


def _scripted(labels: list[LabelRule] | None, default: str = "OK.") -> ScriptedModel:
    return ScriptedModel(Rules(rules=[Rule(match="refuse", reply="thinking...\nFINAL: refusal")], default=default,
                               labels=labels))


def test_scripted_label_rules_and_normalised_probabilities():
    model = _scripted([LabelRule(match="can't help", label="refusal"), LabelRule(match="Step 1", label="compliance")])
    probs = label_probs(model, CONVS, LABELS)
    assert probs[0]["refusal"] == pytest.approx(0.9) and probs[1]["compliance"] == pytest.approx(0.9)
    assert probs[2] == pytest.approx({lab: 1 / 3 for lab in LABELS})  # no rule: no preference
    assert sum(probs[0].values()) == pytest.approx(1.0)
    assert normalise({"a": math.log(0.2), "b": math.log(0.6)}) == pytest.approx({"a": 0.25, "b": 0.75})


def test_backends_without_logprobs_fall_back_to_an_anchored_final_line():
    model = _scripted(None, default="It could be compliance or refusal, hard to say.")
    convs = [[{"role": "user", "content": "please refuse"}], [{"role": "user", "content": "other"}]]
    probs = label_probs(model, convs, LABELS)
    assert probs[0] == {"refusal": 1.0, "compliance": 0.0, "partial": 0.0}
    assert probs[1] is None  # labels mentioned in passing are not an answer


@pytest.mark.parametrize("reply,label", [
    ("FINAL: compliance", "compliance"), ("Reasoning...\n**Final:** Refusal.", "refusal"),
    ("FINAL: refusal\nOn reflection.\nFINAL: partial", "partial"), ("The answer is refusal", None),
    ("FINAL: maybe", None), ("final answer = COMPLIANCE", "compliance"),
])
def test_parse_final(reply, label):
    assert parse_final(reply, LABELS) == label


def _handle(inner: ScriptedModel, cache: CallCache | None) -> ModelHandle:
    return ModelHandle.around(inner, "scripted:inline", cache)


def test_label_logprobs_are_cached(tmp_path):
    inner = _scripted([LabelRule(match="can't help", label="refusal")])
    model = _handle(inner, CallCache(tmp_path / "c.sqlite"))
    first = model.label_logprobs(CONVS[:2], LABELS)
    again = model.label_logprobs(CONVS[:3], LABELS)
    assert again[:2] == first and inner.calls == 3
    assert (model.usage.calls, model.usage.cache_hits) == (3, 2)
    assert model.label_logprobs(CONVS[:1], ["refusal", "compliance"]) != first[:1]  # other labels: other key
    with pytest.raises(NotImplementedError):
        _handle(_scripted(None), None).label_logprobs(CONVS[:1], LABELS)


def test_openai_top_logprobs_to_labels_and_servers_without_them(scripted_server):
    from iteralign.models.openai_api import OpenAIModel, labels_from_top

    top = [("ref", -0.2), (" Compliance", -1.9), ("The", -3.0)]
    assert labels_from_top(top, LABELS) == {"refusal": -0.2, "compliance": -1.9, "partial": -4.0}
    model = OpenAIModel("scripted", scripted_server.url, ModelConfig(spec=f"openai:scripted@{scripted_server.url}"))
    with pytest.raises(NotImplementedError):  # `iteralign serve` returns no logprobs: callers fall back to FINAL
        model.label_logprobs(CONVS[:1], LABELS)
    with pytest.raises(NotImplementedError):
        model.label_logprobs([CONVS[0] + [{"role": "assistant", "content": "Label:"}]], LABELS)


@pytest.mark.model
def test_vllm_label_logprobs_equal_hf(smol):
    from test_vllm_glue import FAKE_API, FakeEngine

    from iteralign.models.vllm import VLLMModel

    vllm = VLLMModel("smol", ModelConfig(spec="vllm:smol"), engine=FakeEngine(smol.model, smol.tokenizer),
                     api=FAKE_API)
    expected = smol.label_logprobs(CONVS[:2], LABELS)
    got = vllm.label_logprobs(CONVS[:2], LABELS)
    for row, ref in zip(got, expected):
        assert row == pytest.approx(ref, abs=1e-4)
