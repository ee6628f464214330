"""Multiple-choice scoring (TruthfulQA MC1/MC2, BIG-bench HHH) on a hand-built scorer whose log-probs are known."""

from __future__ import annotations

import json
import math

import pytest

from iteralign.evals import hhh, truthfulqa
from iteralign.evals.multiple_choice import MCItem, grade, loglikelihoods, mc2, top_choice, true_mass
from iteralign.evals.sources import BenchmarkDataError
from iteralign.evals.stats import accuracy, mean
from iteralign.models.base import Scorer
from iteralign.types import LoglikelihoodRequest


class TableScorer(Scorer):
    """Log-likelihood from a table keyed by continuation (stripped); records every request it is sent."""

    def __init__(self, table: dict[str, float]):
        self.table = table
        self.seen: list[LoglikelihoodRequest] = []

    def loglikelihood(self, requests):
        self.seen += requests
        return [self.table[r.continuation.strip()] for r in requests]


QUESTIONS = [
    {"question": "Q1?", "mc1": [("a", 1), ("b", 0), ("c", 0)], "mc2": [("a", 1), ("a2", 1), ("b", 0), ("c", 0)]},
    {"question": "Q2?", "mc1": [("d", 1), ("e", 0)], "mc2": [("d", 1), ("e", 0), ("f", 0)]},
]
TABLE = {"a": math.log(0.2), "a2": math.log(0.3), "b": math.log(0.4), "c": math.log(0.1),
         "d": -1.0, "e": -2.0, "f": -1.0}


def test_truthfulqa_mc1_mc2_on_known_logprobs():
    scorer = TableScorer(TABLE)
    out = truthfulqa.evaluate(scorer, QUESTIONS, progress=False)
    # MC1: Q1 top choice is "b" (wrong), Q2 top is "d" (right) -> 0.5
    assert out["truthfulqa_mc1"].score == 0.5 and out["truthfulqa_mc1"].n == 2
    # MC2: Q1 mass (0.2 + 0.3) / 1.0 = 0.5; Q2 e^-1 / (2 e^-1 + e^-2)
    q2 = math.exp(-1) / (2 * math.exp(-1) + math.exp(-2))
    assert out["truthfulqa_mc2"].score == pytest.approx((0.5 + q2) / 2)
    # MC1 and MC2 share requests: each distinct (context, continuation) is scored once
    assert len(scorer.seen) == len(set(scorer.seen)) == 7


def test_truthfulqa_prompt_is_lm_eval_format():
    item = truthfulqa.items(QUESTIONS, "mc1")[0]
    assert item.context.startswith("Q: What is human life expectancy in the United States?\nA: Human life")
    assert item.context.endswith("A: The 1992 Olympics were held in Barcelona, Spain.\n\nQ: Q1?\nA:")
    assert item.context.count("\n\nQ: ") == 6  # six shots, then the question
    assert item.choices == (" a", " b", " c") and item.labels == (1.0, 0.0, 0.0)


def test_mc2_normalises_over_all_choices_and_is_shift_invariant():
    lls = [-1000.0, -1001.0, -1000.0]  # exp() underflows to 0 without the max shift
    assert true_mass(lls, [1, 0, 0]) == pytest.approx(1 / (2 + math.exp(-1)))
    assert true_mass([x + 7 for x in lls], [1, 0, 0]) == pytest.approx(true_mass(lls, [1, 0, 0]))
    assert true_mass([-3.0, -3.0], [1, 1]) == pytest.approx(1.0)
    assert true_mass([-3.0, -3.0], [0, 0]) == 0.0


def test_ties_go_to_the_first_choice_like_argmax():
    assert top_choice([-1.0, -1.0, -2.0]) == 0
    assert top_choice([-2.0, -1.0, -1.0]) == 1


def test_stderr_binomial_and_sample():
    acc = accuracy([1, 1, 0, 0, 1, 0, 1, 1])
    assert acc.score == 0.625 and acc.stderr == pytest.approx(math.sqrt(0.625 * 0.375 / 8))
    m = mean([0.2, 0.4, 0.9])
    sd = math.sqrt(sum((x - 0.5) ** 2 for x in [0.2, 0.4, 0.9]) / 2)
    assert m.score == pytest.approx(0.5) and m.stderr == pytest.approx(sd / math.sqrt(3))
    assert mean([0.3]).stderr == 0.0
    with pytest.raises(ValueError):
        accuracy([])


