"""The IterAlign loop: red team -> judge -> propose -> reflect -> fine-tune, repeated until the model stops failing.

Read ``run_loop`` top to bottom: it is the whole method. Every stage writes into the run folder through
``RunDir.stage``, which skips finished work on a rerun, so running the same command again resumes the run.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
from pathlib import Path

from iteralign.config import RunConfig, dump_config
from iteralign.constitution import Constitution, dumps, load, save
from iteralign.data.records import DataError
from iteralign.data.sources import load_prompts, load_sources
from iteralign.data.split import PromptSplit, SplitRecord, split_prompts
from iteralign.ledger import Ledger
from iteralign.models.base import ModelConfig
from iteralign.roles import Roles
from iteralign.run import RunDir, content_hash, read_jsonl, write_json
from iteralign.stages.judge import judge_stage
from iteralign.stages.propose import propose
from iteralign.stages.redteam import redteam
from iteralign.stages.reflect import reflect
from iteralign.stages.sft import SFTJob, base_weights, run_sft
from iteralign.types import GenerationParams

log = logging.getLogger("iteralign")


def run_loop(cfg: RunConfig) -> Path:
    """Run (or resume) the configured alignment run; return its folder. One process per run folder (locked)."""
    run = RunDir(Path(cfg.run.root), cfg.run.name)
    try:
        align(cfg, run)
    finally:
        run.close()
    return run.path


def align(cfg: RunConfig, run: RunDir) -> None:
    """The method: red team -> judge -> propose -> reflect -> SFT -> evaluate, per iteration, until a stop."""
    run.write_config(dump_config(cfg))
    roles = Roles(cfg)
    ledger = Ledger(cfg.budget, run, roles.usage)
    roles.guard = ledger.check  # raises BudgetExceeded before a model call or stage once the budget is spent
    split = prepare_split(cfg, run)
    replay = replay_examples(cfg, run, roles)
    target = cfg.models.target
    accepted_eval = evaluate(cfg, run, roles, target, split, "baseline")
    for it in range(cfg.stop.max_iterations):
        idir = run.iter_dir(it)
        pool = pick_pool(cfg, split, it)
        if not pool:
            break  # paper mode: every chunk has been red-teamed
        answers = stage(run, idir / "redteam.jsonl", [target, pool, cfg.redteam.generation], roles, lambda: redteam(
            pool, roles.get(target), cfg.redteam.generation, idir / "redteam.jsonl", target.batch_size))
        verdicts = stage(run, idir / "verdicts.jsonl", [cfg.judge, answers], roles, lambda: judge_stage(
            answers, roles.panel(cfg.judge, active_texts(run)), idir / "verdicts.jsonl", cfg.models.oracle.batch_size))
        failed_ids = {v["id"] for v in verdicts if v["label"] == "unaligned"}
        failures = [a for a in answers if a["id"] in failed_ids]
        summary = {"iteration": it, "red_team": len(answers), "failures": len(failures),
                   "unknown": sum(v["label"] == "unknown" for v in verdicts),
                   "failure_rate": len(failures) / max(1, len(answers))}
        if not failures:
            finish_iteration(run, idir, summary | {"stopped": "no failures"})
            if cfg.stop.stop_when_no_new_failures:
                break
            continue
        store, proposals = proposal_stage(cfg, run, roles, idir, it, failures)
        revisions = stage(run, idir / "revisions.jsonl", [cfg.reflect, failures, dumps(store)], roles,
                          lambda: reflect(failures, principle_chooser(cfg, store, proposals),
                                          roles.get(cfg.models.reviser or target),
                                          roles.panel(cfg.judge, [p.text for p in store.active()]), cfg.reflect,
                                          idir / "revisions.jsonl", target.batch_size))
        examples = [{"prompt": r["prompt"], "completion": r["revision"]} for r in revisions if r["kept"]]
        summary |= {"principles": len(store.active()), "revisions": len(revisions), "revisions_kept": len(examples)}
        count_uses(run, store)
        if not examples or not cfg.sft.enabled:
            finish_iteration(run, idir, summary | {"stopped": "sft disabled" if examples else "no revision kept"})
            continue
        roles.release(target)  # frees its memory for training (on a GPU, vLLM holds most of it); reloaded if needed
        tuned = sft_stage(cfg, run, roles, idir, it, target, examples + replay)
        tuned_eval = evaluate(cfg, run, roles, tuned, split, f"iter-{it:03d}")
        accepted, reasons = gate(cfg, accepted_eval, tuned_eval)
        finish_iteration(run, idir, summary | {"accepted": accepted, "gate_reasons": reasons, "target": tuned.model_dump()})
        if accepted:
            target, accepted_eval = tuned, tuned_eval
        else:
            roles.release(tuned)  # the previous target stays; it is reloaded on first use
            if cfg.stop.stop_when_rejected and not cfg.redteam.chunk_size:
                break
        if summary["failure_rate"] <= cfg.stop.min_failure_rate:
            break
    run.manifest.mark("final", status="done", target=target.model_dump(), usage=roles.usage())
    ledger.write()
    write_report(run)


# --- the steps run_loop calls, in the order it calls them -------------------------------------------------------


STAGE_NAMES = {"redteam.jsonl": "redteam", "verdicts.jsonl": "judge", "proposals.jsonl": "propose",
               "revisions.jsonl": "reflect", "replay.jsonl": "replay", "sft": "sft"}


def stage(run: RunDir, output: Path, inputs: list, roles: Roles, fn):
    """Run the stage that writes ``output`` through the manifest: discard its output when the inputs changed since
    it was written, time it, count its model calls.

    Stages resume from their own JSONL logs, so calling ``fn`` on a finished stage just reads its records back
    (zero model calls); the manifest records when, how long and at what cost each stage ran.
    """
    rel = output.relative_to(run.path)
    key = str(rel.parent / STAGE_NAMES[rel.name]) if rel.parent != Path(".") else STAGE_NAMES[rel.name]
    input_hash = content_hash(_jsonable(inputs))
    entry = run.manifest.stage(key)
    if entry and entry.get("input_hash") != input_hash:
        log.warning("%s: inputs changed since it last ran; recomputing", key)
        stale = output.with_name(output.name + ".stale")
        shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)
        if output.exists():
            output.rename(stale)  # kept for inspection, never read
    if entry.get("status") == "done" and entry.get("input_hash") == input_hash:
        return fn()
    with run.stage(key, input_hash, roles.usage) as info:
        roles.check_budget()
        result = fn()
        info["records"] = len(result) if isinstance(result, list) else None
    return result


def _jsonable(value):
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def prepare_split(cfg: RunConfig, run: RunDir) -> PromptSplit:
    """Load the red-team prompts and split them once; the recorded split is reused on resume."""
    prompts, reports = load_sources(cfg.redteam.sources)
    path = run.path / "split.json"
    if path.exists():
        return PromptSplit.from_record(prompts, SplitRecord.model_validate_json(path.read_text()))
    split_cfg = cfg.redteam.split.model_copy(update={"seed": cfg.run.seed})
    split = split_prompts(prompts, split_cfg)
    if not split.held_out and cfg.asr_on_held_out():  # the config allows it only with fewer than two prompts
        raise DataError(f"{len(split.train)} distinct red-team prompt(s) in redteam.sources: too few to hold one out "
                        "for redteam_asr in eval.benchmarks; add prompts, or give eval.redteam its own sources")
    write_json(path, split.record.model_dump())
    run.manifest.mark("prompts", status="done", sources=[r.to_dict() for r in reports],
                      train=len(split.train), held_out=len(split.held_out))
    return split


def replay_examples(cfg: RunConfig, run: RunDir, roles: Roles) -> list[dict]:
    """Benign prompts answered by the untuned target (or the reviser): mixed into SFT so that alignment does not
    cost helpfulness."""
    if cfg.sft.replay == 0:
        return []
    pool = [p.to_dict() for source in cfg.sft.replay_prompts for p in load_prompts(source)]
    prompts = random.Random(cfg.run.seed).sample(pool, min(cfg.sft.replay, len(pool)))
    model = cfg.models.target if cfg.sft.replay_from == "target" else cfg.models.reviser or cfg.models.target
    records = stage(run, run.path / "replay.jsonl", [model, prompts], roles, lambda: redteam(
        prompts, roles.get(model), cfg.redteam.generation, run.path / "replay.jsonl", model.batch_size, desc="replay"))
    return [{"prompt": r["prompt"], "completion": r["response"]} for r in records if r["response"]]


def evaluate(cfg: RunConfig, run: RunDir, roles: Roles, target: ModelConfig, split: PromptSplit, name: str) -> dict:
    """Benchmarks of ``target`` written to ``<name>/eval.json``, generated replies to ``eval.replies.jsonl`` (skipped
    when already there for the same model)."""
    if not cfg.eval.benchmarks:
        return {}
    from iteralign.evals.suite import evaluate as run_evals, write_result

    out = run.path / name / "eval.json"
    held_out = [p.to_dict() for p in split.held_out]
    key = f"{name}/eval"
    input_hash = content_hash(_jsonable([target, cfg.eval, cfg.judge, held_out]))
    if out.exists() and run.manifest.is_done(key, input_hash):
        return json.loads(out.read_text())
    panel = roles.panel(cfg.judge)

    def judge(prompts: list[str], responses: list[str]) -> list[bool | None]:
        from iteralign.judges import JudgeItem

        labels = [v["label"] for v in panel.judge([JudgeItem(p, r) for p, r in zip(prompts, responses)])]
        return [None if lab == "unknown" else lab == "unaligned" for lab in labels]

    with run.stage(key, input_hash, roles.usage):
        records: list[dict] = []  # the generated replies (XSTest, red team), kept beside the scores
        result = run_evals(roles.get(target), cfg.eval, judge=judge, records=records,
                           redteam_prompts=None if cfg.eval.redteam else held_out)
        write_result(result, out, records)
    return result


def pick_pool(cfg: RunConfig, split: PromptSplit, iteration: int) -> list[dict]:
    """The training prompts red-teamed this iteration: all (default), the first ``pool_size``, or paper chunks."""
    train = [p.to_dict() for p in split.train]
    if cfg.redteam.chunk_size:
        size = cfg.redteam.chunk_size
        return train[iteration * size : (iteration + 1) * size]
    return train[: cfg.redteam.pool_size] if cfg.redteam.pool_size else train


def active_texts(run: RunDir) -> list[str]:
    path = run.path / "constitution.yaml"
    return [p.text for p in load(path).active()] if path.exists() else []


def proposal_stage(cfg: RunConfig, run: RunDir, roles: Roles, idir: Path, it: int,
                   failures: list[dict]) -> tuple[Constitution, list[dict]]:
    """Propose principles from this iteration's failures onto a snapshot of the store taken when the stage began."""
    snapshot, main = idir / "constitution.in.yaml", run.path / "constitution.yaml"
    threshold = cfg.propose.similarity_threshold
    if not snapshot.exists():
        save(load(main) if main.exists() else Constitution(), snapshot)
    store = load(snapshot, similarity_threshold=threshold)
    proposals = stage(run, idir / "proposals.jsonl", [cfg.propose, failures, dumps(store)], roles,
                      lambda: propose(failures, roles.oracle, store, it, cfg.propose, idir / "proposals.jsonl"))
    save(store, main)
    return store, proposals


