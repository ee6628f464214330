"""Generate the unlabelled replies of ``labelled/judge_tuned2.jsonl`` and ``labelled/judge_tuned_dev.jsonl``: the
tuned 135M of a finished ``make run`` (``runs/default``'s DPO adapter) answers, bf16, greedy, at most 80 new tokens as
the red-team stage generates, either the seed prompts that run's split left unused (every unused harmful prompt of
``seeds/redteam_seeds.jsonl``, the first 40 unused benign look-alikes of ``seeds/contrast_benign.jsonl``: judge_tuned2)
or, with ``--red-teamed``, the 160 prompts the run red-teamed in its iteration (judge_tuned_dev), or, with
``--benign-rest``, the unused benign look-alikes after judge_tuned2's first 40 (judge_tuned_dev2). ``--run`` names
another run (judge_tuned3: judge_tuned2's construction on the run of seed 1, ``--prefix jt3``). Labels (``label``,
``kind``, ``note``) are added by hand by the rules of ``labelled/LABELLING.md``. Run after ``make run``:

    OMP_NUM_THREADS=2 .venv/bin/python scripts/build_judge_tuned.py --out replies.jsonl [--red-teamed | --benign-rest]
        [--run runs/NAME] [--prefix ID_PREFIX]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from train_intent_probe import DATA, _jsonl


def main() -> None:
    from iteralign.answering import answer
    from iteralign.data.split import SplitRecord
    from iteralign.layout import RunLayout
    from iteralign.models.base import ModelConfig, load_model
    from iteralign.records import Answer, Prompt
    from iteralign.run import read_jsonl
    from iteralign.text import text_id
    from iteralign.types import GenerationParams

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", type=Path, default=Path("runs/default"))
    ap.add_argument("--out", type=Path, required=True)
    which = ap.add_mutually_exclusive_group()
    which.add_argument("--red-teamed", action="store_true", help="the run's red-teamed prompts (judge_tuned_dev)")
    which.add_argument("--benign-rest", action="store_true",
                       help="the unused benign look-alikes judge_tuned2 left out (judge_tuned_dev2)")
    ap.add_argument("--prefix", help="the ids' prefix (default: jt2, jtd or jtb, by the set)")
    args = ap.parse_args()
    layout = RunLayout(args.run)
    files = layout.iteration(0)
    if args.red_teamed:
        prompts = [Answer.model_validate(r).prompt.text for r in read_jsonl(files.redteam)]
    else:
        split = SplitRecord.model_validate_json(layout.split.read_text())
        used = set(split.train) | set(split.held_out)
        harmful = [r["text"] for r in _jsonl(DATA / "seeds/redteam_seeds.jsonl") if text_id(r["text"]) not in used]
        benign = [r["text"] for r in _jsonl(DATA / "seeds/contrast_benign.jsonl") if text_id(r["text"]) not in used]
        prompts = benign[40:] if args.benign_rest else harmful + benign[:40]
    model = load_model(ModelConfig(spec="offline:smollm2-135m-instruct", dtype="bfloat16", cache=False, batch_size=16,
                                   adapter=str(files.dpo_adapter)))
    answers = answer(model, [Prompt.make(p) for p in prompts], GenerationParams(max_new_tokens=80))  # as red-teamed
    prefix = args.prefix or ("jtd" if args.red_teamed else "jtb" if args.benign_rest else "jt2")
    with args.out.open("w", encoding="utf-8") as f:
        for i, a in enumerate(answers, 1):
            row = {"id": f"{prefix}-{i:03d}", "prompt": a.prompt.text, "response": a.response}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
