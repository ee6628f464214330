"""configs/smoke.yaml end to end: the real 135M target red-teamed and LoRA-tuned, scripted oracle and reviser."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from iteralign.config import load_config
from iteralign.loop import run_loop
from iteralign.models.base import ModelConfig, load_model
from iteralign.run import read_jsonl
from iteralign.types import GenerationParams, user

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.model  # ~25 s on an idle 2-core machine (~3 CPU-minutes under heavy load)
def test_smoke_config_trains_an_adapter_that_changes_answers(tmp_path, smol_path, monkeypatch):
    monkeypatch.chdir(REPO)  # the smoke config names its scripted rules relative to the repository
    cfg = load_config(REPO / "configs/smoke.yaml", [
        f"run.root={tmp_path}", f"run.cache_path={tmp_path / 'cache.sqlite'}", "stop.max_iterations=1",
        "redteam.sources=[{builtin: seeds, limit: 8}]", "sft.epochs=2", "sft.replay=2"])
    run = run_loop(cfg)
    manifest = json.loads((run / "manifest.json").read_text())
    assert all(v["status"] == "done" for v in manifest["stages"].values()), manifest["stages"]
    summary = manifest["iterations"][0]
    assert summary["failures"] > 0 and summary["revisions_kept"] > 0 and summary["accepted"]
    adapter = run / "iter-000" / "sft" / "adapter"
    assert (adapter / "adapter_model.safetensors").stat().st_size > 0

    failed = [r for r in read_jsonl(run / "iter-000" / "revisions.jsonl") if r["kept"]]
    params = GenerationParams(max_new_tokens=24)
    tuned = load_model(ModelConfig(spec=cfg.models.target.spec, dtype="float32", adapter=str(adapter)))
    after = [c.text for c in tuned.generate([user(r["prompt"]) for r in failed], params)]
    before = [r["original"] for r in failed]
    assert sum(a.strip()[:40] != b.strip()[:40] for a, b in zip(after, before)) >= len(failed) / 2