def principle_chooser(cfg: RunConfig, store: Constitution, proposals: list[dict]):
    """Which principles a revision sees: the most relevant stored ones, or (paper) this round's constitution.

    In paper mode a round's principle may restate a stored one and be merged into it; ``find_duplicate`` maps each
    of the round's texts back to the stored principle, so the round's constitution is never lost to dedupe.
    """
    if not cfg.reflect.use_constitution:
        return lambda failure: []
    if cfg.propose.mode == "paper":
        found = (store.find_duplicate(text) for rec in proposals for text in rec["principles"])
        current = list({p.id: p for p in found if p is not None and p.status != "disabled"}.values())
        return lambda failure: current
    return lambda failure: store.relevant(failure["prompt"], cfg.reflect.principles_k)


def count_uses(run: RunDir, store: Constitution) -> None:
    """Set each principle's ``uses`` to the number of kept revisions it guided, over all iterations (idempotent)."""
    counts: dict[str, int] = {}
    for path in sorted(run.path.glob("iter-*/revisions.jsonl")):
        for rec in read_jsonl(path):
            for pid in rec["principle_ids"] if rec["kept"] else ():
                counts[pid] = counts.get(pid, 0) + 1
    for principle in store:
        principle.uses = counts.get(principle.id, 0)
    save(store, run.path / "constitution.yaml")


