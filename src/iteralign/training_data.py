"""The training data of a run, built in one place: SFT examples, preference pairs, and the rows other trainers read.

``iteralign export-data`` builds its rows with the rules the loop trains by (the replay filter is the loop's own
function here; revisions and pairs follow the loop's ``kept`` flag), so the exported data is the data the run used:

- ``revision_examples(revisions)``: kept revisions (re-judged aligned) as SFT examples, prompt -> revised text;
- ``replay_examples(answers, cut)``: replay answers fit to train on: judged aligned, not empty, and finished or, with
  ``cut`` (``sft.replay_cut: train``), cut off by the length limit: trained up to the first repeated sentence and
  without an end-of-turn token (with one, they would teach the model to stop mid-sentence);
- ``preference_pairs(revisions, answers)``: for each kept revision, chosen = the revision, rejected = the failed
  answer it replaces (``PreferencePair.from_revision``, as the loop builds them for DPO), then, given the judged
  red-team answers, the ``anchor_pairs``: a benign prompt's good answer chosen over a refusal;
  ``iteration_pairs`` builds an iteration's pairs by its ``AnchorSettings`` (for the loop and for ``RunData``);
- ``on_policy_pairs(good, probed)`` (``train.dpo.on_policy``): a good answer (``good_answers``: a pair's chosen one,
  or a replay answer) over what the SFT-tuned target, asked the prompt again, now answers, where that answer fails;
- ``RunData.read(layout)``: all of the above for a run folder, with the iteration each record comes from, and the
  constitution with its provenance;
- row converters in the column layouts TRL, alignment-handbook and axolotl read: ``sft_row`` (``messages``, a
  conversation), ``preference_row`` (``prompt`` / ``chosen`` / ``rejected`` as conversations, TRL's
  "conversational preference" type), ``principle_row``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, NamedTuple

from iteralign.constitution import Constitution, load
from iteralign.judging.response_class import sentences
from iteralign.layout import RunLayout
from iteralign.records import Answer, Example, PreferencePair, Prompt, Revision
from iteralign.run import read_jsonl
from iteralign.text import before_repetition


def revision_examples(revisions: Iterable[Revision]) -> list[Example]:
    """Kept revisions as supervised examples (what each iteration's SFT trains on, beside the replay set)."""
    return [Example(id=r.id, prompt=r.prompt, completion=r.text) for r in revisions if r.kept]


def lessons(earlier: dict[str, Revision], revisions: Iterable[Revision], carry_over: bool) -> dict[str, Revision]:
    """The revisions an iteration trains on, by prompt id: its own, and with ``carry_over`` the ``earlier`` ones too
    (``train.carry_over``); a prompt revised again keeps its newest revision."""
    return (dict(earlier) if carry_over else {}) | {r.id: r for r in revisions}


def trainable_replay(answer: Answer, cut: bool = False) -> bool:
    """A replay answer is trained on when judged aligned, not empty and finished; with ``cut`` (``sft.replay_cut:
    train``) also when the length limit cut it off."""
    return ((cut or answer.finish_reason == "stop") and bool(answer.response.strip()) and answer.verdict is not None
            and answer.verdict.label == "aligned")


def replay_examples(answers: Iterable[Answer], cut: bool = False) -> list[Example]:
    """The replay answers fit to train on (``trainable_replay``), as supervised examples. A cut answer (``cut``)
    is trained up to its first repeated sentence (``text.before_repetition``: a small model cut off by the limit has
    often fallen into a loop) and without an end-of-turn token: the model learns how it began, not to stop there."""
    return [Example(id=a.id, prompt=a.prompt, origin="replay", complete=a.finish_reason == "stop",
                    completion=a.response if a.finish_reason == "stop" else before_repetition(a.response))
            for a in answers if trainable_replay(a, cut)]


class AnchorSettings(NamedTuple):
    """The ``train.dpo`` keys that choose the anchor pairs (they act through the pairs, not on how DPO trains)."""

    anchors: bool = False
    replay_anchors: bool = False
    anchor_refusals: int = 1

    @classmethod
    def of(cls, dpo) -> "AnchorSettings":
        """From a ``DPOSettings`` (the run config's ``train.dpo``)."""
        return cls(*(getattr(dpo, name) for name in cls._fields))


def iteration_pairs(revisions: Iterable[Revision], answers: Iterable[Answer], replay: Iterable[Answer],
                    settings: AnchorSettings) -> list[PreferencePair]:
    """An iteration's preference pairs: its kept revisions', then anchors from its judged red-team ``answers`` (and
    the ``replay`` answers, by ``settings``)."""
    anchors = anchor_answers((settings.anchors, settings.replay_anchors), answers, replay)
    return preference_pairs(revisions, anchors, settings.anchor_refusals)


def preference_pairs(revisions: Iterable[Revision], answers: Iterable[Answer] = (),
                     refusals_per_anchor: int = 1) -> list[PreferencePair]:
    """Chosen = a kept revision, rejected = the failed answer it rewrites (``PreferencePair.from_revision``, the
    pairs the DPO stage trains on); revisions not kept make no pair (their own verdict did not find them better).
    Given the iteration's judged red-team ``answers``, the ``anchor_pairs`` follow."""
    revisions = list(revisions)
    return [PreferencePair.from_revision(r) for r in revisions if r.kept] + anchor_pairs(
        answers, revisions, per_answer=refusals_per_anchor)


def anchor_answers(settings: tuple[bool, bool], answers: Iterable[Answer], replay: Iterable[Answer]) -> list[Answer]:
    """The answers anchors are made from, by ``settings`` = (``train.dpo.anchors``, ``train.dpo.replay_anchors``):
    none, the iteration's red-team answers, or those and the replay answers (a prompt in both counts once)."""
    anchors, with_replay = settings
    chosen = list(answers) if anchors else []
    seen = {a.id for a in chosen}
    return chosen + [a for a in replay if a.id not in seen] if anchors and with_replay else chosen


def anchor_pairs(answers: Iterable[Answer], revisions: Iterable[Revision], styles: int = 3,
                 per_answer: int = 1) -> list[PreferencePair]:
    """For each benign prompt the target answered well (intent benign, judged aligned), its answer chosen over a
    refusal: the refusing revisions teach the target to decline, and these pairs teach it where not to.

    The rejected refusal is the opening sentence of the iteration's kept refusing revisions (those of a
    ``complied_harmful`` failure), the ``styles`` most frequent in turn: what this round's training makes the
    target say. ``per_answer`` > 1 pairs each good answer with that many different refusals (at most ``styles``):
    more weight on where not to refuse. No refusing revision, no anchors (nothing is teaching the target to refuse)."""
    refusing = [sentences(r.text) for r in revisions
                if r.kept and r.answer.verdict is not None and r.answer.verdict.failure == "complied_harmful"]
    openings = Counter(split[0] for split in refusing if split)
    refusals = [text for text, _ in openings.most_common(styles)]
    if not refusals:
        return []
    return [PreferencePair(id=f"anchor-{a.id}" + (f"-{j}" if j else ""), prompt=a.prompt, chosen=a.response,
                           origin="anchor", rejected=refusals[(i + j) % len(refusals)],
                           chosen_complete=a.finish_reason == "stop")
            for i, a in enumerate(helped(answers)) for j in range(min(per_answer, len(refusals)))]


def helped(answers: Iterable[Answer]) -> list[Answer]:
    """The answers to benign prompts judged aligned and not empty: good answers to prefer over a refusal."""
    return [a for a in answers if a.prompt.intent == "benign" and a.verdict is not None
            and a.verdict.label == "aligned" and a.response.strip()]


class Good(NamedTuple):
    """A prompt's good answer, which an on-policy pair prefers over what the tuned target says instead."""

    prompt: Prompt
    text: str
    complete: bool


def good_answers(pairs: Iterable[PreferencePair], replay: Iterable[Answer] = ()) -> dict[str, Good]:
    """By prompt id, the answers ``train.dpo.on_policy`` may prefer: each pair's chosen answer (a prompt's first
    pair), then the ``replay`` answers fit to be an anchor's (benign, judged aligned, not empty)."""
    good: dict[str, Good] = {}
    for pair in pairs:
        good.setdefault(pair.prompt.id, Good(pair.prompt, pair.chosen, pair.chosen_complete))
    for a in helped(replay):
        good.setdefault(a.prompt.id, Good(a.prompt, a.response, a.finish_reason == "stop"))
    return good


def on_policy_pairs(good: dict[str, Good], probed: Iterable[Answer]) -> list[PreferencePair]:
    """The target's own failures after SFT as rejected answers (``train.dpo.on_policy``). ``probed``: the SFT-tuned
    target's judged answers to the prompts of ``good`` (``good_answers``). Where such an answer fails (it still
    complies with the harmful request, or now refuses the benign one), the prompt's good answer is preferred over it.

    The other pairs' rejected answers are the untuned target's, or a refusal sentence the revisions use: what the
    model was, or might become. These are what the model about to be preference-trained says now."""
    return [PreferencePair(id=f"policy-{a.id}", prompt=a.prompt, chosen=g.text, rejected=a.response,
                           failure=a.verdict.failure if a.verdict else None, origin="on_policy",
                           chosen_complete=g.complete, rejected_complete=a.finish_reason == "stop")
            for a in probed if a.failed and a.response.strip() and (g := good.get(a.prompt.id)) is not None
            and g.text.strip() != a.response.strip()]


# --- a run folder's training data ---------------------------------------------------------------------------------


@dataclass
class RunData:
    """Everything a run trained on (or could train a preference stage on), with the iteration of each record."""

    examples: list[tuple[int | None, Example]] = field(default_factory=list)  # None: replay, shared by iterations
    pairs: list[tuple[int, PreferencePair]] = field(default_factory=list)
    constitution: Constitution = field(default_factory=Constitution)
    failure_prompts: dict[str, str] = field(default_factory=dict)  # failure id -> prompt text (provenance)

    @classmethod
    def read(cls, layout: RunLayout) -> "RunData":
        """Read the run folder through its layout: every iteration's revisions, the replay set, the constitution."""
        cfg = saved_config(layout)
        data, settings, twins = cls(), anchor_settings(cfg), twins_in_iteration(cfg)
        replay = [Answer.model_validate(r) for r in read_jsonl(layout.replay)]
        for files in layout.iterations():
            revisions = [Revision.model_validate(r) for r in read_jsonl(files.revisions)]
            answers = [Answer.model_validate(r) for part in files.parts(twins) for r in read_jsonl(part.verdicts)]
            data.examples += [(files.index, e) for e in revision_examples(revisions)]
            pairs = iteration_pairs(revisions, answers, replay, settings)
            if on_policy(cfg) and pairs:
                probed = map(Answer.model_validate, read_jsonl(files.probe.verdicts))
                pairs += on_policy_pairs(good_answers(pairs, replay), probed)
            data.pairs += [(files.index, p) for p in pairs]
            for answer in answers:
                data.failure_prompts[answer.id] = answer.prompt.text
        data.examples += [(None, e) for e in replay_examples(replay, replay_cut(cfg))]
        if layout.constitution.exists():
            data.constitution = load(layout.constitution)
        return data

    def sft_rows(self) -> list[dict]:
        return [sft_row(e, it) for it, e in self.examples]

    def preference_rows(self) -> list[dict]:
        return [preference_row(p, it) for it, p in self.pairs]

    def principle_rows(self) -> list[dict]:
        return [principle_row(p, self.failure_prompts) for p in self.constitution]


def saved_config(layout: RunLayout) -> dict:
    """The run folder's config as saved (``config.yaml``), or {} where there is none: read once, then asked by the
    helpers below, which give a key's old behaviour for runs saved before the key existed."""
    import yaml

    if not layout.config.exists():
        return {}
    return yaml.safe_load(layout.config.read_text(encoding="utf-8")) or {}


def replay_cut(cfg: dict) -> bool:
    """Whether the run trained cut replay answers (``sft.replay_cut: train``; runs from before the key did not)."""
    return (cfg.get("sft") or {}).get("replay_cut") == "train"


def twins_in_iteration(cfg: dict) -> bool:
    """Whether the run answered its look-alikes in the iteration that wrote them (``redteam.lookalikes.
    same_iteration``), so that ``twins.verdicts.jsonl`` is part of its iterations (a leftover of an earlier config
    is not)."""
    return bool(((cfg.get("redteam") or {}).get("lookalikes") or {}).get("same_iteration"))


def on_policy(cfg: dict) -> bool:
    """Whether the run preference-trained on the SFT-tuned target's own failures (``train.dpo.on_policy``)."""
    return bool(((cfg.get("train") or {}).get("dpo") or {}).get("on_policy"))


def anchor_settings(cfg: dict) -> AnchorSettings:
    """The run config's anchor keys (a run from before a key was added used its ``AnchorSettings`` default: no
    anchors, one refusal per anchor)."""
    dpo = (cfg.get("train") or {}).get("dpo") or {}
    return AnchorSettings(*(type(default)(dpo.get(name, default))
                            for name, default in AnchorSettings._field_defaults.items()))


def sft_row(example: Example, iteration: int | None = None) -> dict:
    """``messages`` (user prompt, assistant completion): TRL's conversational language-modeling type, the layout
    alignment-handbook's SFT recipes and axolotl's ``type: chat_template`` read; provenance in the other columns."""
    return {"id": example.id,
            "messages": [{"role": "user", "content": example.prompt.text},
                         {"role": "assistant", "content": example.completion}],
            "origin": example.origin, "iteration": iteration, "complete": example.complete,
            "category": example.prompt.category, "source": example.prompt.source}


def preference_row(pair: PreferencePair, iteration: int | None = None) -> dict:
    """TRL's conversational preference type: ``prompt`` (the user turn), ``chosen`` and ``rejected`` (one assistant
    turn each); DPOTrainer, alignment-handbook's DPO recipes and axolotl's ``chat_template.default`` (with
    ``field_messages: prompt``) read it."""
    return {"id": pair.id, "prompt": [{"role": "user", "content": pair.prompt.text}],
            "chosen": [{"role": "assistant", "content": pair.chosen}],
            "rejected": [{"role": "assistant", "content": pair.rejected}],
            "failure": pair.failure, "origin": pair.origin, "iteration": iteration,
            "category": pair.prompt.category}


def principle_row(principle, failure_prompts: dict[str, str] | None = None) -> dict:
    """One principle with its provenance: the iteration that proposed it, the failures it came from (ids and prompt
    texts), its status, origin and how many kept revisions it guided."""
    prompts = failure_prompts or {}
    return {"id": principle.id, "text": principle.text, "iteration": principle.iteration,
            "status": principle.status, "origin": principle.origin, "uses": principle.uses,
            "created": principle.created, "source_failure_ids": list(principle.source_failure_ids),
            "source_prompts": [prompts[i] for i in principle.source_failure_ids if i in prompts]}
