"""Constitution proposal: the oracle reads batches of failures and proposes principles. Output: ``proposals.jsonl``.

Failures are batched by kind: answers that complied with harmful requests yield ``restrict`` principles (what to
refuse), over-refusals of benign requests yield ``permit`` principles (what to answer; ``prompts/propose_permit``).
Each record is a ``Proposal``: ``{id, failure_ids, raw, principles, kind}`` (the parsed principle texts).
``proposals.jsonl`` is the log and ``constitution.yaml`` the view: the store is rebuilt by replaying the log onto the
snapshot taken when the stage first started (``constitution.in.yaml``), so a crash between a reply and the store's
save loses nothing and adds nothing twice. Deduplication and provenance live in ``iteralign.constitution``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from iteralign.constitution import Constitution, Kind, parse_principles
from iteralign.models.base import ChatModel
from iteralign.records import Answer, Proposal, Record
from iteralign.stages.batching import process
from iteralign.templates import few_shot, load_prompt
from iteralign.types import GenerationParams, Strict

PROPOSALS_PER_CALL = 8


class ProposeConfig(Strict):
    mode: Literal["cumulative", "paper"] = Field(
        "cumulative", description="cumulative: parsed, deduplicated principles kept across iterations; "
        "paper: the last paragraph of each reply is the round's only constitution."
    )
    batch_size: int = Field(8, ge=1, description="Failures shown to the oracle per proposal call.")
    similarity_threshold: float = Field(0.6, gt=0.0, le=1.0, description="Similarity at or above which a new "
                                        "principle restates a stored one (0 across polarities and subjects; "
                                        "else word overlap: constitution/similarity.py).")
    max_new_tokens: int = Field(384, ge=1)
    max_failure_chars: int = Field(600, ge=50, description="Each failed answer is cut to this length in the prompt.")


class FailureBatch(Record):
    """The failures (of one kind) shown to the oracle in one call."""

    id: str
    failures: list[Answer]
    kind: Kind = "restrict"


def principle_kind(failure: Answer) -> Kind:
    """``permit`` for an over-refusal of a benign prompt, ``restrict`` for every other failure."""
    return "permit" if failure.verdict is not None and failure.verdict.failure == "refused_benign" else "restrict"


def batches(failures: list[Answer], cfg: ProposeConfig) -> list[FailureBatch]:
    """Failures in batches of ``cfg.batch_size``, one kind per batch (paper mode: all together, as the authors)."""
    groups: dict[Kind, list[Answer]] = {}
    for failure in failures:
        groups.setdefault("restrict" if cfg.mode == "paper" else principle_kind(failure), []).append(failure)
    out = []
    for kind, group in groups.items():
        for start in range(0, len(group), cfg.batch_size):
            suffix = "" if kind == "restrict" else "-permit"  # restrict batches keep their ids of one-sided runs
            out.append(FailureBatch(id=f"batch-{len(out):03d}{suffix}", failures=group[start:start + cfg.batch_size],
                                    kind=kind))
    return out


def proposal_conversation(failures: list[Answer], cfg: ProposeConfig, kind: Kind = "restrict") -> list[dict]:
    """The oracle's conversation for one batch of failures (prompt + failed response each)."""
    name = "propose_paper" if cfg.mode == "paper" else "propose_permit" if kind == "permit" else "propose"
    tpl = load_prompt(name)
    cut = cfg.max_failure_chars
    if cfg.mode == "paper":  # the authors join the failed responses with spaces, no prompts
        body = " ".join(f.response[:cut] for f in failures)
    else:
        body = "\n".join(
            tpl["failure"].format(n=n, prompt=f.prompt.text[:cut], response=f.response[:cut])
            for n, f in enumerate(failures, 1)
        )
    return few_shot(tpl) + [{"role": "user", "content": tpl["user"].format(failures=body)}]


def propose(failures: list[Answer], oracle: ChatModel, store: Constitution, iteration: int, cfg: ProposeConfig,
            out: Path) -> list[Proposal]:
    """Ask the oracle for principles per batch of failures; add them (deduplicated) to ``store``; return the log."""
    items = batches(failures, cfg)
    params = GenerationParams(max_new_tokens=cfg.max_new_tokens)

    def ask(batch: list[FailureBatch]) -> list[Proposal]:
        replies = oracle.generate([proposal_conversation(it.failures, cfg, it.kind) for it in batch], params)
        return [Proposal(id=it.id, failure_ids=[f.id for f in it.failures], raw=r.text, kind=it.kind,
                         principles=parse_principles(r.text, paper_mode=cfg.mode == "paper"))
                for it, r in zip(batch, replies)]

    # Several proposal conversations per generate call: decoding is memory-bound, so answering 8 costs little more
    # than answering 1 (each reply is still logged, and resumed, as its own record).
    records = process(items, out, ask, PROPOSALS_PER_CALL, "propose", Proposal)
    for rec in records:
        store.add(rec.principles, iteration=iteration, source_ids=rec.failure_ids, kind=rec.kind)
    return records
