"""Constitution proposal: the oracle reads batches of failures and proposes principles. Output: ``proposals.jsonl``.

Each record: ``{id, failure_ids, raw, principles}`` (the parsed principle texts). ``proposals.jsonl`` is the log and
``constitution.yaml`` the view: the store is rebuilt by replaying the log onto the snapshot taken when the stage
first started (``constitution.in.yaml``), so a crash between a reply and the store's save loses nothing and adds
nothing twice. Deduplication and provenance live in ``iteralign.constitution``.
"""

from __future__ import annotations

from pathlib import Path

from iteralign.config import ProposeConfig
from iteralign.constitution import Constitution, parse_principles
from iteralign.models.base import ChatModel
from iteralign.stages.batching import process
from iteralign.templates import few_shot, load_prompt
from iteralign.types import GenerationParams

PROPOSALS_PER_CALL = 8


def proposal_conversation(failures: list[dict], cfg: ProposeConfig) -> list[dict]:
    """The oracle's conversation for one batch of failures (prompt + failed response each)."""
    tpl = load_prompt("propose_paper" if cfg.mode == "paper" else "propose")
    cut = cfg.max_failure_chars
    if cfg.mode == "paper":  # the authors join the failed responses with spaces, no prompts
        body = " ".join(f["response"][:cut] for f in failures)
    else:
        body = "\n".join(
            tpl["failure"].format(n=n, prompt=f["prompt"][:cut], response=f["response"][:cut])
            for n, f in enumerate(failures, 1)
        )
    return few_shot(tpl) + [{"role": "user", "content": tpl["user"].format(failures=body)}]


def propose(failures: list[dict], oracle: ChatModel, store: Constitution, iteration: int, cfg: ProposeConfig,
            out: Path) -> list[dict]:
    """Ask the oracle for principles per batch of failures; add them (deduplicated) to ``store``; return the log."""
    batches = [failures[i : i + cfg.batch_size] for i in range(0, len(failures), cfg.batch_size)]
    items = [{"id": f"batch-{k:03d}", "failures": b} for k, b in enumerate(batches)]
    params = GenerationParams(max_new_tokens=cfg.max_new_tokens)

    def ask(batch: list[dict]) -> list[dict]:
        replies = oracle.generate([proposal_conversation(it["failures"], cfg) for it in batch], params)
        return [
            {"id": it["id"], "failure_ids": [f["id"] for f in it["failures"]], "raw": r.text,
             "principles": parse_principles(r.text, paper_mode=cfg.mode == "paper")}
            for it, r in zip(batch, replies)
        ]

    # Several proposal conversations per generate call: decoding is memory-bound, so answering 8 costs little more
    # than answering 1 (each reply is still logged, and resumed, as its own record).
    records = process(items, out, ask, batch_size=PROPOSALS_PER_CALL, desc="propose")
    for rec in records:
        store.add(rec["principles"], iteration=iteration, source_ids=rec["failure_ids"])
    return records
