"""Which principles the reviser is shown, on the failures of recorded runs: how many are about another subject.

For every revision of every iteration of the given run folders, the principles it was written with (recorded) and
those ``Constitution.relevant`` chooses now (from the run's constitution as of that iteration, for the failure's
kind, as many as the run's ``reflect.principles_k``) are put in three classes by their *topic words*
(``similarity.principle_key``: content words minus the frame most principles share). The classes are crude: a
general rule with a word of style ("offer safe and ethical alternatives") counts as off topic.

- ``on topic``: a specific principle that shares a topic word with the failed prompt (not a verb any request uses:
  "make", "use", "get");
- ``generic``: a principle with no topic words ("decline harmful requests briefly and offer a safe alternative");
- ``off topic``: a specific principle about another subject ("... how to create toxic gases" for a Wi-Fi password).

It also counts the kept revisions that name a subject the prompt does not ("I will not provide information on how
to create toxic gases" for a Ponzi scheme), the reviser echoing an off-topic principle.

With ``--revise RUN ITERATION`` it also has the reviser (``--model``, bf16, greedy, cache off, the run's reflect
settings) revise that iteration's failures with the principles chosen now, and compares with the revisions the run
recorded (chosen as they were then): how many the rules judge aligned (the training filter, ``verdict`` without a
model), how many refuse another subject, talk about revising, name the prompt's subject, or decline in the general
principles' words ("illegal or unethical"), and first the pairs where only the recorded revision refuses another
subject (``--show N``). To measure a change to
``relevant``, run it with the change on a run folder the code before it wrote (or the reverse, with PYTHONPATH).

    .venv/bin/python bench/principle_choice.py runs/q5-s3 runs/q5-s4 runs/q5-s5
        [--revise runs/q5-s5 0 [--model offline:qwen2.5-coder-1.5b-instruct] [--show 8]]
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path

from iteralign.constitution import as_of, load
from iteralign.constitution.similarity import principle_key
from iteralign.layout import IterationFiles, RunLayout
from iteralign.records import Revision
from iteralign.run import read_jsonl
from iteralign.stages.propose import principle_kind
from iteralign.stages.reflect import ReflectConfig
from iteralign.training_data import saved_config

#: Verbs any request uses ("make" also stands for build/create/produce): a shared one names no common subject.
_REQUEST_VERBS = frozenset({"make", "use", "get", "tell", "want", "need", "know", "take", "find", "start", "try"})
_HOW_TO = re.compile(r"information (?:on|about) how to ([a-z ,-]{3,60})")
_GENERIC = re.compile(r"illegal,? (?:or )?unethical")


def classify(prompt: str, principle: str) -> str:
    topic = principle_key(principle).topic - _REQUEST_VERBS
    if not topic:
        return "generic"
    return "on topic" if topic & principle_key(prompt).topic else "off topic"


def echoes_other_subject(prompt: str, text: str) -> bool:
    """A revision that refuses "information on how to X" where no topic word of X is in the prompt."""
    match = _HOW_TO.search(text.lower())
    if not match:
        return False
    subject = principle_key(match.group(1)).topic
    return bool(subject) and not subject & principle_key(prompt).topic


def names_subject(prompt: str, text: str) -> bool:
    """A revision that shares a topic word with the prompt (it says what it declines)."""
    return bool((principle_key(text).topic - _REQUEST_VERBS) & principle_key(prompt).topic)


def measures(failures: list[Revision], texts: list[str], verdicts: list) -> dict:
    """What ``--revise`` counts for one set of revision texts of ``failures``."""
    from iteralign.judging.cues import first_match

    prompts = [r.answer.prompt.text for r in failures]
    return {"revisions": len(texts), "judged aligned": sum(v.label == "aligned" for v in verdicts),
            "refusing another subject": sum(map(echoes_other_subject, prompts, texts)),
            "talking about revising (cues.META)": sum(first_match("meta", t) is not None for t in texts),
            "naming the prompt's subject": sum(map(names_subject, prompts, texts)),
            "illegal or unethical": sum(bool(_GENERIC.search(t.lower())) for t in texts),
            "mean characters": round(sum(map(len, texts)) / max(len(texts), 1))}


def reflect_config(layout: RunLayout) -> ReflectConfig:
    """The run's reflect settings as it saved them (its ``principles_k``, mode and generation)."""
    return ReflectConfig.model_validate(saved_config(layout).get("reflect") or {})


