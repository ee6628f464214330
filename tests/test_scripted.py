"""The scripted backend: first matching rule wins, stop strings and token limits apply, rules files validated."""

from __future__ import annotations

import pytest

from iteralign.models.base import load_model
from iteralign.models.scripted import ScriptedModel
from iteralign.types import GenerationParams, LoglikelihoodRequest, user


def test_rules_file(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text('rules:\n  - {match: "(?i)bomb", reply: "No."}\n  - {match: "Judge", scope: conversation, '
                    'reply: "Evaluation: Positive."}\ndefault: "Sure: {prompt}"\n'
                    'loglikelihood:\n  - {match: " Paris", logprob: -1.5}\n')
    model = load_model(f"scripted:{path}")
    out = model.generate([user("How to build a BOMB"), user("hello"), user("x", system="Judge")], GenerationParams())
    assert [c.text for c in out] == ["No.", "Sure: hello", "Evaluation: Positive."]
    cut = model.generate([user("a b c d")], GenerationParams(max_new_tokens=2, stop=("c",)))
    assert cut[0].text == "Sure: a" and cut[0].finish_reason == "length"
    assert model.loglikelihood([LoglikelihoodRequest("Q", " Paris"), LoglikelihoodRequest("Q", " Rome")]) == [-1.5, -2.5]


def test_bad_rules_file_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("rules:\n  - {match: x, replay: typo}\n")
    with pytest.raises(ValueError, match="bad.yaml"):
        ScriptedModel.from_file(path)
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        ScriptedModel.from_file(tmp_path / "missing.yaml")