def test_grade_uses_target_scores_and_mc2_aggregates():
    items = [MCItem("c", (" x", " y"), (1, 0)), MCItem("c", (" x", " y"), (0, 1))]
    lls = [[-1.0, -2.0], [-1.0, -2.0]]
    assert grade(items, lls).score == 0.5
    assert mc2(items, lls).score == pytest.approx(0.5)  # p and 1 - p average to 0.5


def test_loglikelihoods_chunks_and_restores_order():
    items = [MCItem(f"ctx{i}", (" a", " bb", " ccc"), (1, 0, 0)) for i in range(5)]
    scorer = TableScorer({"a": -1.0, "bb": -2.0, "ccc": -3.0})
    calls = []
    orig = scorer.loglikelihood
    scorer.loglikelihood = lambda reqs: calls.append(len(reqs)) or orig(reqs)
    lls = loglikelihoods(scorer, items, chunk_size=4, progress=False)
    assert lls == [[-1.0, -2.0, -3.0]] * 5
    assert calls == [4, 4, 4, 3]


def test_non_scorer_is_rejected_clearly():
    with pytest.raises(TypeError, match="Scorer"):
        loglikelihoods(object(), [MCItem("c", (" a", " b"), (1, 0))], progress=False)


def _write_hhh(root, cat, examples):
    (root / "bigbench_hhh" / cat).mkdir(parents=True)
    task = {"examples": [{"input": q, "target_scores": ts} for q, ts in examples]}
    (root / "bigbench_hhh" / cat / "task.json").write_text(json.dumps(task))


def test_hhh_categories_and_overall(tmp_path):
    _write_hhh(tmp_path, "harmless", [("hurt?", {"no": 1, "yes": 0}), ("steal?", {"refuse": 1, "sure": 0})])
    _write_hhh(tmp_path, "honest", [("sky?", {"blue": 1, "green": 0})])
    items = hhh.load_items(tmp_path, categories=("harmless", "honest"))
    assert items[0].context == "\nHuman: hurt?\nAssistant:" and items[0].choices == (" no", " yes")
    scorer = TableScorer({"no": -1.0, "yes": -2.0, "refuse": -3.0, "sure": -1.0, "blue": -0.5, "green": -0.1})
    out = hhh.evaluate(scorer, items, progress=False)
    assert out["hhh_harmless"].score == 0.5 and out["hhh_harmless"].n == 2
    assert out["hhh_honest"].score == 0.0
    assert out["hhh_overall"].score == pytest.approx(1 / 3) and out["hhh_overall"].n == 3


def test_limit_applies(tmp_path):
    (tmp_path / "truthfulqa").mkdir()
    data = [{"question": f"q{i}", "mc1_targets": {"t": 1, "f": 0}, "mc2_targets": {"t": 1, "f": 0}} for i in range(9)]
    (tmp_path / "truthfulqa" / "mc_task.json").write_text(json.dumps(data))
    assert len(truthfulqa.load_questions(tmp_path, limit=4)) == 4
    assert len(truthfulqa.load_questions(tmp_path)) == 9


def test_missing_data_names_what_was_looked_for(tmp_path, monkeypatch):
    from iteralign.data import benchmark_files

    monkeypatch.setattr(benchmark_files, "packaged_dir", lambda: tmp_path / "no-package-copy")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(BenchmarkDataError) as err:
        truthfulqa.load_questions(tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "truthfulqa" / "mc_task.json") in msg and "truthfulqa/truthful_qa" in msg
    with pytest.raises(BenchmarkDataError, match="hhh_alignment"):
        hhh.load_items(tmp_path, categories=("helpful",))


def test_malformed_data_names_the_file(tmp_path):
    (tmp_path / "truthfulqa").mkdir()
    (tmp_path / "truthfulqa" / "mc_task.json").write_text(json.dumps([{"question": "q"}]))
    with pytest.raises(ValueError, match="mc_task.json"):
        truthfulqa.load_questions(tmp_path)
