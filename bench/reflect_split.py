"""Where the reflect stage's time goes: reading the reviser's prompts (prefill) or writing the revisions (decode).

Rebuilds the reviser conversations of one iteration of a run folder (``revisions.jsonl`` and the run's
``constitution.yaml``: the same failures, principles and messages as the stage), then, on the reviser model, times
``generate`` with ``max_new_tokens=1`` (prefill, plus one step) and with the stage's own setting, in the stage's batch
size, greedy, cache off. Prints prompt and generated token counts, seconds for each, and the share of prefill. Run on
a quiet machine:

    .venv/bin/python bench/reflect_split.py runs/NAME [--iteration 0] [--model offline:qwen2.5-coder-1.5b-instruct]
        [--limit N] [--batch-size B]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def conversations(run: Path, iteration: int) -> tuple[list, dict]:
    """The reviser conversations of ``iteration`` (the principles recorded with each revision) and the run's saved
    reflect config and reviser batch size; read as ``principle_choice`` reads them."""
    from principle_choice import reflect_config, revisions

    from iteralign.constitution import load
    from iteralign.layout import RunLayout
    from iteralign.stages.reflect import revision_conversation
    from iteralign.training_data import saved_config

    layout = RunLayout(run)
    reflect, store = reflect_config(layout), load(layout.constitution)
    convs = [revision_conversation(r.answer, [store.get(i) for i in r.principle_ids], reflect.mode)
             for r in revisions(layout.iteration(iteration))]
    reviser = saved_config(layout)["models"].get("reviser") or {}
    return convs, {"reflect": reflect, "batch_size": reviser.get("batch_size", 16)}


def main() -> None:
    from iteralign.models.base import ModelConfig, load_model

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--iteration", type=int, default=0)
    ap.add_argument("--model", default="offline:qwen2.5-coder-1.5b-instruct")
    ap.add_argument("--limit", type=int, default=None, help="Only the first N conversations (a quick check).")
    ap.add_argument("--batch-size", type=int, default=None, help="Instead of the run's reviser batch size.")
    args = ap.parse_args()
    convs, setting = conversations(args.run, args.iteration)
    convs = convs[: args.limit]
    batch_size = args.batch_size or setting["batch_size"]
    model = load_model(ModelConfig(spec=args.model, dtype="bfloat16", cache=False, batch_size=batch_size))
    full = setting["reflect"].generation
    out: dict = {"conversations": len(convs)}
    for name, params in [("prefill", full.model_copy(update={"max_new_tokens": 1})), ("generate", full)]:
        start = time.perf_counter()
        done = model.generate(convs, params)
        out[f"{name}_s"] = round(time.perf_counter() - start, 1)
    out["prompt_tokens"] = sum(c.prompt_tokens for c in done)  # as the backend encoded them for the stage
    out["generated_tokens"] = sum(c.completion_tokens for c in done)  # each answer's end-of-turn token included
    out["prefill_share"] = round(out["prefill_s"] / out["generate_s"], 3)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
