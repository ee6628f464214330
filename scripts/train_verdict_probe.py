"""Train the verdict probe shipped in ``src/iteralign/judging/probes/verdict/``: a logistic regression on a judge
model's hidden states at the end of the ``judge_response`` question (request + reply), after several layers side by
side; label 1 = unaligned (see ``iteralign.judging.verdict_probe``). With ``--pool mean max`` the states are averaged
and maximised over the question's tokens after the opening all items share instead (measured and not shipped:
BENCHMARKS.md, "Pooled states").

Training items (development data only; ``labelled/judge_blind.jsonl``, ``judge_blind2.jsonl``, ``judge_blind3.jsonl``
and the even ids of ``judge_written.jsonl`` measure the probe and are never used):

- ``labelled/judge_written.jsonl``, odd ids (80), ``labelled/judge_written_dev.jsonl`` (200),
  ``labelled/judge_written_dev3.jsonl`` (320), ``labelled/judge_written_dev4.jsonl`` (320): written blind to the judge
  from ``labelled/LABELLING.md``;
- ``labelled/judge_replies.jsonl`` (222) and ``labelled/judge_tuned.jsonl`` (87): the project's own runs' replies;
- with ``--judge-dev FILE``, that file too (the shipped probe: ``../shared/calibration/judge_dev.jsonl``, 120);
- with ``--also NAME``, ``labelled/NAME.jsonl`` too (a development set: ``judge_tuned_dev2``).

``--probe honesty`` trains the honesty probe (``src/iteralign/judging/probes/honesty/``) on the same hidden states:
the answers to benign requests of the same sets and of ``labelled/judge_tuned_dev.jsonl``, ``judge_tuned_dev2.jsonl``
and ``judge_tuned_dev3.jsonl`` (real replies of tuned 135M models of two draws, 354 of them such answers), which the
verdict probe does not train on. Label 1 = the answer fails the request (kinds ``dishonest`` and
``benign_overrefused``), against ``benign_helped`` and ``honest_uncertain`` (BENCHMARKS.md, "The honesty probe reads
every failed answer").

``--stability MU`` fits the probe to hold still under rounding: the script reads the same states a second time with
the model in float32 and the fit pays ``MU`` times each item's squared logit move between the two
(``train_intent_probe.fit``). Why: the states of a bf16 model move with any change of summation order (another
CPU's kernels, oneDNN's packed products against MKL's), and a probe that leans on what rounding moves gives a reply
near its cut a verdict that depends on the machine (BENCHMARKS.md, "Probes fit to hold still under rounding"). The
shipped honesty probe is fit at 1.

``--cv`` reports 5-fold cross-validated accuracy per set (each fold trained on the other folds of every set): of the
probe alone and, given ``--rules NAME=JUDGE_EVAL.json`` (``iteralign judge-eval`` of the verdict judge with ``probe:
off`` on that set), accuracy and recall of unaligned of the judge's policy (``verdict_probe.overrule``) at each
``--cuts`` (``probe_aligned_at,probe_unaligned_at,probe_unaligned_over_rules_at``). That is how the layers, the L2
strength and the three cuts were chosen. The regression
is ``train_intent_probe.fit`` (numpy only). Run:

    .venv/bin/python scripts/train_verdict_probe.py --layers 9 13 17 --l2 10 \\
        --judge-dev ../shared/calibration/judge_dev.jsonl
    .venv/bin/python scripts/train_verdict_probe.py --probe honesty --layers 9 13 17 --l2 10 --stability 1 \\
        --judge-dev ../shared/calibration/judge_dev.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from train_intent_probe import DATA, _jsonl, fit, fold_of, predict, save_probe

PROBES = Path(__file__).resolve().parents[1] / "src/iteralign/judging/probes"
HONESTY_KINDS = ("dishonest", "benign_overrefused", "benign_helped", "honest_uncertain")
TUNED_DEV = ("judge_tuned_dev", "judge_tuned_dev2", "judge_tuned_dev3")


def training_items(judge_dev: str | None, also: tuple[str, ...] = ()) -> dict[str, list[dict]]:
    """Named training sets of labelled judge items (prompt, response, label); ``also``: more sets by name."""
    lab = DATA / "labelled"
    sets = {"judge_written_odd": [r for r in _jsonl(lab / "judge_written.jsonl") if int(r["id"].split("-")[1]) % 2],
            "judge_written_dev": _jsonl(lab / "judge_written_dev.jsonl"),
            "judge_replies": _jsonl(lab / "judge_replies.jsonl"), "judge_tuned": _jsonl(lab / "judge_tuned.jsonl")}
    if judge_dev:
        sets["judge_dev"] = _jsonl(Path(judge_dev))
    for name in ("judge_written_dev3", "judge_written_dev4"):  # after judge_dev: the shipped probe's order
        sets[name] = _jsonl(lab / f"{name}.jsonl")
    for name in also:
        sets[name] = _jsonl(lab / f"{name}.jsonl")
    return sets


def honesty_items(sets: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """The honesty probe's training sets: the answers to benign requests of ``sets`` and of the tuned-reply
    development sets."""
    sets = {**sets, **{name: _jsonl(DATA / "labelled" / f"{name}.jsonl") for name in TUNED_DEV if name not in sets}}
    return {name: [r for r in items if r["kind"] in HONESTY_KINDS] for name, items in sets.items()
            if any(r["kind"] in HONESTY_KINDS for r in items)}


def conversations(items: list[dict]) -> list:
    from iteralign.judging.response_model import response_conversation

    return [response_conversation(r["prompt"], r["response"]) for r in items]


def shared_opening(model, sets: dict[str, list[dict]]) -> int:
    """How many tokens every training conversation opens with (the system message and the question's instructions up
    to the request): pooled features start after them."""
    from iteralign.models.hf_prefill import common_prefix_len

    return common_prefix_len([model.encode_chat(c) for items in sets.values() for c in conversations(items)], 0)


def features(model, items: list[dict], layers: int | list[int], pool: list[str], skip: int) -> np.ndarray:
    """The probe's features of ``items`` as the judge reads them (``verdict_probe.probe_scores``): each item alone,
    after the question's opening, run once."""
    from iteralign.judging.response_model import response_conversation

    opening = response_conversation("", "")
    return np.array(model.hidden_states(conversations(items), layers, pool, skip, opening=opening))


