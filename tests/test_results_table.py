"""bench/results_table.py prints every table RESULTS.md has, from run folders: checked on run folders built here
with scores that are exact fractions of 60, as the study's were."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from iteralign.records import Answer, Prompt, Revision, Verdict

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("results_table", REPO / "bench" / "results_table.py")
results_table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(results_table)

SCORES = ("redteam_asr", "xstest_safe_refusal", "xstest_unsafe_refusal", "hhh_helpful", "hhh_honest")


def revision(i: int, kept: bool, aligned: bool) -> dict:
    """A revision record as the reflect stage writes it."""
    answer = Answer.of(Prompt.make(f"request {i}", intent="harmful"), "Sure, here is how.")
    verdict = Verdict(label="aligned" if aligned else "unaligned")
    return Revision(id=answer.id, answer=answer, text="I can't help with that.", verdict=verdict, kept=kept).to_json()


def make_run(root: Path, name: str, rows: list[tuple[int, ...]], revisions: list[tuple[int, int, int]]) -> Path:
    """A run folder: ``rows`` = (ASR, safe refusal, unsafe refusal, helpful, honest) in 60ths, baseline first;
    ``revisions`` = (made, kept, judged aligned) per iteration."""
    run = root / name
    iterations = []
    for index, counts in enumerate(rows):
        folder = run / ("baseline" if index == 0 else f"iter-{index - 1:03d}")
        folder.mkdir(parents=True)
        benchmarks = {b: {"score": k / 60, "n": 60} for b, k in zip(SCORES, counts)}
        (folder / "eval.json").write_text(json.dumps({"model": "m", "benchmarks": benchmarks}))
        if index:
            made, kept, aligned = revisions[index - 1]
            (folder / "revisions.jsonl").write_text("".join(
                json.dumps(revision(i, kept=i < kept, aligned=i < aligned)) + "\n" for i in range(made)))
            iterations.append({"iteration": index - 1, "red_team": 48, "failures": made, "principles": 5 * index,
                               "revisions": made, "revisions_kept": kept, "accepted": True})
    (run / "manifest.json").write_text(json.dumps({"stages": {}, "iterations": iterations}))
    (run / "config.yaml").write_text("models: {target: {spec: 'offline:x'}}\n")
    return run


QWEN = [(20, 26, 46, 17, 24), (12, 39, 50, 18, 24), (10, 32, 50, 19, 23), (9, 31, 50, 19, 22)]


def test_per_run_table_prints_the_default_gate_and_asr_plus_safe_refusal(tmp_path):
    run = results_table.collect(make_run(tmp_path, "q", QWEN, [(27, 27, 27), (2, 1, 1), (5, 5, 5)]))
    text = results_table.table(run, ["pool", "principles", "revisions", "default-gate", "sum"])
    lines = text.splitlines()
    assert lines[0].endswith("| pool failures | principles | revisions kept | default gate | ASR + safe refusal |")
    assert [line.split(" | ")[-2:] for line in lines[2:]] == [
        ["–", "0.767 |"],  # baseline: 20/60 + 26/60
        ["rejects (+21.7 pts)", "0.850 |"],  # 0.433 -> 0.650 against the baseline
        ["accepts", "0.700 |"],  # +10.0 points against the baseline, the last model accepted: within the limit
        ["accepts", "0.667 |"],  # against iteration 2, now the reference
    ]
    assert lines[3].startswith("| after iteration 1 | 0.200 | 0.650 | 0.833 |")  # no per-source ASR: no column
    assert "ASR AdvBench" not in lines[0] and "look-alike refusal" not in lines[0]
    assert lines[3].split(" | ")[6:9] == ["27/48", "5", "27/27"]


def test_targets_table_measures_each_iteration_against_the_start(tmp_path):
    rows = [(58, 0, 0, 20, 24), (48, 7, 5, 20, 23), (30, 35, 41, 21, 23), (40, 19, 18, 20, 23)]
    run = results_table.collect(make_run(tmp_path, "s", rows, [(48, 47, 47)] * 3))
    assert results_table.targets(run).splitlines() == [
        "|  | ASR (target <= 0.483) | XSTest safe refusal (target <= 0.100) | HHH helpful (0.333 +- 0.03) "
        "| HHH honest (0.400 +- 0.03) | all met? |",
        "|---|---|---|---|---|---|",
        "| iteration 1 | 0.800: missed by 0.317 | 0.117: missed by 0.017 | 0.333 ok | 0.383 ok | no |",
        "| iteration 2 | 0.500: missed by 0.017 | 0.583: missed by 0.483 | 0.350 ok | 0.383 ok | no |",
        "| iteration 3 | 0.667: missed by 0.183 | 0.317: missed by 0.217 | 0.333 ok | 0.383 ok | no |",
    ]


def test_ablation_table_shares_one_start_row_and_counts_judged_revisions(tmp_path):
    base = (58, 0, 0, 20, 24)
    a = make_run(tmp_path, "a", [base, (48, 7, 5, 20, 23)], [(48, 47, 47)])
    b = make_run(tmp_path, "b", [base, (58, 0, 0, 20, 23)], [(48, 48, 32)])
    text = results_table.ablation([("default", results_table.collect(a)), ("paper", results_table.collect(b))])
    assert text.splitlines()[2:] == [
        "| (start, both) | – | 0.967 | 0.000 | 0.000 | 0.333 | 0.400 | – | 0.967 | – |",
        "| default | 1 | 0.800 | 0.117 | 0.083 | 0.333 | 0.383 | 47/48 (47) | 0.917 | accepted |",
        "| paper | 1 | 0.967 | 0.000 | 0.000 | 0.333 | 0.383 | 48/48 (32) | 0.967 | accepted |",
    ]
    assert "look-alike refusal" not in text and "TQA MC1" not in text  # measured by neither run: no column


def test_unknown_facts_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit):
        results_table.main([str(tmp_path), "--facts", "pool,nope"])
    assert "nope" in capsys.readouterr().err
