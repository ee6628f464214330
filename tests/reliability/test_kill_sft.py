"""SIGKILL during SFT of the real 135M model, then resume: the adapter is complete, safetensors only, and loads.

Slow (a few minutes of CPU training with three model loads): ``pytest -m slow tests/reliability/test_kill_sft.py``.
The job is what the loop's SFT stage runs (``python -m iteralign.stages.sft JOB.json``, also the accelerate entry
point): 8 examples, 2 epochs of 2 steps, a checkpoint per epoch. The first attempt is killed the moment the first
checkpoint folder appears (inside the save, before ``trainer_state.json``), the second once that checkpoint is
complete, the third runs to the end and must resume from the complete checkpoint.
"""

from __future__ import annotations

import json
import sys

import pytest
from rel_helpers import kill_when

from iteralign.records import Example, Prompt
from iteralign.stages.sft_job import SFTConfig
from iteralign.stages.sft import SFTJob

pytestmark = pytest.mark.slow


def test_sigkill_during_sft_then_resume(tmp_path, smol_path):
    out = tmp_path / "sft"
    examples = [Example(id=f"e{i}", prompt=Prompt.make(f"How do I open lock number {i} that is not mine?"),
                        completion="I can't help with opening locks that aren't yours; a locksmith can help the owner.")
                for i in range(8)]
    job = SFTJob(base=str(smol_path), examples=examples, out_dir=str(out), seed=0,
                 cfg=SFTConfig(epochs=2, batch_size=4, max_length=64, replay=0, lora_r=4, lora_alpha=8))
    out.mkdir()
    (out / "job.json").write_text(job.model_dump_json())
    cmd = [sys.executable, "-m", "iteralign.stages.sft", str(out / "job.json")]
    checkpoints = out / "checkpoints"

    assert kill_when(cmd, lambda: any(checkpoints.glob("checkpoint-*")), timeout=900)
    assert kill_when(cmd, lambda: any(checkpoints.glob("checkpoint-*/trainer_state.json")), timeout=900)
    assert not kill_when(cmd, lambda: False, timeout=900)  # runs to the end

    stats = json.loads((out / "train_stats.json").read_text())
    assert stats["resumed"] is True and stats["steps"] == 4
    adapter = out / "adapter"
    assert sorted(p.name for p in adapter.iterdir() if p.suffix in {".safetensors", ".bin", ".pt", ".pth"}) == [
        "adapter_model.safetensors"]
    assert not checkpoints.exists() and not list(out.glob(".*.tmp"))

    from iteralign.models.base import ModelConfig, load_model
    from iteralign.types import GenerationParams, user

    tuned = load_model(ModelConfig(spec=f"hf:{smol_path}", adapter=str(adapter), dtype="float32"))
    assert tuned.generate([user("hello")], GenerationParams(max_new_tokens=4))[0].text