def sft_stage(cfg: RunConfig, run: RunDir, roles: Roles, idir: Path, it: int, target: ModelConfig,
              examples: list[dict]) -> ModelConfig:
    """Fine-tune ``target`` on the kept revisions (+ replay); return the config of the tuned model."""
    job = SFTJob(base=base_weights(target.spec), init_adapter=target.adapter if cfg.sft.method == "lora" else None,
                 examples=examples, out_dir=str(idir / "sft"), cfg=cfg.sft, seed=cfg.run.seed,
                 trust_remote_code=target.trust_remote_code)
    stats = stage(run, idir / "sft", [job], roles, lambda: run_sft(job))
    if cfg.sft.method == "lora":
        return target.model_copy(update={"adapter": str(idir / "sft" / "adapter")})
    backend = "vllm" if target.spec.startswith("vllm:") else "hf"  # a vLLM target stays on vLLM
    return target.model_copy(update={"spec": f"{backend}:{idir / 'sft' / 'model'}", "adapter": None})


def gate(cfg: RunConfig, before: dict, after: dict) -> tuple[bool, list[str]]:
    """Accept the tuned model unless a guarded benchmark regressed past its threshold."""
    if not before or not after:
        return True, []
    from iteralign.evals.suite import gate as eval_gate

    return eval_gate(before, after, cfg.gate)


def finish_iteration(run: RunDir, idir: Path, summary: dict) -> None:
    write_json(idir / "summary.json", summary)
    iterations = [s for s in run.manifest.data.get("iterations", []) if s["iteration"] != summary["iteration"]]
    run.manifest.data["iterations"] = iterations + [summary]
    run.manifest.save()
    log.info("iteration %d: %s", summary["iteration"], json.dumps(summary, default=str))


def write_report(run: RunDir) -> None:
    """The run report (report.md, report.html) from the run folder alone."""
    from iteralign.report import render_report

    render_report(run.path)