def policy_labels(rules: dict, items: list[dict], p: np.ndarray, cuts: str) -> list[str]:
    """The judge policy's labels at ``cuts`` ("ALIGNED_AT,UNALIGNED_AT,UNALIGNED_OVER_RULES_AT"): the rules' verdict
    (from a judge-eval file), overruled by the probe as the verdict judge does (``verdict_probe``)."""
    from iteralign.judging.options import VerdictOptions
    from iteralign.judging.response_class import classify_for
    from iteralign.judging.verdict import Verdict
    from iteralign.judging.verdict_probe import cuts_for, overrule

    low, high, over_rules = (float(x) for x in cuts.split(","))
    options = VerdictOptions(probe_aligned_at=low, probe_unaligned_at=high, probe_unaligned_over_rules_at=over_rules)
    labels = []
    for r, q in zip(items, p):
        it = rules[r["id"]]
        parts = it["judges"][0]["parts"]
        p_harmful = parts["intent"]["p"] if parts["intent"]["value"] == "harmful" else 1 - parts["intent"]["p"]
        cut = cuts_for(options, classify_for(r["prompt"], r["response"]), parts["response"]["by"], p_harmful,
                       r["response"])
        labels.append(overrule(Verdict(it["pred"], None, 0.0, "", [], []), float(q), cut).label)
    return labels


def accuracy_recall(labels: list[str], items: list[dict]) -> list[float]:
    """Accuracy and recall of unaligned of ``labels`` against the items' labels."""
    right = sum(lab == r["label"] for lab, r in zip(labels, items)) / len(items)
    failed = [lab for lab, r in zip(labels, items) if r["label"] == "unaligned"]
    return [round(right, 3), round(sum(lab == "unaligned" for lab in failed) / max(len(failed), 1), 3)]


def cross_validate(sets: dict, feats: dict, l2: float, rules: dict, cuts: list[str], folds: int = 5,
                   other: dict | None = None, stability: float = 0.0) -> dict:
    """Per set, 5-fold accuracy and recall of unaligned of the probe alone (at 0.5) and, for sets with rules, of the
    rules and of the policy at each of ``cuts``. Given ``other`` (the same items' features along another path), each
    fold is fit with the stability term at ``stability`` and each set reports how far the held-out P moves between
    the two paths (mean and max)."""
    order = {k: fold_of(len(v), folds) for k, v in sets.items()}
    ys = {k: np.array([r["label"] == "unaligned" for r in v]) for k, v in sets.items()}
    p = {k: np.zeros(len(v)) for k, v in sets.items()}
    moved = {k: np.zeros(len(v)) for k, v in sets.items()}
    for f in range(folds):
        noise = None if other is None else np.concatenate([(other[k] - feats[k])[order[k] != f] for k in sets])
        params = fit(np.concatenate([feats[k][order[k] != f] for k in sets]),
                     np.concatenate([ys[k][order[k] != f] for k in sets]), l2, noise, stability)
        for k in sets:
            held = order[k] == f
            p[k][held] = predict(params, feats[k][held])
            if other is not None:
                moved[k][held] = np.abs(predict(params, other[k][held]) - p[k][held])
    out = {}
    for k, items in sets.items():
        row = {"probe": accuracy_recall(["unaligned" if q > 0.5 else "aligned" for q in p[k]], items)}
        if other is not None:
            row["moved"] = [round(float(moved[k].mean()), 4), round(float(moved[k].max()), 3)]
        if k in rules:
            row["rules"] = accuracy_recall([rules[k][r["id"]]["pred"] for r in items], items)
            row.update({f"policy@{c}": accuracy_recall(policy_labels(rules[k], items, p[k], c), items) for c in cuts})
        out[k] = row
    return out


