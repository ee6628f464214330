"""Where the reflect stage's time goes: reading the reviser's prompts (prefill) or writing the revisions (decode).

Rebuilds the reviser conversations of one iteration of a run folder (``revisions.jsonl`` and the run's
``constitution.yaml``: the same failures, principles and messages as the stage), then, on the reviser model, times
``generate`` with ``max_new_tokens=1`` (prefill, plus one step) and with the stage's own setting, in the stage's batch
size, greedy, cache off. Prints prompt and generated token counts, seconds for each, and the share of prefill. Run on
a quiet machine:

    .venv/bin/python bench/reflect_split.py runs/NAME [--iteration 0] [--model offline:qwen2.5-coder-1.5b-instruct]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import yaml


def conversations(run: Path, iteration: int) -> tuple[list, dict]:
    """The reviser conversations of ``iteration`` and the run's saved reflect config."""
    from iteralign.constitution import Principle
    from iteralign.records import Revision
    from iteralign.stages.reflect import ReflectConfig, revision_conversation

    cfg = yaml.safe_load((run / "config.yaml").read_text())
    reflect = ReflectConfig.model_validate(cfg.get("reflect") or {})
    texts = {p["id"]: p["text"] for p in yaml.safe_load((run / "constitution.yaml").read_text())["principles"]}
    path = run / f"iter-{iteration:03d}" / "revisions.jsonl"
    revisions = [Revision.model_validate_json(line) for line in path.open(encoding="utf-8") if line.strip()]
    convs = [revision_conversation(r.answer, [Principle(id=i, text=texts[i]) for i in r.principle_ids], reflect.mode)
             for r in revisions]
    return convs, {"reflect": reflect, "batch_size": (cfg["models"].get("reviser") or {}).get("batch_size", 16)}


def main() -> None:
    from iteralign.models.base import ModelConfig, load_model

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--iteration", type=int, default=0)
    ap.add_argument("--model", default="offline:qwen2.5-coder-1.5b-instruct")
    ap.add_argument("--limit", type=int, default=None, help="Only the first N conversations (a quick check).")
    args = ap.parse_args()
    convs, setting = conversations(args.run, args.iteration)
    convs = convs[: args.limit]
    model = load_model(ModelConfig(spec=args.model, dtype="bfloat16", cache=False, batch_size=setting["batch_size"]))
    full = setting["reflect"].generation
    tokenizer = model._tokenizer  # the backend's own: the same chat template and tokens as the stage
    rendered = [tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in convs]
    prompt_tokens = sum(len(tokenizer(text)["input_ids"]) for text in rendered)
    out = {"conversations": len(convs), "prompt_tokens": prompt_tokens}
    for name, params in [("prefill", full.model_copy(update={"max_new_tokens": 1})), ("generate", full)]:
        start = time.perf_counter()
        done = model.generate(convs, params)
        out[f"{name}_s"] = round(time.perf_counter() - start, 1)
        if name == "generate":
            out["generated_tokens"] = sum(len(tokenizer(c.text)["input_ids"]) for c in done)
    out["prefill_share"] = round(out["prefill_s"] / out["generate_s"], 3)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
