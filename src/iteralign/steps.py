"""The loop's stages, declared: for each, its manifest key, its output in the run folder, what it depends on, and
how to compute it. ``loop.align`` calls these in the order of the method; ``pipeline.Runner`` decides for each
whether it is done, stale or still to do.
"""

from __future__ import annotations

import json
import random
from typing import TYPE_CHECKING, Sequence

from iteralign import answering
from iteralign.constitution import Constitution, as_of, content_key, load, merged, save
from iteralign.data.records import DataError
from iteralign.data.sources import load_prompts, load_sources
from iteralign.data.split import PromptSplit, SplitRecord, split_prompts
from iteralign.layout import EvalFiles, IterationFiles
from iteralign.models.base import ModelConfig
from iteralign.pipeline import Runner, Stage
from iteralign.records import Answer, Example, PreferencePair, Prompt, Proposal, Revision
from iteralign.roles import Roles
from iteralign.run import RunDir, write_json
from iteralign.stages.batching import process
from iteralign.stages.judge import judge_stage
from iteralign.stages.propose import principle_kind, propose
from iteralign.stages.redteam import redteam
from iteralign.stages.reflect import reflect
from iteralign.training_data import AnchorSettings, good_answers, on_policy_pairs, replay_examples

if TYPE_CHECKING:  # pragma: no cover
    from iteralign.config import RunConfig
    from iteralign.stages.dpo_job import DPOSettings
    from iteralign.stages.sft_job import SFTConfig


