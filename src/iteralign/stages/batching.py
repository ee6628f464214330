"""Resumable batch processing: the one loop every JSONL stage uses.

Items are processed in fixed chunks of the original order; finished items are read back from the stage's log and
skipped, so a resumed stage does only the remaining work and writes records in the same order as an uninterrupted
run would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from iteralign.progress import Progress
from iteralign.run import JsonlLog


def process(
    items: Sequence[dict],
    out: Path,
    fn: Callable[[list[dict]], list[dict]],
    batch_size: int,
    desc: str,
) -> list[dict]:
    """Apply ``fn`` to the items (dicts with an ``id``) not yet in ``out``; return all records in item order.

    ``fn`` takes a batch and returns one record per item, each carrying the item's ``id``.
    """
    log = JsonlLog(out)
    done = log.done_ids
    todo = [item for item in items if item["id"] not in done]
    with Progress(len(items), desc, "item", initial=len(items) - len(todo), enabled=bool(todo)) as bar:
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            records = fn(batch)
            if [r["id"] for r in records] != [i["id"] for i in batch]:
                raise RuntimeError(f"{desc}: stage returned records out of order or missing")
            log.append(records)
            bar.update(len(batch))
    by_id = {r["id"]: r for r in log.records}
    return [by_id[item["id"]] for item in items if item["id"] in by_id]
