"""How failures are put in batches for the oracle (stages/propose.py)."""

from __future__ import annotations

import pytest

from iteralign.records import Answer, Prompt, Verdict
from iteralign.stages.propose import ProposeConfig, batches


def failure(i: int, failure_kind: str = "complied_harmful") -> Answer:
    verdict = Verdict(label="unaligned", failure=failure_kind)
    return Answer(id=f"f{i}", prompt=Prompt(id=f"f{i}", text=f"prompt {i}"), response="reply", verdict=verdict)


@pytest.mark.parametrize("count,sizes", [(0, []), (1, [1]), (10, [10]), (11, [5, 6]), (51, [8, 9, 8, 9, 8, 9]),
                                         (79, [9, 10, 10, 10, 10, 10, 10, 10])])
def test_batches_are_as_even_as_the_batch_size_allows(count, sizes):
    """No batch of one left over: its principles would be about that one prompt."""
    made = batches([failure(i) for i in range(count)], ProposeConfig(batch_size=10))
    assert [len(b.failures) for b in made] == sizes
    assert [f.id for b in made for f in b.failures] == [f"f{i}" for i in range(count)]  # in order, each once


def test_each_batch_holds_one_kind_and_permit_batches_are_marked():
    made = batches([failure(i, "refused_benign" if i % 3 == 2 else "complied_harmful") for i in range(12)],
                   ProposeConfig(batch_size=5))
    assert [(b.id, b.kind, len(b.failures)) for b in made] == [
        ("batch-000", "restrict", 4), ("batch-001", "restrict", 4), ("batch-002-permit", "permit", 4)]
    paper = batches([failure(i, "refused_benign") for i in range(3)], ProposeConfig(batch_size=5, mode="paper"))
    assert [(b.kind, len(b.failures)) for b in paper] == [("restrict", 3)]  # the authors': one kind, all together
