"""Disk and memory: SFT refuses to start without room for its checkpoints, resumes only from complete checkpoints,
and prompt files are streamed (memory does not grow with the file; ``limit`` stops reading early)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path

import pytest

from iteralign.stages.sft_job import SFTConfig
from iteralign.data import iter_prompts
from iteralign.run import RunError
from iteralign.stages import sft_guard
from iteralign.stages.sft_guard import check_disk, count_parameters, needed_bytes, resume_point

DiskUsage = namedtuple("DiskUsage", "total used free")


def fake_disk(monkeypatch, free: int) -> list[str]:
    """Make ``shutil.disk_usage`` report ``free`` bytes; returns the paths it was asked about."""
    asked: list[str] = []
    monkeypatch.setattr(sft_guard.shutil, "disk_usage", lambda p: asked.append(str(p)) or DiskUsage(free * 2, free, free))
    return asked


def test_parameters_are_counted_from_safetensors_headers(smol_path):
    assert count_parameters(smol_path) == 134_515_008  # SmolLM2-135M (tied embeddings counted once)
    assert count_parameters("HuggingFaceTB/SmolLM2-135M-Instruct") is None  # a hub id: nothing local to read


@pytest.mark.parametrize("method,bf16,gb", [("full", False, 3.83), ("full", True, 1.95), ("lora", False, 0.26)])
def test_estimate(smol_path, method, bf16, gb):
    assert needed_bytes(count_parameters(smol_path), method, bf16) / 1e9 == pytest.approx(gb, abs=0.01)


def test_low_disk_is_refused_with_the_figures(tmp_path, monkeypatch, smol_path):
    out = tmp_path / "run" / "iter-000" / "sft"  # not created yet: the check looks at the nearest existing folder
    asked = fake_disk(monkeypatch, free=1_000_000_000)
    with pytest.raises(RunError) as err:
        check_disk(out, str(smol_path), "full", bf16=False)
    assert asked == [str(tmp_path)]
    assert str(out) in str(err.value) and "1.00 GB free" in str(err.value) and "3.83 GB needed" in str(err.value)
    check_disk(out, str(smol_path), "lora", bf16=False)  # a LoRA adapter fits in 1 GB
    fake_disk(monkeypatch, free=10**12)
    check_disk(out, str(smol_path), "full", bf16=False)


def test_training_stops_before_loading_anything_when_the_disk_is_full(tmp_path, monkeypatch, smol_path):
    import iteralign.stages.sft_model as sft_model
    from iteralign.records import Example, Prompt
    from iteralign.stages.sft import SFTJob, train

    def no_load(job):
        raise AssertionError("the model was loaded before the disk check")

    monkeypatch.setattr(sft_model, "load_model", no_load)
    fake_disk(monkeypatch, free=50_000_000)
    job = SFTJob(base=str(smol_path), examples=[Example(id="e", prompt=Prompt.make("hi"), completion="hello")],
                 out_dir=str(tmp_path / "sft"), cfg=SFTConfig(epochs=1, replay=0))
    with pytest.raises(RunError, match="not enough free disk for SFT"):
        train(job)
    assert not (tmp_path / "sft" / "checkpoints").exists()


def test_resume_uses_the_newest_complete_checkpoint(tmp_path):
    def checkpoint(step: int, state: str | None) -> Path:
        path = tmp_path / f"checkpoint-{step}"
        path.mkdir()
        (path / "adapter_model.safetensors").write_bytes(b"weights")
        if state is not None:
            (path / "trainer_state.json").write_text(state)
        return path

    assert resume_point(tmp_path) is None
    good = checkpoint(2, json.dumps({"global_step": 2}))
    cut = checkpoint(4, None)  # killed during the save: trainer_state.json is written last
    torn = checkpoint(6, '{"global_st')  # killed while writing it
    (tmp_path / "checkpoint-notes").mkdir()
    assert resume_point(tmp_path) == str(good)
    assert not cut.exists() and not torn.exists() and good.exists()
    shutil.rmtree(good)
    assert resume_point(tmp_path) is None


def big_jsonl(path: Path, megabytes: int) -> int:
    """A JSONL file of about ``megabytes`` MB of distinct prompts; returns the number of lines."""
    line = '{"prompt": "How would someone get into a locked building number %09d without a key? %s", "category": "x"}\n'
    pad = "please explain every step " * 40  # ~1 KB lines: the cost is per line, the point is bytes
    chunk = 10_000
    n = 0
    with open(path, "w", encoding="utf-8") as fh:
        while fh.tell() < megabytes * 2**20:
            fh.write("".join(line % (n + i, pad) for i in range(chunk)))
            n += chunk
    return n


STREAM = """
import resource, sys
from iteralign.data import iter_prompts
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
count = sum(1 for _ in iter_prompts({"path": sys.argv[1]}))
print(count, before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def test_large_prompt_files_are_streamed(tmp_path):
    """Reading every prompt of a 50 MB file raises the reader's peak memory (max RSS, in a fresh process) by less
    than a fifth of the file: it is never held whole."""
    path = tmp_path / "big.jsonl"
    n_lines = big_jsonl(path, 50)
    out = subprocess.run([sys.executable, "-c", STREAM, str(path)], capture_output=True, text=True, check=True,
                         env=dict(os.environ, HF_HUB_OFFLINE="1"))
    count, before_kb, after_kb = map(int, out.stdout.split())
    assert count == n_lines and path.stat().st_size >= 50 * 2**20
    assert (after_kb - before_kb) * 1024 < path.stat().st_size / 5, f"max RSS grew {(after_kb - before_kb) / 1024:.0f} MB"
    started = time.perf_counter()
    assert len(list(iter_prompts({"path": str(path), "limit": 5}))) == 5
    assert time.perf_counter() - started < 0.5  # stops reading at the limit
