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


def process(items: Sequence[Record], out: Path, fn: Callable[[list], list[R]], batch_size: int, desc: str,
            record_type: type[R]) -> list[R]:
    """Apply ``fn`` to the items not yet in ``out``; return all records in item order.

    ``fn`` takes a batch and returns one record per item, each carrying the item's ``id``.
    """
    log = JsonlLog(out)
    done = log.done_ids
    todo = [item for item in items if item.id not in done]
    with Progress(len(items), desc, "item", initial=len(items) - len(todo), enabled=bool(todo)) as bar:
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            records = fn(batch)
            if [r.id for r in records] != [i.id for i in batch]:
                raise RuntimeError(f"{desc}: stage returned records out of order or missing")
            log.append([r.to_json() for r in records])
            bar.update(len(batch))
    by_id = {r["id"]: r for r in log.records}
    return [record_type.model_validate(by_id[item.id]) for item in items if item.id in by_id]
