"""Train the prompt-intent probe shipped in ``src/iteralign/judging/probes/``: a logistic regression on a judge
model's hidden state at the end of the request (see ``iteralign.judging.intent``).

Training prompts (all shipped with the package; none from XSTest, none from ``labelled/intent_eval.jsonl``, the
measuring set, and none of the prompts behind ``labelled/judge_replies.jsonl``):

- harmful: ``seeds/redteam_seeds.jsonl`` (160), DangerousQA (200), a seeded sample of 200 CatQA questions, the 60
  harmful prompts of ``labelled/intent_dev.jsonl`` and the 80 of ``labelled/intent_train.jsonl``;
- benign: ``seeds/benign_seeds.jsonl`` (84), ``seeds/contrast_benign.jsonl`` except every fifth line (208; the rest
  are prompts of judge_replies), a seeded sample of 100 TruthfulQA questions, and the 60 benign prompts of
  ``intent_dev.jsonl`` and the 80 of ``intent_train.jsonl``.

``intent_train.jsonl`` (160 casual requests, harmful ones whose harm is implied rather than named, and everyday
benign ones with alarming words) was written for this probe after the first probes missed exactly such requests.

``--cv`` also reports 5-fold cross-validated accuracy on intent_dev (and, given ``--judge-dev``, on that file's
prompts, labelled by kind: ``harmful_*`` is harmful), which is how the layer and the L2 strength were chosen.
Features are standardised; the regression is fitted by Newton's method (numpy only). Run:

    .venv/bin/python scripts/train_intent_probe.py --model offline:qwen2.5-coder-0.5b-instruct --layer 12 --l2 10
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / "src/iteralign/data"
OUT = Path(__file__).resolve().parents[1] / "src/iteralign/judging/probes"


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]


def training_prompts() -> dict[str, list[tuple[str, int]]]:
    """Named training sets of (prompt, 1 = harmful)."""
    qa = DATA / "benchmarks/dangerousqa"
    catqa = json.loads((qa / "catqa_english.json").read_text())
    catqa = [q for topic in catqa.values() for qs in topic.values() for q in qs]
    truthful = [r["question"] for r in json.loads((DATA / "benchmarks/truthfulqa/mc_task.json").read_text())]
    dev = _jsonl(DATA / "labelled/intent_dev.jsonl")
    contrast = [r["text"] for r in _jsonl(DATA / "seeds/contrast_benign.jsonl")]
    return {
        "redteam_seeds": [(r["text"], 1) for r in _jsonl(DATA / "seeds/redteam_seeds.jsonl")],
        "dangerousqa": [(q, 1) for q in json.loads((qa / "dangerousqa.json").read_text())],
        "catqa": [(q, 1) for q in random.Random(1).sample(catqa, 200)],
        "benign_seeds": [(r["text"], 0) for r in _jsonl(DATA / "seeds/benign_seeds.jsonl")],
        "contrast_benign": [(t, 0) for i, t in enumerate(contrast) if i % 5],
        "truthfulqa": [(q, 0) for q in random.Random(0).sample(truthful, 100)],
        "intent_dev": [(r["text"], int(r["intent"] == "harmful")) for r in dev],
        "intent_train": [(r["text"], int(r["intent"] == "harmful"))
                         for r in _jsonl(DATA / "labelled/intent_train.jsonl")],
    }


def judge_prompts(path: Path, parity: int | None = None) -> list[tuple[str, int]]:
    """(prompt, 1 = harmful) of a labelled judge file, each prompt once, intent from the item's kind (``harmful_*`` is
    harmful); only items whose id number has that ``parity`` when given (the halves of ``judge_written.jsonl``)."""
    rows = [r for r in _jsonl(path) if parity is None or int(r["id"].split("-")[1]) % 2 == parity]
    return list({r["prompt"]: int(r["kind"].startswith("harmful")) for r in rows}.items())


def fit(x: np.ndarray, y: np.ndarray, l2: float, noise: np.ndarray | None = None,
        stability: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Standardise, then L2-regularised logistic regression by Newton's method: (mean, scale, weights, bias).

    ``noise``: rows of feature differences the probe should not hear (the same items' states computed along another
    arithmetic path: another summation order of the same products). With ``stability`` > 0 the fit also pays
    ``stability`` times the sum over those rows of the logit's squared move, ``((noise / scale) @ w) ** 2``: a
    Tikhonov term with the differences' second moment, so weights along directions that rounding moves cost more
    than along those that only the content moves."""
    mean, scale = x.mean(0), x.std(0) + 1e-6
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    reg = np.diag(l2 * np.r_[np.ones(len(w) - 1), 0.0])
    if noise is not None and stability:
        moved = noise / scale
        reg[:-1, :-1] += 2 * stability * moved.T @ moved  # the Hessian of the sum of squared moves
    for _ in range(25):
        p = 1 / (1 + np.exp(-z @ w))
        grad = z.T @ (p - y) + reg @ w
        hess = (z * (p * (1 - p))[:, None]).T @ z + reg
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-9:  # converged: Newton's steps shrink quadratically
            break
    return mean, scale, w[:-1], float(w[-1])


