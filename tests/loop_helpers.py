"""Shared helpers for loop tests: an all-scripted run config in a temp folder, and run-folder fingerprints."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def scripted_config(tmp: Path, *, latency: float = 0.0, name: str = "t", extra: dict | None = None) -> Path:
    """Write an all-scripted run config (no SFT) under ``tmp``; the models log every call to ``tmp/calls-*.log``."""
    rules = {}
    for role, src in [("target", REPO / "tests/data/loop/target.yaml"), ("oracle", REPO / "configs/scripted/oracle.yaml"),
                      ("reviser", REPO / "configs/scripted/reviser.yaml")]:
        data = yaml.safe_load(src.read_text())
        data.update(latency_s=latency, call_log=str(tmp / f"calls-{role}.log"))
        path = tmp / f"{role}.yaml"
        path.write_text(yaml.safe_dump(data))
        rules[role] = f"scripted:{path}"
    cfg = {
        "run": {"name": name, "root": str(tmp / "runs"), "cache_path": str(tmp / "cache.sqlite")},
        "models": {"target": {"spec": rules["target"], "batch_size": 4}, "oracle": {"spec": rules["oracle"], "batch_size": 4},
                   "reviser": rules["reviser"]},
        "redteam": {"sources": [{"builtin": "seeds", "limit": 24}], "split": {"held_out_fraction": 0.25}},
        "judge": {"judges": [{"kind": "refusal"}]},  # the scripted oracle's paper judge fails every answer
        "propose": {"batch_size": 4},
        "sft": {"enabled": False},
        "stop": {"max_iterations": 2, "stop_when_no_new_failures": False},
        "eval": {"benchmarks": []},
    }
    for key, value in (extra or {}).items():
        node = cfg
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def calls(tmp: Path) -> int:
    """Model calls made so far by all scripted roles (across processes)."""
    return sum(len(p.read_text().splitlines()) for p in tmp.glob("calls-*.log"))


def fingerprint(run: Path) -> dict:
    """The run's final outputs, minus what legitimately differs between runs (times, absolute paths)."""
    out = {}
    for path in sorted(run.rglob("*")):
        if path.is_dir() or path.name in ("manifest.json", "config.yaml", "report.md", "report.html", "ledger.json"):
            continue
        out[str(path.relative_to(run))] = path.read_text()
    manifest = json.loads((run / "manifest.json").read_text())
    out["stages"] = sorted((k, v["status"]) for k, v in manifest["stages"].items())  # hashes hold tmp paths
    out["iterations"] = manifest.get("iterations")
    return out


def fake_train(job) -> dict:
    """Stands in for SFT (``run_sft``) and DPO (``train_dpo``) in loop tests: writes an adapter whose bytes depend on
    what a real one's would (what it trains on: examples or pairs; the learning rate; the adapter trained further),
    and training statistics. A scripted target ignores the adapter; resume tests compare its bytes."""
    out = Path(job.out_dir)
    start = (Path(job.init_adapter) / "adapter_model.safetensors").read_text() if job.init_adapter else ""
    data = [e.completion for e in job.examples] if hasattr(job, "examples") else [repr(p) for p in job.pairs]
    rate = job.dpo.learning_rate if hasattr(job, "dpo") else job.cfg.learning_rate
    digest = hashlib.sha256(f"{start}|{rate}|{data}".encode()).hexdigest()
    (out / "adapter").mkdir(parents=True, exist_ok=True)
    (out / "adapter" / "adapter_config.json").write_text(json.dumps({"r": 4}))
    (out / "adapter" / "adapter_model.safetensors").write_text(digest)
    stats = {"examples": len(data), "steps": 1, "train_loss": 1.0}
    (out / "train_stats.json").write_text(json.dumps(stats))
    return stats
