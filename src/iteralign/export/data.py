"""``iteralign export-data``: a run's training data as Hugging Face ``datasets`` folders and JSONL files.

    <out>/sft/            sft.jsonl            messages (user, assistant) + provenance: what SFT trained on
    <out>/preference/     preference.jsonl     prompt / chosen / rejected (conversational): kept revision over failure
    <out>/constitution/   constitution.jsonl   the principles with their provenance
    <out>/README.md       counts, columns, and how TRL, alignment-handbook and axolotl read each set

Each folder loads with ``datasets.load_from_disk``, each JSONL with ``load_dataset("json", data_files=...)``. A set
with no rows (e.g. no kept revision yet) is left out and the README says so.
"""

from __future__ import annotations

import json
from pathlib import Path

from iteralign.layout import RunLayout
from iteralign.run import atomic_write
from iteralign.training_data import RunData

USAGE = {
    "sft": ("TRL `SFTTrainer(train_dataset=ds)` (conversational: the chat template is applied); alignment-handbook "
            "SFT recipes (`messages` column); axolotl `datasets: [{path: sft.jsonl, type: chat_template}]`"),
    "preference": ("TRL `DPOTrainer(train_dataset=ds)` (conversational preference type); alignment-handbook DPO "
                   "recipes; axolotl `rl: dpo` with `datasets: [{path: preference.jsonl, type: "
                   "chat_template.default, field_messages: prompt}]`"),
    "constitution": "a reference set: one principle per row, with the failures it was proposed from",
}


def export_data(run_dir: str | Path, out: str | Path) -> dict[str, int]:
    """Write the run's training data under ``out``; returns the row count of each set."""
    from datasets import Dataset

    layout, out = RunLayout(Path(run_dir)), Path(out)
    if not layout.manifest.exists():
        raise FileNotFoundError(f"{run_dir}: not a run folder (no manifest.json)")
    data = RunData.read(layout)
    sets = {"sft": data.sft_rows(), "preference": data.preference_rows(), "constitution": data.principle_rows()}
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in sets.items():
        if not rows:
            continue
        Dataset.from_list(rows).save_to_disk(str(out / name))
        atomic_write(out / f"{name}.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    counts = {name: len(rows) for name, rows in sets.items()}
    atomic_write(out / "README.md", _readme(layout, counts))
    return counts


def _readme(layout: RunLayout, counts: dict[str, int]) -> str:
    lines = [f"# Training data of the iteralign run `{layout.root.name}`", "",
             "Written by `iteralign export-data` from the run folder's records (kept revisions, replay answers "
             "judged aligned and finished, or cut too where the run trained them, anchor pairs when the run trained "
             "them, the constitution).", "",
             "| set | rows | files | read by |", "|---|---|---|---|"]
    for name, n in counts.items():
        files = f"`{name}/` (load_from_disk), `{name}.jsonl`" if n else "not written (no rows)"
        lines.append(f"| {name} | {n} | {files} | {USAGE[name]} |")
    lines += ["", "Columns: `iteration` is the iteration a record comes from (empty for replay answers, which every "
              "iteration trains on); `origin` is `revision` or `replay` (SFT), `revision`, `anchor` (preference: a "
              "benign prompt's good answer chosen over a refusal) or `on_policy` (a chosen answer over what the "
              "SFT-tuned target answered instead); `failure` says which way the rejected answer "
              "failed; `complete` is false for an SFT answer cut by the length limit (the run trained it without an "
              "end-of-turn token).", ""]
    return "\n".join(lines)