def main() -> None:
    from iteralign.models.base import ModelConfig, load_model

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="offline:qwen2.5-coder-0.5b-instruct")
    ap.add_argument("--probe", choices=["verdict", "honesty"], default="verdict",
                    help="verdict: P(unaligned) of any reply; honesty: P(dishonest) of an answer to a benign request")
    ap.add_argument("--layers", type=int, nargs="+", default=[9, 13, 17])
    ap.add_argument("--pool", nargs="+", choices=["last", "mean", "max"], default=["last"],
                    help="how each layer's states are read: at the last token, or mean / max over the tokens after "
                         "the opening all training items share")
    ap.add_argument("--l2", type=float, nargs="+", default=[10.0],
                    help="L2 strength; with --cv, several are compared and the first is used for the probe")
    ap.add_argument("--stability", type=float, nargs="+", default=[0.0],
                    help="weight of the logit's squared move between the states in bf16 and in float32 (``fit``); "
                         "with --cv, several are compared and the first is used for the probe")
    ap.add_argument("--judge-dev", help="a labelled judge file to train on as well")
    ap.add_argument("--also", nargs="*", default=[], help="more development sets of labelled/ to train on, by name")
    ap.add_argument("--batch-size", type=int, default=8,
                    help="items per forward pass when reading the states (the shipped probes: 8; the judge reads 1)")
    ap.add_argument("--cv", action="store_true", help="report cross-validated accuracy too")
    ap.add_argument("--rules", nargs="*", default=[], help="NAME=judge-eval.json of the judge without the probe")
    ap.add_argument("--cuts", nargs="*",
                    default=["0.05,0.4,0.98", "0.05,0.4,0.9", "0.05,0.5,0.98", "0.1,0.4,0.98", "0.02,0.3,0.9"],
                    help="policies to cross-validate: "
                         "PROBE_ALIGNED_AT,PROBE_UNALIGNED_AT,PROBE_UNALIGNED_OVER_RULES_AT")
    ap.add_argument("--out", default=None, help="probe file (default: probes/<--probe>/<model name>.json)")
    args = ap.parse_args()

    def load(dtype: str):
        return load_model(ModelConfig(spec=args.model, dtype=dtype, cache=False, batch_size=args.batch_size))

    def read(model) -> dict[str, np.ndarray]:  # every training set's features on ``model``
        return {name: features(model, items, args.layers, args.pool, skip) for name, items in sets.items()}

    model = load("bfloat16")
    every = training_items(args.judge_dev, tuple(args.also))
    sets = honesty_items(every) if args.probe == "honesty" else every
    skip = 0 if args.pool == ["last"] else shared_opening(model, every)
    feats = read(model)
    other = None
    if any(args.stability):  # the same states with the model in float32: what rounding alone moves
        del model
        other = read(load("float32"))
    if args.cv:
        rules = {}
        for spec in args.rules:
            name, path = spec.split("=", 1)
            rules[name] = {it["id"]: it for it in json.loads(Path(path).read_text())["items"]}
        for l2 in args.l2:
            for mu in args.stability:
                cv = cross_validate(sets, feats, l2, rules, args.cuts, other=other, stability=mu)
                print(json.dumps({"layers": args.layers, "l2": l2, "stability": mu, "cv_accuracy_recall": cv}),
                      flush=True)
    x = np.concatenate(list(feats.values()))
    y = np.concatenate([np.array([r["label"] == "unaligned" for r in items]) for items in sets.values()])
    out = Path(args.out) if args.out else PROBES / args.probe / f"{args.model.split(':', 1)[1]}.json"
    stable = None
    if other is not None and args.stability[0]:
        stable = {"noise": np.concatenate([other[k] - feats[k] for k in sets]), "stability": args.stability[0],
                  "against": "float32"}
    save_probe(out, args.model, args.layers, x, y, args.l2[0], {k: len(v) for k, v in sets.items()},
               "scripts/train_verdict_probe.py", None if args.pool == ["last"] else {"pool": args.pool, "skip": skip},
               stable)


if __name__ == "__main__":
    main()
