"""Resumable batch processing: the one loop every JSONL stage uses.

Items (records with an ``id``) are processed in fixed chunks of the original order; finished items are read back
from the stage's log and skipped, so a resumed stage does only the remaining work and writes records in the same
order as an uninterrupted run would. The log holds the records as they are (``to_json``) and is read back into
``record_type``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence, TypeVar

from iteralign.progress import Progress
from iteralign.records import Record
from iteralign.run import JsonlLog

R = TypeVar("R", bound=Record)


def process(items: Sequence[Record], out: Path | None, fn: Callable[[list], list[R]], batch_size: int, desc: str,
            record_type: type[R], progress: bool = True) -> list[R]:
    """Apply ``fn`` to the items not yet in ``out``; return all records in item order.

    ``fn`` takes a batch and returns one record per item, each carrying the item's ``id``. With ``out=None`` nothing
    is logged (a caller without a work folder): every item is processed and the records are returned as made.
    """
    log = JsonlLog(out) if out is not None else None
    done = log.done_ids if log is not None else set()
    todo = [item for item in items if item.id not in done]
    made: list[R] = []
    with Progress(len(items), desc, "item", initial=len(items) - len(todo), enabled=progress and bool(todo)) as bar:
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            records = fn(batch)
            if [r.id for r in records] != [i.id for i in batch]:
                raise RuntimeError(f"{desc}: stage returned records out of order or missing")
            if log is None:
                made += records
            else:
                log.append([r.to_json() for r in records])
            bar.update(len(batch))
    if log is None:
        return made
    by_id = {r["id"]: r for r in log.records}
    return [record_type.model_validate(by_id[item.id]) for item in items if item.id in by_id]
