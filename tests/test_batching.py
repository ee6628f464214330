"""The resumable batch loop every JSONL stage (and the red-team evaluation) runs through."""

from __future__ import annotations

import pytest

from iteralign.records import Answer, Prompt
from iteralign.stages.batching import process


def _prompts(n: int) -> list[Prompt]:
    return [Prompt(id=f"p{i}", text=f"question {i}") for i in range(n)]


class Echo:
    """Answers each prompt with its own text, and remembers which ids it was asked about."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __call__(self, batch: list[Prompt]) -> list[Answer]:
        self.seen += [p.id for p in batch]
        return [Answer.of(p, p.text.upper()) for p in batch]


def test_logged_run_resumes_with_the_remaining_items(tmp_path):
    log, items = tmp_path / "out.jsonl", _prompts(7)
    first = Echo()
    process(items[:3], log, first, 2, "test", Answer)
    second = Echo()
    out = process(items, log, second, 2, "test", Answer)
    assert second.seen == ["p3", "p4", "p5", "p6"]
    assert [a.id for a in out] == [p.id for p in items]
    assert out[0].response == "QUESTION 0"


def test_without_a_log_every_item_is_processed_in_order(tmp_path):
    fn, items = Echo(), _prompts(5)
    out = process(items, None, fn, 2, "test", Answer, progress=False)
    assert fn.seen == [p.id for p in items]
    assert [a.response for a in out] == [p.text.upper() for p in items]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("out", [None, "log.jsonl"])
def test_records_out_of_order_are_refused(tmp_path, out):
    def reverse(batch):
        return [Answer.of(p, "x") for p in reversed(batch)]

    with pytest.raises(RuntimeError, match="out of order"):
        process(_prompts(4), tmp_path / out if out else None, reverse, 2, "test", Answer)
