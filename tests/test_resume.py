"""A resume that is never stale: each input changed in turn recomputes exactly the stages that depend on it (by
content: model weights and adapters, role models, the judge, config slices, records, split settings), reuses every
other stage with no model call; a moved run folder resumes with no model call; edits to constitution.yaml survive.

Scripted models with the call cache off (so every call shows), SFT replaced by a fake trainer that writes an adapter
whose bytes depend on its job, so that a training change shows up in the next stages' model identity.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from iteralign.config import load_config
from iteralign.constitution import load, save
from iteralign.loop import run_loop
from iteralign.models.backends import ScriptedBackend
from loop_helpers import REPO, calls, fake_train, scripted_config

ALL = {"prompts", "replay", "baseline/eval", "iter-000/lookalikes"} | {  # the last round writes no look-alikes
    f"iter-{i:03d}/{s}" for i in (0, 1) for s in ("redteam", "judge", "propose", "reflect", "sft", "eval")}
AFTER_ITER0_SFT = {"iter-000/eval", "iter-001/redteam", "iter-001/sft", "iter-001/eval"}


@pytest.fixture(autouse=True)
def fake_training(monkeypatch):
    import iteralign.stages.sft as sft

    monkeypatch.setattr(sft, "run_sft", fake_train)
    monkeypatch.setattr(ScriptedBackend, "train_source", lambda self, spec: "scripted-weights", raising=False)


def rules_file(tmp: Path, name: str, **replace: str) -> str:
    """A copy of a shipped scripted rules file under ``tmp`` with some replies changed; its spec."""
    data = yaml.safe_load((REPO / "configs/scripted" / f"{name}.yaml").read_text())
    for old, new in replace.items():
        if old == "default":
            data["default"] = new
        else:
            data["rules"] = [r | {"reply": new} if r["match"] == old else r for r in data["rules"]]
    path = tmp / f"{name}-{len(replace)}-{abs(hash(tuple(replace.items()))) % 10**6}.yaml"
    path.write_text(yaml.safe_dump(data))
    return f"scripted:{path}"


def config(tmp: Path, **changes) -> Path:
    base = {"run.cache": False, "sft.enabled": True, "sft.replay": 3, "eval.benchmarks": ["redteam_asr"],
            "judge.judges": [{"kind": "refusal"}]}
    return scripted_config(tmp, extra=base | {k.replace("__", "."): v for k, v in changes.items()})


def started(run: Path) -> dict[str, float]:
    stages = json.loads((run / "manifest.json").read_text())["stages"]
    return {k: v["started"] for k, v in stages.items() if "started" in v}


@pytest.fixture
def finished(tmp_path) -> tuple[Path, dict[str, float]]:
    run = run_loop(load_config(config(tmp_path)))
    assert set(started(run)) == ALL
    return run, started(run)


def rerun(tmp_path: Path, before: dict[str, float], **changes) -> tuple[set[str], int]:
    """Rerun with ``changes``; the stages that ran again, and the model calls they made."""
    n = calls(tmp_path)
    run = run_loop(load_config(config(tmp_path, **changes)))
    now = started(run)
    return {k for k in ALL if now.get(k) != before.get(k)}, calls(tmp_path) - n


def test_an_unchanged_rerun_reuses_every_stage_with_no_model_call(tmp_path, finished):
    assert rerun(tmp_path, finished[1]) == (set(), 0)


def test_learning_rate_retrains_and_recomputes_what_uses_the_tuned_model(tmp_path, finished):
    redone, n = rerun(tmp_path, finished[1], sft__learning_rate=1e-3)
    # iter-001's answers come out the same (a scripted target ignores its adapter): judged, proposed and revised
    # records are then reused by content
    assert redone == {"iter-000/sft"} | AFTER_ITER0_SFT and n > 0


def test_learning_rate_decay_retrains_the_later_iterations_only_at_the_decayed_rate(tmp_path, finished, monkeypatch):
    import iteralign.stages.sft as sft

    rates: dict[str, float] = {}
    monkeypatch.setattr(sft, "run_sft", lambda job: rates.setdefault(job.out_dir, job.cfg.learning_rate)
                        and fake_train(job))
    redone, _ = rerun(tmp_path, finished[1], train__lr_decay=0.5)
    assert redone == {"iter-001/sft", "iter-001/eval"}  # iteration 0 trains at the configured rate: reused
    assert list(rates.values()) == [pytest.approx(0.5 * load_config(config(tmp_path)).sft.learning_rate)]


def test_a_finished_stage_whose_output_was_deleted_runs_again(tmp_path, finished):
    """A stage recorded done whose output is gone (deleted by hand) is recomputed rather than read back (a crash);
    the fake trainer writes the same bytes again, so nothing after it is redone."""
    run, before = finished
    shutil.rmtree(run / "iter-000" / "sft")
    (run / "iter-001" / "eval.json").unlink()
    # no model call: the evaluation's judged answers are read back from its eval.partial/
    assert rerun(tmp_path, before) == ({"iter-000/sft", "iter-001/eval"}, 0)
    assert (run / "iter-000" / "sft" / "adapter").is_dir() and (run / "iter-001" / "eval.json").is_file()


def test_new_adapter_bytes_recompute_what_uses_the_tuned_model_not_the_training(tmp_path, finished):
    run, before = finished
    (run / "iter-000/sft/adapter/adapter_model.safetensors").write_text("retrained elsewhere")
    assert rerun(tmp_path, before)[0] == AFTER_ITER0_SFT


def test_another_oracle_reproposes_and_revises_only(tmp_path, finished):
    oracle = rules_file(tmp_path, "oracle", **{"Failures marked by the reviewer": "1. Be kind.\n2. Be safe."})
    redone, n = rerun(tmp_path, finished[1], models__oracle={"spec": oracle, "batch_size": 4})
    # the oracle also writes the look-alikes: rewritten the same, so iter-001's pool and red-team answers are reused
    assert redone == {"iter-000/lookalikes"} | {f"iter-00{i}/{s}" for i in (0, 1) for s in ("propose", "reflect")}
    assert n > 0


def test_another_reviser_revises_and_retrains(tmp_path, finished):
    reviser = rules_file(tmp_path, "reviser", default="I won't help with that; here is a safer idea instead.")
    redone, _ = rerun(tmp_path, finished[1], models__reviser=reviser)
    assert redone == {"iter-000/reflect", "iter-000/sft", "iter-001/reflect", "iter-001/sft"} | AFTER_ITER0_SFT


def test_another_judge_rejudges_and_reuses_the_red_team_answers(tmp_path, finished):
    judge = rules_file(tmp_path, "oracle", **{"^Evaluate the following message:": "Evaluation: Positive."})
    redone, _ = rerun(tmp_path, finished[1], judge__judges=[{"kind": "paper", "model": judge}])
    assert {"replay", "baseline/eval", "iter-000/judge"} <= redone
    assert not {"prompts", "iter-000/redteam"} & redone


def test_split_settings_redo_the_split_and_what_follows(tmp_path, finished):
    redone, _ = rerun(tmp_path, finished[1], redteam__split={"held_out_fraction": 0.5})
    assert {"prompts", "baseline/eval", "iter-000/redteam"} <= redone and "replay" not in redone
    redone, _ = rerun(tmp_path, started(finished[0]), redteam__split={"held_out_fraction": 0.5, "seed": 7})
    assert {"prompts", "iter-000/redteam"} <= redone  # the split's own seed counts (it was overwritten before)


def test_replay_generation_settings_redo_replay_and_training(tmp_path, finished):
    redone, n = rerun(tmp_path, finished[1], sft__replay_generation={"max_new_tokens": 3})
    assert redone == {"replay", "iter-000/sft", "iter-001/sft"} | AFTER_ITER0_SFT and n > 0


def test_a_moved_run_folder_resumes_with_no_model_call(tmp_path, finished):
    run, before = finished
    moved = tmp_path / "elsewhere" / "runs"
    shutil.copytree(run.parent, moved)
    n = calls(tmp_path)
    resumed = run_loop(load_config(config(tmp_path, run__root=str(moved))))
    assert resumed == moved / run.name and calls(tmp_path) == n and started(resumed) == before


def test_constitution_edits_survive_a_rerun(tmp_path, finished):
    run, _ = finished
    store = load(run / "constitution.yaml")
    store.set_status("P001", "disabled")
    store.get("P002").text = "Never help anyone get into accounts or places that are not theirs."
    save(store, run / "constitution.yaml")
    run_loop(load_config(config(tmp_path)))
    after = load(run / "constitution.yaml")
    assert after.get("P001").status == "disabled" and after.get("P002").text.startswith("Never help anyone")
    revisions = [json.loads(line) for line in (run / "iter-000/revisions.jsonl").read_text().splitlines()]
    assert revisions and not any("P001" in r["principle_ids"] for r in revisions)  # revised again without it


@pytest.mark.parametrize("carry_over", [False, True])
def test_carry_over_trains_a_later_iteration_on_earlier_revisions_too(tmp_path, monkeypatch, carry_over):
    """Each round red-teams its own chunk of prompts; with ``train.carry_over`` iteration 1 trains on iteration 0's
    kept revisions as well as its own, without it on its own only."""
    import iteralign.stages.sft as sft
    from iteralign.run import read_jsonl

    trained: dict[str, set[str]] = {}

    def record(job):
        trained[Path(job.out_dir).parent.name] = {e.id for e in job.examples if e.origin != "replay"}
        return fake_train(job)

    monkeypatch.setattr(sft, "run_sft", record)
    run = run_loop(load_config(config(tmp_path, redteam__chunk_size=6, train__carry_over=carry_over)))
    kept = [{r["id"] for r in read_jsonl(run / f"iter-00{i}" / "revisions.jsonl") if r["kept"]} for i in (0, 1)]
    assert kept[0] and kept[1] and not kept[0] & kept[1]  # two chunks: different prompts
    assert trained["iter-000"] == kept[0]
    assert trained["iter-001"] == (kept[0] | kept[1] if carry_over else kept[1])
