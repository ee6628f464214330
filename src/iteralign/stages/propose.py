"""Constitution proposal: the oracle reads batches of failures and proposes principles. Output: ``proposals.jsonl``.

Each record is a ``Proposal``: ``{id, failure_ids, raw, principles}`` (the parsed principle texts).
``proposals.jsonl`` is the log and ``constitution.yaml`` the view: the store is rebuilt by replaying the log onto the
snapshot taken when the stage first started (``constitution.in.yaml``), so a crash between a reply and the store's
save loses nothing and adds nothing twice. Deduplication and provenance live in ``iteralign.constitution``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from iteralign.constitution import Constitution, parse_principles
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
    """The failures shown to the oracle in one call."""

    id: str
    failures: list[Answer]


def proposal_conversation(failures: list[Answer], cfg: ProposeConfig) -> list[dict]:
    """The oracle's conversation for one batch of failures (prompt + failed response each)."""
    tpl = load_prompt("propose_paper" if cfg.mode == "paper" else "propose")
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
    batches = [failures[i : i + cfg.batch_size] for i in range(0, len(failures), cfg.batch_size)]
    items = [FailureBatch(id=f"batch-{k:03d}", failures=b) for k, b in enumerate(batches)]
    params = GenerationParams(max_new_tokens=cfg.max_new_tokens)

    def ask(batch: list[FailureBatch]) -> list[Proposal]:
        replies = oracle.generate([proposal_conversation(it.failures, cfg) for it in batch], params)
        return [Proposal(id=it.id, failure_ids=[f.id for f in it.failures], raw=r.text,
                         principles=parse_principles(r.text, paper_mode=cfg.mode == "paper"))
                for it, r in zip(batch, replies)]

    # Several proposal conversations per generate call: decoding is memory-bound, so answering 8 costs little more
    # than answering 1 (each reply is still logged, and resumed, as its own record).
    records = process(items, out, ask, PROPOSALS_PER_CALL, "propose", Proposal)
    for rec in records:
        store.add(rec.principles, iteration=iteration, source_ids=rec.failure_ids)
    return records
