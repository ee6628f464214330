"""Which layer should the intent probe read? Cross-validated probe accuracy per decoder layer, from one forward pass.

For every training prompt of ``scripts/train_intent_probe.py`` and every prompt of the development files, the model's
hidden state at the last prompt token is taken at *every* layer in a single pass (``output_hidden_states``), then
each layer (and a few concatenations) is scored the way ``train_intent_probe.py --cv`` scores one: 5-fold accuracy on
``intent_dev`` (folds added to the other training sets) and, given ``--judge-dev``, on that file's prompts (labelled
by kind: ``harmful_*`` is harmful). ``intent_eval.jsonl`` is not read: it stays the measuring set.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python bench/probe_layers.py --judge-dev ../shared/calibration/judge_dev.jsonl``
(about 6 min of hidden states for Qwen2.5-Coder-0.5B on one core, then ~1 min of fitting per layer and strength).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from train_intent_probe import cross_validate, judge_prompts, training_prompts  # noqa: E402


def all_layers(model, prompts: list[str], batch_size: int = 16) -> np.ndarray:
    """prompts x (layers + 1) x hidden: the last prompt token's state after the embedding and after each layer."""
    import torch

    net, tok = model._model, model._tokenizer
    ids = [model.encode_chat([{"role": "user", "content": p}]) for p in prompts]
    out = []
    for start in range(0, len(ids), batch_size):
        enc = tok.pad({"input_ids": ids[start:start + batch_size]}, padding=True, padding_side="left",
                      return_tensors="pt")
        mask = enc["attention_mask"]
        with torch.inference_mode():
            hidden = net(input_ids=enc["input_ids"], attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(
                min=0), output_hidden_states=True).hidden_states
        out.append(torch.stack([h[:, -1].float() for h in hidden], 1).numpy())
    return np.concatenate(out)


def main() -> None:
    from iteralign.models.base import ModelConfig, load_model

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="offline:qwen2.5-coder-0.5b-instruct")
    ap.add_argument("--judge-dev", help="a labelled judge file whose prompts are cross-validated too")
    ap.add_argument("--l2", type=float, nargs="+", default=[10.0, 100.0])
    ap.add_argument("--concat", nargs="*", default=["8,12,16", "12,16,20"], help="layer sets to concatenate")
    args = ap.parse_args()

    model = load_model(ModelConfig(spec=args.model, dtype="bfloat16", cache=False, batch_size=16))
    model = model if hasattr(model, "_model") else model.model  # the transformers backend under the handle
    sets = training_prompts()
    states = {name: all_layers(model, [p for p, _ in items]) for name, items in sets.items()}
    held_sets = {"intent_dev": (states["intent_dev"], np.array([lab for _, lab in sets["intent_dev"]]))}
    if args.judge_dev:
        rows = judge_prompts(Path(args.judge_dev))
        held_sets["judge_dev"] = (all_layers(model, [p for p, _ in rows]), np.array([y for _, y in rows]))
    n_layers = states["intent_dev"].shape[1] - 1
    choices = [[layer] for layer in range(2, n_layers + 1, 2)] + [[int(x) for x in c.split(",")] for c in args.concat]
    for layers in choices:
        feats = {k: v[:, layers].reshape(len(v), -1) for k, v in states.items()}
        held = {k: (x[:, layers].reshape(len(x), -1), y) for k, (x, y) in held_sets.items()}
        for l2 in args.l2:
            print(json.dumps({"layers": layers, "l2": l2, "cv_accuracy": cross_validate(sets, feats, held, l2)}),
                  flush=True)


if __name__ == "__main__":
    main()
