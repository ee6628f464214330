"""Generation throughput: the transformers backend's batched generation against a naive per-prompt loop.

What it measures, in one run on the same 32 prompts and the same SmolLM2-135M-Instruct weights (float32, greedy,
64 new tokens at most, CPU threads as torch picks them unless --threads is given):

1. naive: one plain ``model.generate`` call per prompt (chat template, greedy, same max_new_tokens);
2. batched: ``HFModel.generate`` with batch size 16 (length-sorted, left-padded);
3. batched bf16: the same in bfloat16 (the CPU default, ``dtype: auto``).

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
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TOPICS = ["the water cycle", "binary search", "why the sky is blue", "how vaccines work", "the French revolution",
          "compound interest", "photosynthesis", "black holes", "the rules of chess", "how a bicycle stays upright",
          "recursion", "plate tectonics", "the immune system", "supply and demand", "how bread rises",
          "the internet"]
STYLES = ["Explain {} to a ten-year-old.", "Give me three surprising facts about {}, each in one sentence, and then "
          "say which one you find the most interesting and why, keeping the whole answer short."]
PROMPTS = [style.format(topic) for topic in TOPICS for style in STYLES]  # 32 prompts of two quite different lengths


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads (0: torch's default). On a machine shared with other jobs, 1 avoids "
                             "OpenMP threads spinning while waiting for descheduled siblings, which distorts timings.")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "generation.json")
    args = parser.parse_args()

    import torch

    from iteralign.models.base import ModelConfig
    from iteralign.models.hf import HFModel
    from iteralign.models.offline import ensure_converted
    from iteralign.types import GenerationParams, user

    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    path = ensure_converted("smollm2-135m-instruct")
    convert_s = time.perf_counter() - t0
    runs = {}
    for dtype in ("float32", "bfloat16"):
        t0 = time.perf_counter()
        cfg = ModelConfig(spec=f"hf:{path}", dtype=dtype, batch_size=args.batch_size, device="cpu")
        model = HFModel.load(str(path), cfg)
        load_s = time.perf_counter() - t0
        model.generate([user("Hi")], GenerationParams(max_new_tokens=4))  # warm-up, not timed
        texts, tokens, seconds = batched(model, PROMPTS, args.max_new_tokens)
        runs[f"batched_{dtype}"] = {"texts": texts, "tokens": tokens, "seconds": seconds, "load_s": load_s}
        if dtype == "float32":
            texts, tokens, seconds = naive_loop(model.model, model.tokenizer, PROMPTS, args.max_new_tokens)
            runs["naive_float32"] = {"texts": texts, "tokens": tokens, "seconds": seconds}
        model.release()

    for run in runs.values():
        run["tokens_per_s"] = run["tokens"] / run["seconds"]
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
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for name, run in runs.items():
        print(f"{name:18} {run['tokens']:5d} tokens in {run['seconds']:6.1f} s = {run['tokens_per_s']:6.1f} tok/s")
    print(f"speed-up batched/naive (float32): {result['speedup_batched_vs_naive_float32']:.2f}x (target >= 4x)")
    print(f"greedy outputs identical (float32): {result['greedy_identical_float32']}/{len(PROMPTS)}")
    print(f"bf16 answers differing from float32: {result['bf16_differs_from_float32']}/{len(PROMPTS)}; "
          f"bf16 speed-up over float32 (batched): {result['speedup_bf16_vs_float32_batched']:.2f}x")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
