"""The machine's roofline, and every other benchmark's figure as a fraction of the limit it is bound by.

Two limits are measured here, on the threads torch uses (``--threads``, default torch's choice):

* compute: square matmuls (``--sizes``, default 512, 1024, 2048) in float32 and in bfloat16, best of repeats and
  sizes -> GFLOP/s (2 n^3 flops per product);
* memory bandwidth: copying a tensor much larger than the last-level cache (``--copy-mb``, default 512 MB) ->
  GB/s, counting bytes read + bytes written.

Then each JSON in bench/out/ that this script knows (generation with its llama.cpp runs, compare_lm_eval, sft, and
ab, whose figures carry the ceilings of their own rounds) is read back and its throughput set against its bound, the limits scaled to the threads the figure was measured on:

* decode (generation) is memory-bound: every step reads all weights once for the whole batch, so the ceiling is
  ``bandwidth / weight_bytes * batch`` tokens/s (also capped by compute at ``flops / (2 * params)``);
* prefill, scoring and SFT are compute-bound: ``2 * params * tokens`` flops forward, ``6 * params * tokens`` for full
  fine-tuning, ``4 * params * tokens`` for LoRA (no weight gradients for the frozen base). Attention flops are left
  out (sequences here are < 1k tokens, where they are a few percent).

A bf16 figure is set against the limits of the path the tool takes (``bf16_path``): on a CPU with native bf16
(AVX-512 or newer) the bf16 matmul and 2-byte weights; on one without (AVX2 only), where the measured "bf16" matmul
is a slow generic path the tool avoids, the float32 matmul and 4-byte weights (``models.hf_linear.Float32Linear``
multiplies float32 copies of the weights; ``sft.bf16`` trains in float32 there).

Writes bench/out/roofline.json and prints the table. Run:  .venv/bin/python bench/roofline.py [--threads 2]
``--reuse`` skips the measurement and only recomputes the fractions from an existing roofline.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

OUT = Path(__file__).parent / "out"

#: Parameter counts (embedding counted once: tied in SmolLM2; the lm_head reads it every step) and weight bytes.
PARAMS = {"smollm2-135m": 134_515_008, "qwen2.5-0.5b": 494_032_768}
GGUF_Q4_1_BYTES = 98_362_432  # the SmolLM2 Q4_1 file llama.cpp reads (weights ~ the whole file)


def _timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)  # the best repeat: the limit, least disturbed by other jobs on a shared machine


def matmul_gflops(dtype_name: str, n: int, repeats: int) -> float:
    import torch

    dtype = getattr(torch, dtype_name)
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    return 2 * n**3 / _timed(lambda: torch.mm(a, b), repeats) / 1e9


def best_matmul(dtype_name: str, sizes: list[int], repeats: int) -> tuple[float, dict]:
    """The best GFLOP/s over square sizes (short products are less likely to be preempted on a shared machine)."""
    each = {n: round(matmul_gflops(dtype_name, n, repeats), 1) for n in sizes}
    return max(each.values()), each


def copy_gbs(mb: int, repeats: int) -> float:
    import torch

    src = torch.ones(mb * 2**20 // 4, dtype=torch.float32)
    dst = torch.empty_like(src)
    return 2 * src.numel() * 4 / _timed(lambda: dst.copy_(src), repeats) / 1e9


def bf16_path(lim: dict, native: bool) -> tuple[float, int, str]:
    """The compute limit (GFLOP/s), bytes read per weight and a label for a bf16 figure under ``lim``: the bf16
    matmul where the CPU has native bf16, else the float32 one the tool uses instead (see the module docstring)."""
    if native:
        return lim["matmul_bfloat16_gflops"], 2, "bf16"
    return lim["matmul_float32_gflops"], 4, "bf16 as float32"


def measure(args) -> dict:
    import torch

    from iteralign.models.hf_linear import native_bf16

    if args.threads:
        torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    fp32, fp32_each = best_matmul("float32", args.sizes, args.repeats)
    bf16, bf16_each = best_matmul("bfloat16", args.sizes, args.repeats)
    limits = {"matmul_float32_gflops": fp32, "matmul_bfloat16_gflops": bf16,
              "copy_gbs": copy_gbs(args.copy_mb, args.repeats)}
    return {"torch_threads": torch.get_num_threads(), "matmul_gflops_by_size": {"float32": fp32_each,
            "bfloat16": bf16_each}, "copy_mb": args.copy_mb,
            "load_average_before_after": [load, os.getloadavg()[0]], "limits": limits, "native_bf16": native_bf16()}


def _read(name: str) -> dict | None:
    path = OUT / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _row(what: str, measured: float, unit: str, ceiling: float, bound: str) -> dict:
    return {"figure": what, "measured": round(measured, 2), "unit": unit, "ceiling": round(ceiling, 1),
            "fraction": round(measured / ceiling, 3), "bound": bound}


def _per_threads(lim: dict, threads: int, limit_threads: int) -> dict:
    """The limits scaled to a figure measured on ``threads`` threads (compute and bandwidth ~linear in cores here)."""
    return {k: v * threads / limit_threads for k, v in lim.items()}


def decode_rows(lim: dict, limit_threads: int, generation: str = "generation", native: bool = True) -> list[dict]:
    """Generation tokens/s against ``bandwidth / bytes-per-step * batch`` (capped by compute)."""
    rows, gen = [], _read(generation)
    params = PARAMS["smollm2-135m"]
    if gen:
        lim = _per_threads(lim, gen["torch_threads"], limit_threads)
    for name, run in (gen or {}).get("runs", {}).items():
        flops, width, path = (bf16_path(lim, native) if "bfloat16" in name
                              else (lim["matmul_float32_gflops"], 4, "float32"))
        batch = run.get("batch_size", 1 if "naive" in name else gen["batch_size"])
        mem = lim["copy_gbs"] * 1e9 / (params * width) * batch
        comp = flops * 1e9 / (2 * params)
        bound = ("memory" if mem < comp else "compute") + ("" if path in ("bf16", "float32") else f", {path}")
        rows.append(_row(f"generate {name} (batch {batch})", run["tokens_per_s"], "tok/s", min(mem, comp), bound))
    for name, run in (gen or {}).get("llamacpp", {}).get("runs", {}).items():
        batch = run["batch_size"]
        mem = lim["copy_gbs"] * 1e9 / GGUF_Q4_1_BYTES * batch
        comp = lim["matmul_float32_gflops"] * 1e9 / (2 * params)  # no int8 GEMM limit measured: fp32 as proxy
        bound = "memory" if mem < comp else "compute (fp32 proxy)"
        rows.append(_row(f"generate llama.cpp Q4_1 {name} (batch {batch})", run["tokens_per_s"], "tok/s",
                         min(mem, comp), bound))
    return rows


def compute_rows(limits: dict, limit_threads: int, scoring: str = "compare_lm_eval", native: bool = True) -> list[dict]:
    """Scoring and SFT tokens/s against ``flops / (k * params)``."""
    rows, lim = [], limits
    score = _read(scoring) or {}
    parts = score.get("parts") or ({"all": score} if "tokens_per_s" in score else {})  # older files: one part
    for part, timing in parts.items():
        for who, tps in timing["tokens_per_s"].items():
            ceiling = _per_threads(lim, score["cpu_threads"], limit_threads)["matmul_float32_gflops"] * 1e9 / (
                2 * PARAMS["smollm2-135m"])
            rows.append(_row(f"scoring {part} {who} (float32)", tps, "tok/s", ceiling, "compute"))
    for run in (_read("sft") or {}).get("runs", []):
        if not run.get("tokens_per_s"):
            continue
        k = 4 if run["method"] == "lora" else 6
        lim = _per_threads(limits, run["torch_threads"], limit_threads)
        flops = bf16_path(lim, native)[0] if run["bf16"] else lim["matmul_float32_gflops"]
        ceiling = flops * 1e9 / (k * PARAMS[run["params_key"]])
        rows.append(_row(f"SFT {run['name']}", run["tokens_per_s"], "tok/s", ceiling, f"compute ({k}PT)"))
    return rows


def ab_rows() -> list[dict]:
    """bench/ab.py's figures, each against the ceiling measured in its own round (base and new tree)."""
    rows = []
    for r, rnd in enumerate((_read("ab") or {}).get("rounds", [])):
        for work, pair in rnd["work"].items():
            for tree in ("base", "new"):
                run = pair.get(tree, {})
                if "figure" in run:
                    rows.append(_row(f"ab round {r} {work} {tree}", run["figure"], "tok/s", run["ceiling"],
                                     run["bound"]))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    ap.add_argument("--copy-mb", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--generation", default="generation", help="which bench/out/<name>.json holds the generation "
                    "run (e.g. generation-threads1, measured with --threads 1: compare with limits at 1 thread)")
    ap.add_argument("--scoring", default="compare_lm_eval", help="which bench/out/<name>.json holds the lm-eval "
                    "comparison (e.g. compare_lm_eval_full)")
    ap.add_argument("--reuse", action="store_true", help="keep the measured limits, recompute the fractions")
    args = ap.parse_args()
    result = _read("roofline") if args.reuse else measure(args)
    lim = result["limits"]
    threads = result["torch_threads"]
    native = result.get("native_bf16", True)  # files written before it was recorded: AVX-512 machines
    result["fractions"] = (decode_rows(lim, threads, args.generation, native)
                           + compute_rows(lim, threads, args.scoring, native) + ab_rows())
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "roofline.json").write_text(json.dumps(result, indent=2) + "\n")
    print(", ".join(f"{k} {v:.1f}" for k, v in lim.items()), f"(load {result['load_average_before_after']}, "
          f"native bf16: {native})")
    for r in result["fractions"]:
        print(f"{r['figure']:<52} {r['measured']:>9.1f} / {r['ceiling']:>9.1f} {r['unit']:<6} "
              f"= {100 * r['fraction']:5.1f}%  [{r['bound']}]")


if __name__ == "__main__":
    main()
