"""The IterAlign loop: red team -> judge -> propose -> reflect -> fine-tune, repeated until the model stops failing.

Read ``align`` top to bottom: it is the whole method. Each step is a declared stage (``steps.Steps``) that the
pipeline runner skips when its inputs are unchanged since it finished, so running the same command again resumes
the run, and changing a setting recomputes exactly the stages that depend on it.
"""

from __future__ import annotations

import sys

import json
import logging
from pathlib import Path

from iteralign.config import RunConfig, dump_config
from iteralign.constitution import Constitution, save
from iteralign.data.split import PromptSplit
from iteralign.layout import IterationFiles
from iteralign.ledger import Ledger
from iteralign.records import Prompt, Revision
from iteralign.roles import Roles
from iteralign.run import RunDir, read_jsonl, write_json
from iteralign.steps import Steps
from iteralign.training_data import AnchorSettings, iteration_pairs, lessons, replay_examples, revision_examples
from iteralign.stopping import stop_reason

log = logging.getLogger("iteralign")


def run_loop(cfg: RunConfig) -> Path:
    """Run (or resume) the configured alignment run; return its folder. One process per run folder (locked)."""
    run = RunDir(Path(cfg.run.root), cfg.run.name)
    try:
        align(cfg, run)
    finally:
        run.close()
        engines = sys.modules.get("iteralign.models.vllm_engines")  # loaded only if a vllm: model was
        if engines is not None:
            engines.POOL.close_all()
    return run.path


def align(cfg: RunConfig, run: RunDir) -> None:
    """The method: red team -> judge -> propose -> reflect -> SFT -> evaluate, per iteration, until a stop."""
    run.write_config(dump_config(cfg))
    roles = Roles(cfg.models, cfg.run)
    ledger = Ledger(cfg.budget, run, roles.usage)
    roles.guard = ledger.check  # raises BudgetExceeded before a model call or stage once the budget is spent
    steps = Steps(cfg, run, roles)
    split = steps.split()
    replay, cut = steps.replay(), cfg.sft.replay_cut == "train"
    target = cfg.models.target
    accepted_eval = baseline_eval = steps.evaluate(target, split.held_out, run.layout.baseline)
    twins: dict[str, Prompt] = {}  # the oracle's benign look-alikes of earlier harmful failures
    taught: dict[str, Revision] = {}  # the revisions trained on so far, by prompt (train.carry_over)
    held_out = {p.id for p in split.held_out}
    for it in range(cfg.stop.max_iterations):
        files = run.layout.iteration(it)
        pool = pick_pool(cfg, split, it)
        if not pool:
            break  # paper mode: every chunk has been red-teamed
        in_pool = {p.id for p in pool}
        pool += [p for p in twins.values() if p.id not in in_pool]
        files.dir.mkdir(exist_ok=True)
        answers = steps.judge(files, steps.redteam(files, target, pool))
        if cfg.redteam.lookalikes.same_iteration:  # the failures' twins, answered and judged beside them
            answers += steps.twin_answers(files, target, [a for a in answers if a.failed], held_out | in_pool)
        failures = [a for a in answers if a.failed]
        if it + 1 < cfg.stop.max_iterations and not cfg.redteam.lookalikes.same_iteration:  # join the next pool
            twins |= {p.id: p for p in steps.lookalikes(files, failures) if p.id not in held_out}
        summary = {"iteration": it, "red_team": len(answers), "failures": len(failures),
                   "unknown": sum(a.verdict.label == "unknown" for a in answers),
                   "failure_rate": len(failures) / max(1, len(answers))}
        if failures:
            store = steps.propose(files, failures)
            revisions = steps.reflect(files, target, failures, store)
            taught = lessons(taught, revisions, cfg.train.carry_over)  # this round's, and earlier ones if carried
            examples = revision_examples(taught.values())  # kept revisions only
            pairs = iteration_pairs(taught.values(), answers, replay, AnchorSettings.of(cfg.train.dpo))
            summary |= {"principles": len(store.active()), "revisions": len(revisions),
                        "revisions_kept": sum(r.kept for r in revisions), "trained_revisions": len(examples)}
            count_uses(run, store)
            if examples and cfg.sft.enabled:
                roles.unload_all()  # frees the memory of every model for training; each reloads on next use
                tuned = steps.train(files, target, examples + replay_examples(replay, cut), pairs, replay)
                tuned_eval = steps.evaluate(tuned, split.held_out, files)
                accepted, reasons = gate(cfg, accepted_eval, tuned_eval, baseline_eval)
                summary |= {"accepted": accepted, "gate_reasons": reasons, "target": tuned.model_dump()}
                if accepted:
                    target, accepted_eval = tuned, tuned_eval
                else:
                    roles.release(tuned)  # the previous target stays; it is reloaded on first use
            else:
                summary["stopped"] = "sft disabled" if examples else "no revision kept"
        else:
            summary["stopped"] = "no failures"
        finish_iteration(run, files, summary)
        if stop_reason(cfg.stop, summary, chunked=bool(cfg.redteam.chunk_size)):
            break
    run.manifest.mark("final", status="done", target=target.model_dump(), usage=roles.usage())
    ledger.write()
    write_report(run)


