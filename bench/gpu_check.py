"""GPU check, measuring half: generation throughput (vLLM when installed, and the hf backend), then one loop
iteration per training path (LoRA, QLoRA, DeepSpeed ZeRO-3 and FSDP under accelerate on one GPU).

Run by bench/gpu_check.sh (which checks the machine first); usable alone:
    python bench/gpu_check.py --model-dir DIR --out results/gpu_check.json [--run-root runs-gpu-check]
    python bench/gpu_check.py --random-from DIR ...   # DIR's architecture and tokenizer, random weights
``--random-from`` is for machines that cannot receive the weights (a device whose uploads are capped): speed and code
paths do not depend on the weights' values, only what the model says does. Every step runs even when one fails; each
is recorded as ok (with its figures), failed (with the error's last lines) or skipped (with the reason). The script
exits non-zero when a step failed. Without a GPU, ``--no-generation --paths lora`` is a dry run of the script on CPU.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from iteralign.models.base import ModelConfig, load_model
from iteralign.types import GenerationParams, user

PROMPTS = [user(f"Write a short paragraph about topic number {i}: the sea, the wind, a city, a machine.")
           for i in range(256)]


def one_process(accelerate_config: str) -> list[str]:
    """Overrides that run SFT under ``accelerate launch`` with one of the shipped configs, on one process."""
    return ["sft.launcher=accelerate", "sft.num_processes=1",
            f"sft.accelerate_config=configs/accelerate/{accelerate_config}"]


ITERATIONS = {  # name -> (extra --set overrides, python module the path needs)
    "lora": ([], None),
    "qlora": (["sft.quantization=4bit"], "bitsandbytes"),
    "zero3": (one_process("deepspeed_zero3.yaml"), "deepspeed"),
    "fsdp": (one_process("fsdp.yaml"), None),
}


def random_model(source: str, out: Path) -> str:
    """``source``'s config and tokenizer with freshly initialised bf16 weights (seed 0), saved to ``out``."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(source), dtype=torch.bfloat16)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(source).save_pretrained(out)
    return str(out)


def throughput(spec: str, batch_size: int, **cfg) -> dict:
    """Greedy generation of 256 conversations x up to 128 tokens in one call, after a warm-up call."""
    started = time.time()
    model = load_model(ModelConfig(spec=spec, dtype="bfloat16", batch_size=batch_size, cache=False, **cfg))
    load_s = time.time() - started
    params = GenerationParams(max_new_tokens=128)
    model.generate(PROMPTS[:batch_size], params)
    started = time.time()
    out = model.generate(PROMPTS, params)
    seconds = time.time() - started
    model.close()
    tokens = sum(c.completion_tokens for c in out)
    if tokens == 0:
        raise RuntimeError(f"{spec} generated no tokens")
    return {"batch_size": batch_size, "load_s": round(load_s, 1), "completion_tokens": tokens,
            "seconds": round(seconds, 2), "tokens_per_s": round(tokens / seconds, 1)}


def iteration(target: str, overrides: list[str], run_root: Path, log: Path) -> dict:
    """``iteralign run configs/gpu_check.yaml`` with ``overrides``; the SFT figures come from train_stats.json, the
    run's whole output goes to ``log`` as it is written."""
    cmd = [sys.executable, "-m", "iteralign.cli", "run", "configs/gpu_check.yaml", "--set",
           f"models.target.spec={target}", "--set", f"run.root={run_root}"]
    if target.startswith("hf:"):  # the config's engine_args are the vLLM engine's
        overrides = ["models.target.engine_args={}", *overrides]
    for item in overrides:
        cmd += ["--set", item]
    started = time.time()
    with log.open("w") as sink:  # streamed, so that a step cut off by a time limit still leaves its output
        done = subprocess.run(cmd, stdout=sink, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise RuntimeError(f"exit {done.returncode} (whole output: {log}): {log.read_text()[-1500:]}")
    stats_files = sorted(run_root.glob("gpu-check/iter-*/sft/train_stats.json"))
    if not stats_files:
        raise RuntimeError(f"no SFT ran: no train_stats.json under {run_root}/gpu-check (no failures found?)")
    stats = json.loads(stats_files[0].read_text())
    return {"loop_seconds": round(time.time() - started, 1), "sft_examples": stats["examples"],
            "sft_steps": stats["steps"], "sft_seconds": stats["seconds"], "processes": stats.get("processes"),
            "sft_tokens_per_s": stats.get("tokens_per_second"), "adapter_tensors": stats["saved"]["tensors"]}


def step(results: dict, name: str, needs: str | None, fn, *args, **kwargs) -> None:
    """Run one step and record its outcome; a failure is recorded, printed and does not stop the others."""
    if needs and importlib.util.find_spec(needs) is None:
        results[name] = {"status": "skipped", "reason": f"{needs} is not installed"}
    else:
        try:
            results[name] = {"status": "ok", **fn(*args, **kwargs)}
        except Exception as err:  # noqa: BLE001 - the point is to record every path's outcome
            results[name] = {"status": "failed", "error": f"{type(err).__name__}: {str(err)[-3000:]}"}
    print(name, json.dumps(results[name], indent=1), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model-dir")
    source.add_argument("--random-from", help="a model folder whose config and tokenizer are used, weights random")
    parser.add_argument("--out", default="bench/results/gpu_check.json")
    parser.add_argument("--run-root", default="runs-gpu-check")
    parser.add_argument("--no-generation", action="store_true", help="only the training paths")
    parser.add_argument("--paths", nargs="+", choices=list(ITERATIONS), default=list(ITERATIONS),
                        help="training paths to run (default: all)")
    args = parser.parse_args()
    import torch

    run_root = Path(args.run_root)
    shutil.rmtree(run_root, ignore_errors=True)
    model_dir = args.model_dir or random_model(args.random_from, run_root / "random-model")
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (CPU: a dry run of the paths)"
    results = {"gpu": gpu, "torch": torch.__version__,
               "weights": "real" if args.model_dir else f"random, architecture of {args.random_from}"}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    vllm = importlib.util.find_spec("vllm") is not None
    if not args.no_generation:
        step(results, "vllm_generation", "vllm", throughput, f"vllm:{model_dir}", 256,
             engine_args={"gpu_memory_utilization": 0.3})
        for batch in (16, 64):
            step(results, f"hf_generation_b{batch}", None, throughput, f"hf:{model_dir}", batch, device="cuda")
    target = f"vllm:{model_dir}" if vllm else f"hf:{model_dir}"
    for name in args.paths:
        overrides, needs = ITERATIONS[name]
        log = out.parent / f"{out.stem}_{name}.log"
        step(results, f"iteration_{name}", needs, iteration, target, overrides, run_root / name, log)
    out.write_text(json.dumps(results, indent=2))
    sys.exit(1 if any(r.get("status") == "failed" for r in results.values() if isinstance(r, dict)) else 0)


if __name__ == "__main__":
    main()
