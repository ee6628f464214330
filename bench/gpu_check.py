"""GPU check, measuring half: vLLM generation throughput on the 135M model, then one loop iteration's SFT rate.

Run by bench/gpu_check.sh (which checks the machine first); usable alone:
    python bench/gpu_check.py --model-dir DIR --out results/gpu_check.json [--run-root runs-gpu-check]
Writes a JSON with the figures and prints them; exits non-zero when a step fails or produces nothing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from iteralign.models.base import ModelConfig
from iteralign.models.vllm import VLLMModel
from iteralign.types import GenerationParams, user

PROMPTS = [user(f"Write a short paragraph about topic number {i}: the sea, the wind, a city, a machine.")
           for i in range(256)]


def generation_throughput(model_dir: str) -> dict:
    """Greedy generation of 256 conversations x up to 128 tokens in one engine call, after a warm-up."""
    cfg = ModelConfig(spec=f"vllm:{model_dir}", dtype="bfloat16", engine_args={"gpu_memory_utilization": 0.3})
    started = time.time()
    model = VLLMModel(model_dir, cfg)
    load_s = time.time() - started
    params = GenerationParams(max_new_tokens=128)
    model.generate(PROMPTS[:8], params)
    started = time.time()
    out = model.generate(PROMPTS, params)
    seconds = time.time() - started
    model.close()
    tokens = sum(c.completion_tokens for c in out)
    if tokens == 0:
        raise RuntimeError("vLLM generated no tokens")
    return {"engine_load_s": round(load_s, 1), "conversations": len(out), "completion_tokens": tokens,
            "seconds": round(seconds, 2), "tokens_per_s": round(tokens / seconds, 1)}


def one_iteration(model_dir: str, run_root: str) -> dict:
    """``iteralign run configs/gpu_check.yaml`` with the vLLM target; the SFT figures come from train_stats.json."""
    cmd = [sys.executable, "-m", "iteralign.cli", "run", "configs/gpu_check.yaml",
           "--set", f"models.target.spec=vllm:{model_dir}", "--set", f"run.root={run_root}"]
    started = time.time()
    subprocess.run(cmd, check=True)
    stats_files = sorted(Path(run_root).glob("gpu-check/iter-*/sft/train_stats.json"))
    if not stats_files:
        raise RuntimeError(f"no SFT ran: no train_stats.json under {run_root}/gpu-check (no failures found?)")
    stats = json.loads(stats_files[0].read_text())
    return {"loop_seconds": round(time.time() - started, 1), "sft_examples": stats["examples"],
            "sft_steps": stats["steps"], "sft_seconds": stats["seconds"],
            "sft_tokens_per_s": stats.get("tokens_per_second"), "adapter_tensors": stats["saved"]["tensors"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--out", default="bench/results/gpu_check.json")
    parser.add_argument("--run-root", default="runs-gpu-check")
    args = parser.parse_args()
    import torch

    result = {"gpu": torch.cuda.get_device_name(0), "generation": generation_throughput(args.model_dir),
              "iteration": one_iteration(args.model_dir, args.run_root)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
