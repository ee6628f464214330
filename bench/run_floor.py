"""A finished run's compute floor: per stage, the least time its model work could take at this machine's matmul
peak, beside the time the stage took (the run's ``manifest.json``). It answers "how much faster could this run get
without doing less work?" for issue 20's `make run` target.

The peak is measured here, in the same invocation (``roofline.best_matmul``: square products in ``--dtype``, bf16
by default as the embedded default computes, best of repeats; ``--peak GFLOPS`` skips it). FLOPs counted, per model
(parameter counts from each model's config, built on the ``meta`` device; the input embedding is a lookup, the LM
head a product; a model without local weights, an API or the scripted backend, counts nothing):

* model calls (the manifest's usage per stage and model): ``2 x non-embedding params`` per prompt and generated
  token, plus ``2 x vocab x hidden`` per generated token (the LM head);
* SFT (``train_stats.json``): tokens seen (``tokens_per_second x seconds``) x ``4 x params`` for LoRA (the frozen
  base's forward and its backward through the activations) or ``6 x`` for full fine-tuning;
* DPO: the saved pairs (``dpo/pairs``: the prompt once, the chosen and the rejected answer) x epochs x ``4 x
  params``, plus one ``2 x`` reference pass.

Not counted, so the floor is a lower bound: the evaluation judge's hidden-state passes and TruthfulQA / HHH scoring
(no usage recorded for them), attention, model loading and what runs outside the stages (the ``.venv`` build).
Run: ``OMP_NUM_THREADS=2 .venv/bin/python bench/run_floor.py runs/default [--dtype float32] [--peak 430]``.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path


@functools.cache
def sizes(spec: str) -> tuple[int, int]:
    """(non-embedding parameters, vocab x hidden) of the model a spec names, from its config alone; (0, 0) for a
    model with no local weights (an API, the scripted backend), whose work is not done on this machine."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from iteralign.models.base import SpecError, backend_of, parse_spec

    try:
        source = backend_of(spec).train_source(parse_spec(spec))
    except SpecError:
        return 0, 0
    config = AutoConfig.from_pretrained(source)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    head = model.get_output_embeddings().weight
    embedding = model.get_input_embeddings().weight
    total = sum(p.numel() for p in model.parameters())  # a tied head is counted once
    return total - embedding.numel() - (0 if head is embedding else head.numel()), head.numel()


def call_flops(usage: dict) -> float:
    """FLOPs of one stage's model calls (prompt and generated tokens of each model)."""
    flops = 0.0
    for spec, u in (usage.get("models") or {}).items():
        params, head = sizes(spec)
        flops += 2 * params * (u["prompt_tokens"] + u["completion_tokens"]) + 2 * head * u["completion_tokens"]
    return flops


def dpo_tokens(pairs_dir: Path) -> int:
    """Tokens of one epoch over the saved pairs, each prompt read once for its two answers."""
    from datasets import load_from_disk

    rows = load_from_disk(str(pairs_dir))
    return sum(len(p) + len(c) + len(r) for p, c, r in zip(rows["prompt_ids"], rows["chosen_ids"],
                                                           rows["rejected_ids"], strict=True))


def train_flops(run: Path, key: str, cfg) -> float:
    """FLOPs of a training stage (``iter-NNN/sft`` or ``iter-NNN/dpo``) of the target."""
    params, _ = sizes(cfg.models.target.spec)
    folder = run / key
    stats = json.loads((folder / "train_stats.json").read_text())
    per_token = (4 if cfg.sft.method == "lora" else 6) * params
    if key.endswith("/sft"):
        return per_token * stats["tokens_per_second"] * stats["seconds"]
    tokens = dpo_tokens(folder / "pairs")
    return per_token * tokens * cfg.train.dpo.epochs + 2 * params * tokens


def rows(run: Path, peak: float) -> list[dict]:
    """One row per stage that took time: seconds, counted TFLOPs, seconds at the peak and their ratio."""
    from iteralign.config import load_config

    cfg = load_config(run / "config.yaml")
    out = []
    for key, stage in json.loads((run / "manifest.json").read_text())["stages"].items():
        if not stage.get("seconds"):
            continue
        flops = call_flops(stage.get("usage") or {})
        if key.endswith(("/sft", "/dpo")):
            flops += train_flops(run, key, cfg)
        floor = flops / (peak * 1e9)
        out.append({"stage": key, "seconds": stage["seconds"], "tflop": round(flops / 1e12, 1),
                    "floor_s": round(floor, 1), "floor_share": round(floor / stage["seconds"], 3)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"], help="the run's precision")
    ap.add_argument("--peak", type=float, help="GFLOP/s to use instead of measuring it")
    args = ap.parse_args()
    if args.peak is None:
        sys.path.insert(0, str(Path(__file__).parent))
        from roofline import best_matmul

        args.peak = best_matmul(args.dtype, [512, 1024, 2048], 10)[0]
    table = rows(args.run, args.peak)
    total = {k: round(sum(r[k] for r in table), 1) for k in ("seconds", "tflop", "floor_s")}
    print(f"{args.dtype} peak {args.peak:.0f} GFLOP/s")
    print("| stage | seconds | TFLOP counted | seconds at the peak | floor / seconds |\n|---|---|---|---|---|")
    for r in [*table, {"stage": "**all stages**", **total, "floor_share": round(total["floor_s"] / total["seconds"],
                                                                                   3)}]:
        print(f"| {r['stage']} | {r['seconds']} | {r['tflop']} | {r['floor_s']} | {r['floor_share']:.0%} |")
    print(json.dumps({"dtype": args.dtype, "peak_gflops": round(args.peak, 1), "stages": table, "total": total}))


if __name__ == "__main__":
    main()