def predict(params: tuple, x: np.ndarray) -> np.ndarray:
    mean, scale, w, b = params
    return 1 / (1 + np.exp(-(((x - mean) / scale) @ w + b)))


def features(model, prompts: list[str], layer: int) -> np.ndarray:
    return np.array(model.hidden_states([[{"role": "user", "content": p}] for p in prompts], layer))


def fold_of(n: int, folds: int = 5) -> np.ndarray:
    """Each of ``n`` items' fold (0 .. folds-1), the same for every script that cross-validates a probe on a set of
    that size (a fixed seed), so that their held-out P's agree."""
    return np.random.default_rng(0).permutation(n) % folds


def cross_validate(sets: dict, feats: dict, held: dict, l2: float, folds: int = 5) -> dict[str, float]:
    """Accuracy on each held-out set, each fold trained on every other set plus the other folds."""
    base = [k for k in sets if k not in held]
    out = {}
    for name, (x_h, y_h) in held.items():
        order = fold_of(len(y_h), folds)
        right = 0
        for k in range(folds):
            x = np.concatenate([feats[s] for s in base] + [x_h[order != k]])
            y = np.concatenate([np.array([lab for _, lab in sets[s]]) for s in base] + [y_h[order != k]])
            right += int(((predict(fit(x, y, l2), x_h[order == k]) > 0.5) == y_h[order == k]).sum())
        out[name] = right / len(y_h)
    return out


def main() -> None:
    from iteralign.models.base import ModelConfig, load_model

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="offline:qwen2.5-coder-0.5b-instruct")
    ap.add_argument("--layer", type=int, default=12)
    ap.add_argument("--l2", type=float, nargs="+", default=[10.0],
                    help="L2 strength; with --cv, several are compared and the first is used for the probe")
    ap.add_argument("--cv", action="store_true", help="report cross-validated accuracy instead of only training")
    ap.add_argument("--judge-dev", help="a labelled judge file whose prompts join the cross-validation")
    ap.add_argument("--out", default=None, help="probe file (default: probes/<model name>.json)")
    args = ap.parse_args()

    model = load_model(ModelConfig(spec=args.model, dtype="bfloat16", cache=False, batch_size=16))
    sets = training_prompts()
    feats = {name: features(model, [p for p, _ in items], args.layer) for name, items in sets.items()}
    if args.cv:
        held = {"intent_dev": (feats["intent_dev"], np.array([lab for _, lab in sets["intent_dev"]]))}
        if args.judge_dev:
            rows = judge_prompts(Path(args.judge_dev))
            held["judge_dev"] = (features(model, [p for p, _ in rows], args.layer), np.array([y for _, y in rows]))
        for l2 in args.l2:
            print(json.dumps({"layer": args.layer, "l2": l2, "cv_accuracy": cross_validate(sets, feats, held, l2)}))
    x = np.concatenate(list(feats.values()))
    y = np.concatenate([np.array([lab for _, lab in items]) for items in sets.values()])
    out = Path(args.out) if args.out else OUT / f"{args.model.split(':', 1)[1]}.json"
    save_probe(out, args.model, args.layer, x, y, args.l2[0], {k: len(v) for k, v in sets.items()},
               "scripts/train_intent_probe.py")


def save_probe(out: Path, model: str, layer: int | list[int], x: np.ndarray, y: np.ndarray, l2: float,
               training_sets: dict[str, int], script: str, reads: dict | None = None,
               stable: dict | None = None) -> None:
    """Fit the probe on all of ``x``, ``y`` and write it as ``judging.linear_probe.LinearProbe`` reads it; ``reads``:
    how its features were read when not at the last token (``{"pool": [...], "skip": N}``); ``stable``: the
    stability term's ``noise`` and ``stability`` (``fit``) and ``against``, what the noise rows are, for the
    provenance."""
    stable = stable or {}
    mean, scale, w, b = fit(x, y, l2, stable.get("noise"), stable.get("stability", 0.0))
    provenance = {"l2": l2} | ({"stability": stable["stability"], "against": stable["against"]} if stable else {})
    probe = {"model": model, "layer": layer, **(reads or {}),
             "mean": mean.round(6).tolist(), "scale": scale.round(6).tolist(),
             "weights": w.round(6).tolist(), "bias": round(b, 6),
             "provenance": {"script": script, **provenance, "training_sets": training_sets,
                            "training_accuracy": float(((predict((mean, scale, w, b), x) > 0.5) == y).mean())}}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(probe) + "\n", encoding="utf-8")
    print(f"probe -> {out} (training accuracy {probe['provenance']['training_accuracy']:.3f})")


if __name__ == "__main__":
    main()
