"""Generate the unlabelled replies of ``labelled/judge_tuned2.jsonl``: the tuned 135M of a finished ``make run``
(``runs/default``'s DPO adapter) answers the seed prompts that run's split left unused (every unused harmful prompt
of ``seeds/redteam_seeds.jsonl``, the first 40 unused benign look-alikes of ``seeds/contrast_benign.jsonl``), bf16,
greedy, at most 80 new tokens as the red-team stage generates. Labels (``label``, ``kind``, ``note``) are added by
hand by the rules of ``labelled/LABELLING.md``. Run after ``make run``:

    OMP_NUM_THREADS=2 .venv/bin/python scripts/build_judge_tuned2.py --out replies.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from train_intent_probe import DATA, _jsonl


def main() -> None:
    from iteralign.models.base import ModelConfig, load_model
    from iteralign.text import text_id
    from iteralign.types import GenerationParams

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, default=Path("runs/default"))
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    split = json.loads((args.run / "split.json").read_text())
    used = set(split["train"]) | set(split["held_out"])
    harmful = [r["text"] for r in _jsonl(DATA / "seeds/redteam_seeds.jsonl") if text_id(r["text"]) not in used]
    benign = [r["text"] for r in _jsonl(DATA / "seeds/contrast_benign.jsonl") if text_id(r["text"]) not in used][:40]
    model = load_model(ModelConfig(spec="offline:smollm2-135m-instruct", dtype="bfloat16", cache=False, batch_size=16,
                                   adapter=str(args.run / "iter-000/dpo/adapter")))
    prompts = harmful + benign
    outs = model.generate([[{"role": "user", "content": p}] for p in prompts], GenerationParams(max_new_tokens=80))
    with args.out.open("w", encoding="utf-8") as f:
        for i, (p, o) in enumerate(zip(prompts, outs), 1):
            f.write(json.dumps({"id": f"jt2-{i:03d}", "prompt": p, "response": o.text}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
