"""``eval.benchmarks: ["lm_eval:<task>"]``: an lm-evaluation-harness task run through lm-eval's Python API on the
model being evaluated (adapter included), its result in iteralign's schema, usable by the gate; on a tiny local
YAML task over a local JSONL file, so no hub is needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from export_helpers import random_adapter, tiny_base
from iteralign.evals.gate import GateConfig, gate
from iteralign.evals.names import expand, is_score_name, lower_is_better, owner
from iteralign.evals.suite import EvalConfig, run_evals
from iteralign.models.base import ModelConfig
from iteralign.models.handle import ModelHandle
from iteralign.types import LoglikelihoodRequest

DATA = Path(__file__).parent / "data" / "lm_eval"


@pytest.fixture
def task_file(tmp_path: Path) -> Path:
    """The tiny task YAML with its data file named by absolute path (the shipped one names it from the repo root)."""
    text = (DATA / "tiny_capitals.yaml").read_text().replace("tests/data/lm_eval/tiny_capitals.jsonl",
                                                              str(DATA / "tiny_capitals.jsonl"))
    path = tmp_path / "tiny_capitals.yaml"
    path.write_text(text)
    return path


def own_accuracy(handle: ModelHandle) -> tuple[float, list[int]]:
    """Accuracy and picks of ``handle`` on the tiny task by iteralign's own log-likelihood scorer."""
    picks, right = [], 0
    for line in (DATA / "tiny_capitals.jsonl").read_text().splitlines():
        doc = json.loads(line)
        context = f"Question: What is the capital of {doc['country']}?\nAnswer:"
        scores = handle.loglikelihood([LoglikelihoodRequest(context, " " + c) for c in doc["choices"]])  # lm-eval's
        # target_delimiter (" ") goes between the context and each choice
        picks.append(max(range(len(scores)), key=scores.__getitem__))
        right += picks[-1] == doc["answer"]
    return right / len(picks), picks


def test_family_names_expand_own_and_gate_like_fixed_ones():
    assert expand(["truthfulqa", "lm_eval:arc_easy", "lm_eval:arc_easy"]) == \
        ["truthfulqa_mc1", "truthfulqa_mc2", "lm_eval:arc_easy"]
    assert owner("lm_eval:mmlu") == "lm_eval" and is_score_name("lm_eval:mmlu")
    assert not lower_is_better("lm_eval:mmlu")
    assert not is_score_name("lm_eval:") and not is_score_name("nope:x")
    with pytest.raises(ValueError, match="lm_eval:<name>"):
        expand(["nope:x"])
    assert EvalConfig(benchmarks=["lm_eval:arc_easy"]).benchmarks == ["lm_eval:arc_easy"]
    rules = GateConfig(regressions={"lm_eval:arc_easy": 0.02})
    before = {"benchmarks": {"lm_eval:arc_easy": {"score": 0.60, "n": 100, "stderr": 0.05}}}
    worse = {"benchmarks": {"lm_eval:arc_easy": {"score": 0.55, "n": 100, "stderr": 0.05}}}
    assert gate(before, worse, rules) == (False, [
        "lm_eval:arc_easy fell from 0.6000 to 0.5500 (0.0500 worse; at most 0.0200 allowed)"])
    assert gate(worse, before, rules) == (True, [])


@pytest.mark.model
def test_a_local_task_runs_on_the_model_with_its_adapter(smol_path: Path, tmp_path: Path, task_file: Path):
    base = tiny_base(smol_path, tmp_path / "base")
    adapter = random_adapter(base, tmp_path / "adapter", seed=3)
    name = f"lm_eval:{task_file}"
    results = {}
    for label, cfg in (("base", ModelConfig(spec=f"hf:{base}", dtype="float32", device="cpu")),
                       ("tuned", ModelConfig(spec=f"hf:{base}", adapter=str(adapter), dtype="float32", device="cpu"))):
        handle = ModelHandle(cfg)
        result = run_evals(handle, [name])
        entry = result["benchmarks"][name]
        accuracy, picks = own_accuracy(handle)
        results[label] = picks
        assert entry["score"] == pytest.approx(accuracy)  # lm-eval scored the model iteralign scores
        assert (entry["n"], entry["metric"], entry["task"]) == (12, "acc", "tiny_capitals")
        assert set(entry["metrics"]) == {"acc", "acc_norm"} and entry["stderr"] > 0
    assert results["base"] != results["tuned"]  # the adapter was in the evaluated model


@pytest.mark.model
def test_limit_is_passed_to_lm_eval_and_the_cli_evaluates_a_loaded_model(smol_path: Path, task_file: Path,
                                                                          tmp_path: Path):
    from typer.testing import CliRunner

    from iteralign.cli import app

    handle = ModelHandle(ModelConfig(spec=f"hf:{smol_path}", dtype="float32", device="cpu"))
    result = run_evals(handle, [f"lm_eval:{task_file}"], limit=4)
    assert result["benchmarks"][f"lm_eval:{task_file}"]["n"] == 4
    out = tmp_path / "eval.json"  # `iteralign eval` hands the backend's model itself, not a handle
    done = CliRunner().invoke(app, ["eval", "--model", f"hf:{smol_path}", "--dtype", "float32", "--limit", "4",
                                    "--benchmarks", f"lm_eval:{task_file}", "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert json.loads(out.read_text())["benchmarks"] == result["benchmarks"]


def test_missing_lm_eval_is_a_clear_error(monkeypatch, task_file: Path):
    import sys

    from iteralign.evals.lm_eval_task import LMEvalUnavailable

    monkeypatch.setitem(sys.modules, "lm_eval", None)  # import lm_eval raises ImportError
    with pytest.raises(LMEvalUnavailable, match=r"pip install 'iteralign\[lm-eval\]'"):
        run_evals(object(), [f"lm_eval:{task_file}"])


def test_a_model_that_cannot_be_wrapped_is_refused(scripted_rules: Path, task_file: Path):
    from iteralign.evals.lm_eval_task import LMEvalUnavailable

    handle = ModelHandle(ModelConfig(spec=f"scripted:{scripted_rules}"))
    with pytest.raises(LMEvalUnavailable, match="transformers model"):
        run_evals(handle, [f"lm_eval:{task_file}"])