class Steps:
    """The stages of one run (see the module docstring)."""

    def __init__(self, cfg: "RunConfig", run: RunDir, roles: Roles) -> None:
        self.cfg, self.run, self.roles = cfg, run, roles
        self.layout = run.layout
        self.runner = Runner(run, roles.usage, roles.check_budget)

    def split(self) -> PromptSplit:
        """Load the red-team prompts and their benign look-alikes and split each into training and held-out parts
        (``split.json``): held-out prompts of both kinds measure attack success and over-refusal."""
        redteam = self.cfg.redteam
        prompts, reports = load_sources(redteam.sources)
        if redteam.intent_model is not None and any(p.intent is None for p in prompts):
            from iteralign.judging.intent import fill_intents

            prompts = fill_intents(self.roles.get(redteam.intent_model), prompts)  # calls cached like any other
        contrast, contrast_reports = load_sources(redteam.contrast) if redteam.contrast_ratio else ([], [])
        reports += contrast_reports
        settings = redteam.split.model_copy(
            update={"seed": self.cfg.run.seed if redteam.split.seed is None else redteam.split.seed})

        def compute() -> PromptSplit:
            harmful = split_prompts(prompts, settings)
            if not harmful.held_out and self.cfg.asr_on_held_out():  # the config allows it only with < 2 prompts
                raise DataError(f"{len(harmful.train)} distinct red-team prompt(s) in redteam.sources: too few to "
                                "hold one out for redteam_asr in eval.benchmarks; add prompts, or give eval.redteam "
                                "its own sources")
            split = harmful.joined(split_prompts(contrast, settings))
            write_json(self.layout.split, split.record.model_dump())
            self.run.manifest.mark("prompts", sources=[r.to_dict() for r in reports], train=len(split.train),
                                   held_out=len(split.held_out))
            return split

        def read() -> PromptSplit:
            record = SplitRecord.model_validate_json(self.layout.split.read_text())
            return PromptSplit.from_record(prompts + contrast, record)

        inputs = {"prompts": [(p.id, p.intent) for p in prompts], "split": settings}
        if contrast:
            inputs["contrast"] = [(p.id, p.intent) for p in contrast]
        return self.runner(Stage("prompts", self.layout.split, inputs, compute, read, self.layout.split.exists))

    def replay(self) -> list[Answer]:
        """Benign prompts answered by the untuned target (or the reviser) and judged, mixed into SFT so that alignment
        does not cost helpfulness (``replay.jsonl``; ``replay_examples`` keeps those fit to train on: not judged
        unaligned, and finished unless ``sft.replay_cut`` trains cut ones) and, with ``train.dpo.replay_anchors``,
        made into anchors."""
        sft = self.cfg.sft
        if sft.replay == 0:
            return []
        pool = [p for source in sft.replay_prompts for p in load_prompts(source)]
        prompts = random.Random(self.cfg.run.seed).sample(pool, min(sft.replay, len(pool)))
        model_cfg = self.cfg.models.target if sft.replay_from == "target" else self.reviser_cfg(self.cfg.models.target)
        model, params, panel = self.roles.get(model_cfg), sft.replay_generation, self.roles.panel(self.cfg.judge)

        def answer_and_judge(batch: list[Prompt]) -> list[Answer]:
            return answering.judge(panel, answering.answer(model, batch, params))

        answers = self.runner(Stage(
            "replay", self.layout.replay, {"model": model, "prompts": prompts, "generation": params, "judge": panel},
            lambda: process(prompts, self.layout.replay, answer_and_judge, model_cfg.batch_size, "replay", Answer)))
        self.run.manifest.mark("replay", kept=len(replay_examples(answers, sft.replay_cut == "train")),
                               truncated=sum(a.finish_reason == "length" for a in answers),
                               judged_unaligned=sum(a.verdict.label != "aligned" for a in answers))
        return answers

    def evaluate(self, target: ModelConfig, held_out: list[Prompt], files: EvalFiles) -> dict:
        """Benchmarks of ``target`` (``eval.json``) and the generated, judged answers (``eval.replies.jsonl``)."""
        if not self.cfg.eval.benchmarks:
            return {}
        from iteralign.evals.suite import evaluate as run_evals, write_result
        from iteralign.tracking import log_evaluation

        model, panel = self.roles.get(target), self.roles.panel(self.cfg.eval.judge or self.cfg.judge)
        filter_panel = self.roles.panel(self.cfg.judge) if self.cfg.eval.judge else None

        def compute() -> dict:
            replies: list = []
            result = run_evals(model, self.cfg.eval, judge=panel, records=replies, work_dir=files.partial,
                               redteam_prompts=None if self.cfg.eval.redteam else held_out,
                               filter_judge=filter_panel)
            write_result(result, files.result, replies)
            log_evaluation(self.cfg.sft.report_to, self.layout.root, files.name, result)  # sft.report_to
            return result

        inputs = {"model": model, "eval": self.cfg.eval, "judge": panel, "held_out": held_out}
        if filter_panel is not None:
            inputs["training_filter"] = filter_panel
        return self.runner(Stage(f"{files.name}/eval", files.result, inputs, compute,
                                 lambda: json.loads(files.result.read_text()), files.result.exists,
                                 partial=(files.partial,)))

    def redteam(self, files: IterationFiles, target: ModelConfig, pool: list[Prompt]) -> list[Answer]:
        model, params = self.roles.get(target), self.cfg.redteam.generation
        inputs = {"model": model, "pool": pool, "generation": params}
        return self.runner(Stage(files.key("redteam"), files.redteam, inputs,
                                 lambda: redteam(pool, model, params, files.redteam, target.batch_size)))

    def judge(self, files: IterationFiles, answers: list[Answer]) -> list[Answer]:
        """Verdicts from the training judge, which sees the principles known before this iteration."""
        panel = self.roles.panel(self.cfg.judge, [p.text for p in as_of(self.store(), files.index - 1).active()])
        return self.runner(Stage(files.key("judge"), files.verdicts, {"judge": panel, "answers": answers},
                                 lambda: judge_stage(answers, panel, files.verdicts,
                                                     self.cfg.models.oracle.batch_size)))

    def lookalikes(self, files: IterationFiles, failures: list[Answer]) -> list[Prompt]:
        """Benign twins of harmful prompts the target answered, written and intent-checked by the oracle
        (``lookalikes.jsonl``); only those judged benign are returned."""
        from iteralign.stages.lookalike import candidates, write_lookalikes

        cfg = self.cfg.redteam.lookalikes
        chosen = candidates(failures, cfg)
        if not chosen or not self.cfg.redteam.contrast_ratio:
            return []
        oracle, batch = self.roles.oracle, self.cfg.models.oracle.batch_size
        checker = self.roles.get(cfg.intent_model) if cfg.intent_model else oracle
        # when they are red-teamed does not change what is written; a checker apart from the oracle is a model input
        inputs = {"oracle": oracle, "lookalikes": cfg.model_dump(exclude={"same_iteration", "intent_model"}),
                  "failures": chosen} | ({"checker": checker} if cfg.intent_model else {})
        records = self.runner(Stage(files.key("lookalikes"), files.lookalikes, inputs,
                                    lambda: write_lookalikes(chosen, oracle, checker, cfg, files.lookalikes, batch)))
        return [r.prompt() for r in records if r.kept]

    def twin_answers(self, files: IterationFiles, target: ModelConfig, failures: list[Answer],
                     exclude: set[str]) -> list[Answer]:
        """The look-alikes of this iteration's harmful failures (``lookalikes``), bar the prompts in ``exclude``,
        red-teamed and judged in this iteration (``twins.redteam.jsonl``, ``twins.verdicts.jsonl``)."""
        twins = [p for p in self.lookalikes(files, failures) if p.id not in exclude]
        return self.judge(files.twins, self.redteam(files.twins, target, twins)) if twins else []

    def propose(self, files: IterationFiles, failures: list[Answer]) -> Constitution:
        """Principles proposed from the failures and added, deduplicated, to the store in ``constitution.yaml``.

        The store is the user's to edit between runs. The proposals build on the principles known before this
        iteration (``prior``, edits included); when they are recomputed, the file becomes ``prior`` plus the new
        principles plus anything the user added. When they are reused, the file is kept as it is, and only
        principles it lacks (e.g. dropped when an earlier iteration was recomputed) are restored from the log.
        """
        threshold = self.cfg.propose.similarity_threshold
        prior = as_of(self.store(), files.index - 1)
        oracle = self.roles.oracle
        inputs = {"oracle": oracle, "propose": self.cfg.propose, "failures": failures, "store": content_key(prior)}

        def snapshot() -> Constitution:  # the store as this iteration's proposals found it (replayed onto)
            if not files.constitution_in.exists() or content_key(load(files.constitution_in)) != content_key(prior):
                save(prior, files.constitution_in)
            return load(files.constitution_in, similarity_threshold=threshold)

        def compute() -> list[Proposal]:
            store = snapshot()
            records = propose(failures, oracle, store, files.index, self.cfg.propose, files.proposals)
            save(merged(store, (p for p in self.store() if p.origin == "user")), self.layout.constitution)
            return records

        def reuse() -> list[Proposal]:
            store = snapshot()
            records = propose(failures, oracle, store, files.index, self.cfg.propose, files.proposals)  # no calls
            current = self.store()
            if {p.id for p in store} - {p.id for p in current}:
                save(merged(current, store), self.layout.constitution)
            return records

        self.proposals = self.runner(Stage(files.key("propose"), files.proposals, inputs, compute, reuse))
        return self.store()

    def reflect(self, files: IterationFiles, target: ModelConfig, failures: list[Answer],
                store: Constitution) -> list[Revision]:
        """Failed answers revised under the principles known at this iteration, re-judged."""
        store = as_of(store, files.index)
        reviser = self.roles.get(self.reviser_cfg(target))
        panel = self.roles.panel(self.cfg.judge, [p.text for p in store.active()])
        inputs = {"reviser": reviser, "reflect": self.cfg.reflect, "failures": failures, "store": content_key(store),
                  "judge": panel}
        return self.runner(Stage(files.key("reflect"), files.revisions, inputs, lambda: reflect(
            failures, self.principle_chooser(store), reviser, panel, self.cfg.reflect, files.revisions,
            target.batch_size)))

    def train(self, files: IterationFiles, target: ModelConfig, examples: list[Example],
              pairs: list[PreferencePair], replay: Sequence[Answer] = ()) -> ModelConfig:
        """The iteration's training by ``train.objective``: SFT on ``examples``, DPO on ``pairs``, or SFT then DPO
        (with ``train.dpo.on_policy``, DPO also on the SFT-tuned target's failures on the pairs' and the ``replay``
        prompts); the config serving the tuned model."""
        objective = self.cfg.train.objective
        tuned = self.sft(files, target, examples) if "sft" in objective else target
        if "dpo" not in objective or not pairs:
            return tuned
        if self.cfg.train.dpo.on_policy:  # rejected answers from the model about to be preference-trained
            good = good_answers(pairs, replay)
            pairs = pairs + on_policy_pairs(good, self.probe(files.probe, tuned, [g.prompt for g in good.values()]))
        return self.dpo(files, tuned, pairs)

    def probe(self, files: IterationFiles, model: ModelConfig, prompts: list[Prompt]) -> list[Answer]:
        """``model``'s answers to ``prompts``, red-teamed and judged like the pool (``train.dpo.on_policy``); the
        model is then released for training."""
        answers = self.judge(files, self.redteam(files, model, prompts))
        self.roles.release(model)
        return answers

    def dpo(self, files: IterationFiles, target: ModelConfig, pairs: list[PreferencePair]) -> ModelConfig:
        """Preference training of ``target``'s LoRA adapter on ``pairs``; the config serving the tuned model."""
        from iteralign.stages.dpo import train_dpo
        from iteralign.stages.dpo_job import DPOJob

        handle = self.roles.get(target)
        sft_cfg, dpo_cfg = self.cfg.train.rates(self.cfg.sft, files.index)

        def compute() -> dict:
            return train_dpo(DPOJob(base=handle.backend.train_source(handle.spec), init_adapter=target.adapter,
                                    pairs=pairs, out_dir=str(files.dpo), cfg=sft_cfg, dpo=dpo_cfg,
                                    seed=self.cfg.run.seed, trust_remote_code=target.trust_remote_code,
                                    chat_template=target.chat_template))

        inputs = {"model": handle, "pairs": pairs, "sft": training_inputs(sft_cfg), "dpo": preference_inputs(dpo_cfg),
                  "seed": self.cfg.run.seed}
        self.runner(Stage(files.key("dpo"), files.dpo, inputs, compute, lambda: json.loads(files.dpo_stats.read_text()),
                          lambda: files.dpo_adapter.is_dir() and files.dpo_stats.is_file()))
        return handle.backend.tuned(target, str(files.dpo_adapter), "lora")

    def sft(self, files: IterationFiles, target: ModelConfig, examples: list[Example]) -> ModelConfig:
        """Fine-tune ``target`` on ``examples``; the config serving the tuned model."""
        from iteralign.stages.sft import run_sft
        from iteralign.stages.sft_job import SFTJob

        handle, method = self.roles.get(target), self.cfg.sft.method
        out = files.adapter if method == "lora" else files.model
        sft_cfg, _ = self.cfg.train.rates(self.cfg.sft, files.index)

        def compute() -> dict:
            job = SFTJob(base=handle.backend.train_source(handle.spec), examples=examples, out_dir=str(files.sft),
                         init_adapter=target.adapter if method == "lora" else None, cfg=sft_cfg,
                         seed=self.cfg.run.seed, trust_remote_code=target.trust_remote_code,
                         chat_template=target.chat_template)
            return run_sft(job)

        inputs = {"model": handle, "examples": examples, "sft": training_inputs(sft_cfg), "seed": self.cfg.run.seed}
        self.runner(Stage(files.key("sft"), files.sft, inputs, compute,
                          lambda: json.loads(files.train_stats.read_text()),
                          lambda: out.is_dir() and files.train_stats.is_file()))
        return handle.backend.tuned(target, str(out), method)

    # -- helpers -------------------------------------------------------------------------------------------------

    def store(self) -> Constitution:
        """The principle store as ``constitution.yaml`` holds it now (empty before the first proposals)."""
        path = self.layout.constitution
        return load(path, similarity_threshold=self.cfg.propose.similarity_threshold) if path.exists() \
            else Constitution(similarity_threshold=self.cfg.propose.similarity_threshold)

    def reviser_cfg(self, target: ModelConfig) -> ModelConfig:
        """The reviser: the configured one, else the current target (the paper's self-reflection)."""
        return self.cfg.models.reviser or target

    def principle_chooser(self, store: Constitution):
        """Which principles a revision sees: the most relevant stored ones, or (paper) this round's constitution.

        In paper mode a round's principle may restate a stored one and be merged into it; ``find_duplicate`` maps
        each of the round's texts back to the stored principle, so the round's constitution is never lost to dedupe.
        """
        if not self.cfg.reflect.use_constitution:
            return lambda failure: []
        if self.cfg.propose.mode == "paper":
            found = (store.find_duplicate(text) for rec in self.proposals for text in rec.principles)
            current = list({p.id: p for p in found if p is not None and p.status != "disabled"}.values())
            return lambda failure: current
        return lambda failure: store.relevant(failure.prompt.text, self.cfg.reflect.principles_k,
                                              principle_kind(failure))


def preference_inputs(dpo: "DPOSettings") -> dict:
    """The DPO settings that change the trained weights: not those that choose the pairs (anchors), which reach the
    stage through its pairs, so that a run whose pairs come out the same is not trained again. ``sft_weight`` 0
    trains as before the key existed, so it is left out then: run folders made before it keep their DPO stage."""
    choose = set(AnchorSettings._fields) | {"on_policy"}
    return dpo.model_dump(exclude=choose | ({"sft_weight"} if not dpo.sft_weight else set()))


def training_inputs(sft: "SFTConfig") -> dict:
    """The SFT settings that change the trained weights (a stage input): not the replay set's, built elsewhere, nor
    where the curves are reported."""
    return sft.model_dump(exclude={"replay", "replay_prompts", "replay_from", "replay_generation", "report_to"})
