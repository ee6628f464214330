"""Our bf16 decoding loop against transformers' ``generate``, eager and under ``torch.compile``: is compiling the way
to issue 20's 30% of the compute ceiling?

The earlier profile left kernel fusion as the remaining route for decoding (BENCHMARKS.md, "Fused projections,
measured and not kept"), and ``torch.compile`` is the tool that fuses. Three variants on the same 32 prompts of
``bench/generation.py``, SmolLM2-135M in bf16, greedy, at most 64 new tokens, two batches of 16 prompts (sorted by
length, as the backend sorts them):

- ``ours``: ``HFModel.generate`` (packed oneDNN linears, pre-allocated cache, finished rows leave the batch);
- ``hf-eager``: ``model.generate`` of the plain transformers model (dynamic cache);
- ``hf-compiled``: ``model.generate`` with a static cache and the forward compiled by inductor with weight freezing
  (transformers' own compile path, ``CompileConfig``); its first call, which compiles, is timed apart.

Each variant runs in a fresh subprocess, alternating in each round; reported: generated tokens (up to and including
the end of turn) per wall second and per CPU second, and the ratio to ``ours`` of the same round. Run:

    OMP_NUM_THREADS=2 .venv/bin/python bench/decode_compile.py [--rounds 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VARIANTS = ("ours", "hf-eager", "hf-compiled")
NEW_TOKENS, BATCH, PROMPTS_N = 64, 16, 32


def _timed(fn) -> tuple[object, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def _ours(path: Path, convs: list) -> dict:
    from iteralign.models.base import ModelConfig
    from iteralign.models.hf import HFModel
    from iteralign.types import GenerationParams, user

    model = HFModel.load(str(path), ModelConfig(spec=f"hf:{path}", dtype="bfloat16", batch_size=BATCH, device="cpu"))
    model.generate([user("Hi")], GenerationParams(max_new_tokens=4))  # warm-up
    params = GenerationParams(max_new_tokens=NEW_TOKENS)
    out, wall, cpu = _timed(lambda: model.generate([user(c) for c in convs], params))
    return {"tokens": sum(c.completion_tokens for c in out), "wall": wall, "cpu": cpu}


def _hf(path: Path, convs: list, compiled: bool) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, CompileConfig

    tok = AutoTokenizer.from_pretrained(path, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16, use_safetensors=True).eval()
    texts = sorted((tok.apply_chat_template([{"role": "user", "content": c}], tokenize=False,
                                            add_generation_prompt=True) for c in convs),
                   key=lambda t: len(tok(t).input_ids))
    batches = [tok(texts[i:i + BATCH], return_tensors="pt", padding=True) for i in range(0, len(texts), BATCH)]
    kw: dict = {"max_new_tokens": NEW_TOKENS, "do_sample": False, "pad_token_id": tok.pad_token_id or tok.eos_token_id}
    if compiled:
        config = CompileConfig(mode=None, options={"freezing": True})
        config._compile_all_devices = True  # transformers compiles on GPUs only unless told
        kw |= {"cache_implementation": "static", "compile_config": config}

    def run() -> int:
        with torch.inference_mode():
            outs = [model.generate(**b, **kw)[:, b.input_ids.shape[1]:] for b in batches]
        eos = tok.convert_tokens_to_ids("<|im_end|>")
        return sum(int(((row == eos).cumsum(0) == 0).sum()) + int((row == eos).any()) for o in outs for row in o)

    _, compile_wall, _ = _timed(run)  # warm-up; under compile, the compilations of both batch shapes
    tokens, wall, cpu = _timed(run)
    return {"tokens": tokens, "wall": wall, "cpu": cpu, "first_call_wall": compile_wall}


def worker(variant: str, threads: int) -> dict:
    import torch

    sys.path.insert(0, str(HERE))
    from generation import PROMPTS

    from iteralign.models.offline import ensure_converted

    if threads:
        torch.set_num_threads(threads)
    path, convs = ensure_converted("smollm2-135m-instruct"), PROMPTS[:PROMPTS_N]
    res = _ours(path, convs) if variant == "ours" else _hf(path, convs, variant == "hf-compiled")
    return res | {"tok_per_s": res["tokens"] / res["wall"], "tok_per_cpu_s": res["tokens"] / res["cpu"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", type=Path, default=HERE / "out" / "decode_compile.json")
    ap.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.threads)))
        return
    rounds = []
    for r in range(args.rounds):
        row = {}
        for variant in VARIANTS if r % 2 == 0 else VARIANTS[::-1]:
            proc = subprocess.run([sys.executable, __file__, "--worker", variant, "--threads", str(args.threads)],
                                  capture_output=True, text=True, check=True)
            row[variant] = json.loads(proc.stdout.strip().splitlines()[-1])
        for variant, res in row.items():
            res["ratio_to_ours"] = round(res["tok_per_s"] / row["ours"]["tok_per_s"], 3)
            extra = f", first call {res['first_call_wall']:.0f} s" if "first_call_wall" in res else ""
            print(f"round {r} {variant:11} {res['tok_per_s']:7.1f} tok/s {res['tok_per_cpu_s']:7.1f} tok/CPU-s "
                  f"({res['ratio_to_ours']:.2f}x ours){extra}", flush=True)
        rounds.append(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"threads": args.threads, "rounds": rounds}, indent=1))


if __name__ == "__main__":
    main()
