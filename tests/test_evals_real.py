"""`iteralign eval` end to end on the real SmolLM2-135M-Instruct and the shared benchmark files (tiny limits)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from iteralign.cli import app
from iteralign.data.benchmarks import default_benchmarks_dir

pytestmark = [pytest.mark.model,
              pytest.mark.skipif(default_benchmarks_dir() is None, reason="no ../shared/benchmarks folder")]


@pytest.mark.slow  # ~2 min on the shared 2-core machine (model load, 3 benchmarks, generation)
def test_cli_eval_writes_table_and_json(smol_path, tmp_path):
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(app, [
        "eval", "--model", "offline:smollm2-135m-instruct", "--dtype", "float32", "--limit", "2",
        "--benchmarks", "truthfulqa_mc2,hhh_harmless,xstest_safe_refusal", "--max-new-tokens", "8",
        "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "truthfulqa_mc2" in result.output and "hhh_harmless" in result.output
    data = json.loads(out.read_text())
    assert data["model"] == "offline:smollm2-135m-instruct"
    assert list(data["benchmarks"]) == ["truthfulqa_mc2", "hhh_harmless", "xstest_safe_refusal"]
    for entry in data["benchmarks"].values():
        assert entry["n"] == 2 and 0.0 <= entry["score"] <= 1.0 and entry["stderr"] >= 0.0
    assert 0.0 < data["benchmarks"]["truthfulqa_mc2"]["score"] < 1.0  # real probabilities, not a degenerate 0/1
    replies = [json.loads(line) for line in (tmp_path / "eval.replies.jsonl").read_text().splitlines()]
    assert len(replies) == 2 and all(r["reply"].strip() for r in replies)


def test_cli_eval_rejects_unknown_benchmark():
    result = CliRunner().invoke(app, ["eval", "--model", "scripted:none.yaml", "--benchmarks", "mmlu"])
    assert result.exit_code != 0 and "unknown benchmark" in result.output
