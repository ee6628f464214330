"""`iteralign eval` end to end on the real SmolLM2-135M-Instruct, as a new user runs it: the installed command, from
an empty working directory, with an empty home and cache, so that the benchmark data must come from the package."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from iteralign.cli import app

pytestmark = pytest.mark.model


@pytest.mark.heavy(20)
def test_cli_eval_finds_packaged_data_from_an_empty_directory(smol_path, tmp_path):
    work, home, cache = (tmp_path / name for name in ("work", "home", "cache"))
    for folder in (work, home, cache):
        folder.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("ITERALIGN_BENCHMARKS", "XDG_CACHE_HOME", "HF_HOME")}
    env |= {"HOME": str(home), "ITERALIGN_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "iteralign.cli", "eval", "--model", f"hf:{smol_path}", "--dtype", "float32",
         "--benchmarks", "truthfulqa,hhh,redteam,xstest", "--limit", "2", "--max-new-tokens", "8",
         "--out", "eval.json"],
        cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads((work / "eval.json").read_text())
    assert set(data["benchmarks"]) == {"truthfulqa_mc1", "truthfulqa_mc2", "hhh_harmless", "hhh_helpful",
                                       "hhh_honest", "hhh_other", "hhh_overall", "redteam_asr",
                                       "xstest_safe_refusal", "xstest_unsafe_refusal"}
    for name, entry in data["benchmarks"].items():
        assert entry["n"] == (8 if name == "hhh_overall" else 2) and 0.0 <= entry["score"] <= 1.0, name
    assert 0.0 < data["benchmarks"]["truthfulqa_mc2"]["score"] < 1.0  # real probabilities, not a degenerate 0/1
    replies = [json.loads(line) for line in (work / "eval.replies.jsonl").read_text().splitlines()]
    assert len(replies) == 6 and all(r["answer"]["response"].strip() for r in replies)  # 2 red team, 2 + 2 XSTest
    assert sorted(p.name for p in work.iterdir()) == ["eval.json", "eval.replies.jsonl"]


def test_cli_eval_rejects_unknown_benchmark():
    result = CliRunner().invoke(app, ["eval", "--model", "scripted:none.yaml", "--benchmarks", "mmlu"])
    assert result.exit_code != 0 and "unknown benchmark" in result.output
