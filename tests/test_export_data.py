"""``iteralign export-data``: the run's training data as ``datasets`` folders and JSONL in TRL's layouts; each set
loads with ``load_from_disk`` and ``load_dataset("json")``, and one batch of it trains one step of the matching TRL
trainer on a tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from export_helpers import tiny_base, tiny_run
from iteralign.export.data import export_data
from iteralign.layout import RunLayout
from iteralign.records import Revision
from iteralign.run import read_jsonl
from iteralign.training_data import RunData

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def exported(smol_path: Path, tmp_path_factory) -> tuple[Path, Path, dict]:
    root = tmp_path_factory.mktemp("export_data")
    base = tiny_base(smol_path, root / "base")
    run = tiny_run(root, base)
    counts = export_data(run, root / "data")
    return run, root / "data", counts


def kept_revisions(run: Path) -> list[tuple[int, Revision]]:
    layout = RunLayout(run)
    return [(f.index, r) for f in layout.iterations()
            for r in map(Revision.model_validate, read_jsonl(f.revisions)) if r.kept]


def test_each_set_loads_from_disk_and_from_jsonl_with_the_same_rows(exported):
    from datasets import load_dataset, load_from_disk

    run, out, counts = exported
    for name in ("sft", "preference", "constitution"):
        on_disk = load_from_disk(str(out / name))
        from_json = load_dataset("json", data_files=str(out / f"{name}.jsonl"), split="train")
        assert len(on_disk) == len(from_json) == counts[name] > 0
        assert on_disk[0]["id"] == from_json[0]["id"]
    assert "| sft | " in (out / "README.md").read_text()


def test_sft_rows_are_the_kept_revisions_and_the_trainable_replay_answers(exported):
    from datasets import load_from_disk

    run, out, _ = exported
    rows = load_from_disk(str(out / "sft")).to_list()
    kept = kept_revisions(run)
    revisions = [r for r in rows if r["origin"] == "revision"]
    assert [(r["iteration"], r["id"]) for r in revisions] == [(it, rev.id) for it, rev in kept]
    first = revisions[0]["messages"]
    assert first == [{"role": "user", "content": kept[0][1].prompt.text},
                     {"role": "assistant", "content": kept[0][1].text}]
    replay = [r for r in rows if r["origin"] == "replay"]
    assert {r["id"] for r in replay} == {"b-0", "b-1", "b-2"}  # the answer cut by the length limit is left out
    assert all(r["iteration"] is None for r in replay)


def test_a_run_that_trained_cut_replay_answers_exports_them_marked_unfinished(exported, tmp_path: Path):
    """The export follows the run's own ``sft.replay_cut``: with ``train`` the cut replay answer is a row too, with
    ``complete`` false (the loop trained it without an end-of-turn token)."""
    import shutil

    run, _, _ = exported
    copy = shutil.copytree(run, tmp_path / "run")
    layout = RunLayout(copy)
    cfg = json.loads(layout.config.read_text())
    cfg["sft"]["replay_cut"] = "train"
    layout.config.write_text(json.dumps(cfg))
    rows = [r for r in RunData.read(layout).sft_rows() if r["origin"] == "replay"]
    assert {(r["id"], r["complete"]) for r in rows} == {("b-0", True), ("b-1", True), ("b-2", True),
                                                         ("b-cut", False)}


def test_preference_rows_put_the_revision_over_the_failed_answer(exported):
    from datasets import load_from_disk

    run, out, _ = exported
    rows = load_from_disk(str(out / "preference")).to_list()
    kept = kept_revisions(run)
    assert len(rows) == len(kept)
    row, (it, rev) = rows[0], kept[0]
    assert row["prompt"] == [{"role": "user", "content": rev.prompt.text}]
    assert row["chosen"] == [{"role": "assistant", "content": rev.text}]
    assert row["rejected"] == [{"role": "assistant", "content": rev.answer.response}]
    assert (row["iteration"], row["failure"]) == (it, "complied_harmful")


def test_constitution_rows_carry_their_provenance(exported):
    from datasets import load_dataset

    run, out, counts = exported
    rows = load_dataset("json", data_files=str(out / "constitution.jsonl"), split="train").to_list()
    assert counts["constitution"] == 4
    first = rows[0]
    assert first["text"].startswith("Decline requests") and first["iteration"] == 0
    assert len(first["source_failure_ids"]) == 18
    verdicts = {json.loads(line)["id"]: json.loads(line)["prompt"]["text"]
                for line in (run / "iter-000" / "verdicts.jsonl").read_text().splitlines()}
    assert first["source_prompts"] == [verdicts[i] for i in first["source_failure_ids"]]


def test_a_set_without_rows_is_left_out_and_said_so(exported, tmp_path: Path):
    run, _, _ = exported
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (copy / "constitution.yaml").unlink()
    counts = export_data(copy, tmp_path / "out")
    assert counts["constitution"] == 0 and not (tmp_path / "out" / "constitution").exists()
    assert "| constitution | 0 | not written (no rows)" in (tmp_path / "out" / "README.md").read_text()


def _tiny_trainer_args(cls, tmp_path: Path, **extra):
    return cls(output_dir=str(tmp_path / "ckpt"), max_steps=1, per_device_train_batch_size=2, report_to="none",
               use_cpu=True, save_strategy="no", logging_steps=1, max_length=128, dataloader_num_workers=0, **extra)


def test_one_sft_step_on_the_exported_messages(exported, tmp_path: Path):
    from datasets import load_from_disk
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    run, out, _ = exported
    base = str(run.parent / "base")
    dataset = load_from_disk(str(out / "sft")).select(range(2))
    trainer = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(base), train_dataset=dataset,
                         processing_class=AutoTokenizer.from_pretrained(base),
                         args=_tiny_trainer_args(SFTConfig, tmp_path, assistant_only_loss=False))
    result = trainer.train()
    assert result.global_step == 1 and result.training_loss > 0


def test_one_dpo_step_on_the_exported_pairs(exported, tmp_path: Path):
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    run, out, _ = exported
    base = str(run.parent / "base")
    dataset = load_dataset("json", data_files=str(out / "preference.jsonl"), split="train").select(range(2))
    trainer = DPOTrainer(model=AutoModelForCausalLM.from_pretrained(base), train_dataset=dataset,
                         processing_class=AutoTokenizer.from_pretrained(base),
                         args=_tiny_trainer_args(DPOConfig, tmp_path))
    result = trainer.train()
    assert result.global_step == 1 and result.training_loss > 0