def revisions(files: IterationFiles) -> list[Revision]:
    return [Revision.model_validate(r) for r in read_jsonl(files.revisions)]


def revise(run: Path, iteration: int, spec: str, show: int) -> dict:
    """The run's recorded revisions of ``iteration`` against new ones written with the principles chosen now."""
    from iteralign.judges import JudgeConfig, JudgeItem
    from iteralign.judges.base import JudgeContext, build_panel
    from iteralign.models.base import ModelConfig, load_model
    from iteralign.stages.reflect import revision_conversation

    layout = RunLayout(run)
    reflect = reflect_config(layout)
    store = as_of(load(layout.constitution), iteration)
    old = revisions(layout.iteration(iteration))
    convs = [revision_conversation(r.answer, store.relevant(r.answer.prompt.text, reflect.principles_k,
                                                            principle_kind(r.answer)), reflect.mode) for r in old]
    model = load_model(ModelConfig(spec=spec, dtype="bfloat16", cache=False, batch_size=16))
    now = [c.text.strip() for c in model.generate(convs, reflect.generation)]
    texts = {"recorded": [r.text for r in old], "now": now}
    rules = JudgeConfig(judges=[{"kind": "verdict", "use_model": False}])
    panel = build_panel(rules, JudgeContext(lambda cfg: None, rules, []))
    pairs = sorted(zip(old, texts["recorded"], texts["now"]), reverse=True, key=lambda x: echoes_other_subject(
        x[0].answer.prompt.text, x[1]) - echoes_other_subject(x[0].answer.prompt.text, x[2]))
    for r, a, b in pairs[:show]:
        print(f"== {r.answer.prompt.text[:110]}\n   recorded: {a[:220]!r}\n   now:      {b[:220]!r}")
    return {name: measures(old, ts, panel.judge([JudgeItem.of(r.answer, t) for r, t in zip(old, ts)]))
            for name, ts in texts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--revise", nargs=2, metavar=("RUN", "ITERATION"), help="revise again and compare")
    parser.add_argument("--model", default="offline:qwen2.5-coder-1.5b-instruct", help="the reviser (--revise)")
    parser.add_argument("--show", type=int, default=8, help="pairs to print (--revise)")
    args = parser.parse_args()
    shown = {"recorded": Counter(), "now": Counter()}
    failures, kept, echoes = 0, 0, 0
    for run in args.runs:
        layout = RunLayout(run)
        store, k = load(layout.constitution), reflect_config(layout).principles_k
        for files in layout.iterations():
            current = as_of(store, files.index)
            for rev in revisions(files):
                prompt = rev.answer.prompt.text
                failures += 1
                chosen = {"recorded": [store.get(i) for i in rev.principle_ids],
                          "now": current.relevant(prompt, k, principle_kind(rev.answer))}
                for name, principles in chosen.items():
                    shown[name].update(classify(prompt, p.text) for p in principles)
                if rev.kept:
                    kept += 1
                    echoes += echoes_other_subject(prompt, rev.text)
    result: dict = {"failures": failures}
    for name, counts in shown.items():
        total = sum(counts.values())
        result[f"principles shown ({name})"] = {
            "all": total, **{c: f"{counts[c]} ({counts[c] / max(total, 1):.1%})" for c in ("on topic", "generic",
                                                                                          "off topic")}}
    result.update({"kept revisions (as recorded)": kept, "of them refusing another subject": echoes})
    if args.revise:
        result["revise"] = revise(Path(args.revise[0]), int(args.revise[1]), args.model, args.show)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