# --- the steps align calls that are not stages ------------------------------------------------------------------


def pick_pool(cfg: RunConfig, split: PromptSplit, iteration: int) -> list[Prompt]:
    """The training prompts red-teamed this iteration: the harmful ones (all, the first ``pool_size``, or the paper's
    chunks) and ``contrast_ratio`` benign look-alikes per harmful prompt."""
    harmful = [p for p in split.train if p.intent != "benign"]
    benign = [p for p in split.train if p.intent == "benign"]
    ratio = cfg.redteam.contrast_ratio
    if cfg.redteam.chunk_size:  # each round its own chunk of both
        size, share = cfg.redteam.chunk_size, round(cfg.redteam.chunk_size * ratio)
        return harmful[iteration * size : (iteration + 1) * size] + benign[iteration * share : (iteration + 1) * share]
    if cfg.redteam.pool_size:
        harmful = harmful[: cfg.redteam.pool_size]
    return harmful + benign[: round(len(harmful) * ratio)]


def count_uses(run: RunDir, store: Constitution) -> None:
    """Set each principle's ``uses`` to the number of kept revisions it guided, over all iterations (idempotent)."""
    counts: dict[str, int] = {}
    for files in run.layout.iterations():
        for rec in map(Revision.model_validate, read_jsonl(files.revisions)):
            for pid in rec.principle_ids if rec.kept else ():
                counts[pid] = counts.get(pid, 0) + 1
    for principle in store:
        principle.uses = counts.get(principle.id, 0)
    save(store, run.layout.constitution)


def gate(cfg: RunConfig, before: dict, after: dict, baseline: dict) -> tuple[bool, list[str]]:
    """Accept the tuned model if it discriminates better than the last accepted one (``before``) and no guarded
    benchmark regressed past its threshold (against ``baseline`` or ``before``: ``gate.regressions_against``)."""
    if not before or not after:
        return True, []
    from iteralign.evals.suite import gate as eval_gate

    return eval_gate(before, after, cfg.gate, baseline)


def finish_iteration(run: RunDir, files: IterationFiles, summary: dict) -> None:
    write_json(files.summary, summary)
    iterations = [s for s in run.manifest.data.get("iterations", []) if s["iteration"] != summary["iteration"]]
    run.manifest.data["iterations"] = iterations + [summary]
    run.manifest.save()
    log.info("iteration %d: %s", summary["iteration"], json.dumps(summary, default=str))


def write_report(run: RunDir) -> None:
    """The run report (report.md, report.html) from the run folder alone."""
    from iteralign.report import render_report

    render_report(run.path)
