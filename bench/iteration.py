"""A whole iteration of a run config, then the same command again (resume): wall time per stage, calls, cache hits.

Runs ``iteralign run CONFIG --set ...`` twice as a user would, in a fresh run root with a fresh call cache:

1. the first run does all the work: its manifest gives each stage's wall time and model calls/cache hits;
2. the second, identical command must find every stage done: zero model calls, and (acceptance) under 10 s,
   which includes starting Python and importing the package.

Default: configs/default.yaml scaled down with ``--set`` so that it finishes in minutes on 2 cores (one iteration,
fewer prompts, smaller eval); ``--full`` runs the config as shipped. Writes bench/out/iteration.json.

Run:  .venv/bin/python bench/iteration.py [--config configs/default.yaml] [--full] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCALED = ["stop.max_iterations=1", "redteam.split.max_train=16", "redteam.split.max_held_out=8", "eval.limit=12",
          "sft.epochs=1", "sft.replay=8"]


def run_cli(config: Path, overrides: list[str]) -> dict:
    """Run ``iteralign run`` in a subprocess; wall time, exit code and the tail of its log."""
    cmd = [sys.executable, "-m", "iteralign.cli", "run", str(config)] + [a for o in overrides for a in ("--set", o)]
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=os.environ | {"HF_HUB_OFFLINE": "1"})
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return {"wall_s": round(wall, 2), "load_average_before_after": [load, os.getloadavg()[0]]}


def stage_table(manifest: dict) -> dict:
    """Per stage: status, seconds, model calls and cache hits (summed over models)."""
    rows = {}
    for key, entry in manifest["stages"].items():
        usage = entry.get("usage", {})
        rows[key] = {"status": entry.get("status"), "seconds": entry.get("seconds"),
                     "calls": usage.get("calls"), "cache_hits": usage.get("cache_hits"),
                     "completion_tokens": usage.get("completion_tokens")}
    return rows


def measure(config: Path, overrides: list[str], root: Path) -> dict:
    """First run + resume of the same command; the run folder is ``root/bench``."""
    overrides = overrides + [f"run.root={root}", "run.name=bench", f"run.cache_path={root / 'calls.sqlite'}"]
    manifest_path = root / "bench" / "manifest.json"
    first = run_cli(config, overrides)
    first_manifest = json.loads(manifest_path.read_text())
    second = run_cli(config, overrides)
    resume_usage = json.loads(manifest_path.read_text())["stages"]["final"]["usage"]
    return {
        "config": str(config), "overrides": overrides[:-3],
        "first_run": first | {"usage": first_manifest["stages"]["final"]["usage"],
                              "stages": stage_table(first_manifest)},
        "resume": second | {"usage": resume_usage},
        "acceptance": {"resume_model_calls": resume_usage["calls"], "resume_wall_s": second["wall_s"],
                       "passed": resume_usage["calls"] == 0 and second["wall_s"] < 10},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", type=Path, default=REPO / "configs" / "default.yaml")
    ap.add_argument("--full", action="store_true", help="the config as shipped (no scaling-down overrides)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="extra key=value overrides")
    ap.add_argument("--keep", type=Path, help="run root to keep (default: a temporary folder)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "iteration.json")
    args = ap.parse_args()
    overrides = ([] if args.full else SCALED) + args.overrides
    with tempfile.TemporaryDirectory() as tmp:
        result = measure(args.config, overrides, args.keep or Path(tmp))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'stage':<22}{'status':>8}{'seconds':>10}{'calls':>7}{'hits':>6}")
    for key, r in result["first_run"]["stages"].items():
        print(f"{key:<22}{r['status'] or '':>8}{r['seconds'] or 0:>10.1f}{r['calls'] or 0:>7}{r['cache_hits'] or 0:>6}")
    acc = result["acceptance"]
    print(f"first run {result['first_run']['wall_s']:.1f} s; resume {acc['resume_wall_s']:.1f} s with "
          f"{acc['resume_model_calls']} model calls (target: 0 calls, < 10 s) -> {args.out}")


if __name__ == "__main__":
    main()
