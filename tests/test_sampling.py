"""Stratified benchmark subsamples: XSTest's ``limit`` covers every prompt type in proportion, seeded and stable."""

from __future__ import annotations

from collections import Counter

from iteralign.evals import xstest
from iteralign.evals.sampling import allocate, stratified


def test_xstest_limit_covers_every_type_of_both_labels():
    """The file lists prompts type by type: its first 60 safe rows are 3 of the 10 safe types. A limit draws from
    all of them, in proportion (6 of each safe type; 7 or 8 of each unsafe type)."""
    full = xstest.load_prompts(None)
    sample = xstest.load_prompts(None, limit=60)
    for label, n_types in (("safe", 10), ("unsafe", 8)):
        counts = Counter(row["type"] for row in sample[label])
        assert len(sample[label]) == 60 and len(counts) == n_types == len({r["type"] for r in full[label]})
        assert max(counts.values()) - min(counts.values()) <= 1
        positions = [full[label].index(row) for row in sample[label]]
        assert positions == sorted(positions)  # file order kept
    assert set(Counter(r["type"] for r in sample["safe"]).values()) == {6}


def test_xstest_sample_is_seeded_and_stable():
    first, again = xstest.load_prompts(None, limit=60), xstest.load_prompts(None, limit=60)
    other = xstest.load_prompts(None, limit=60, seed=1)
    assert first == again and first["safe"] != other["safe"]
    assert Counter(r["type"] for r in first["safe"]) == Counter(r["type"] for r in other["safe"])
    assert xstest.load_prompts(None, limit=1000) == xstest.load_prompts(None)


def test_allocation_is_proportional_and_sums_to_the_limit():
    assert allocate({"a": 50, "b": 30, "c": 20}, 10) == {"a": 5, "b": 3, "c": 2}
    assert allocate({"a": 1, "b": 1, "c": 1}, 2) == {"a": 1, "b": 1, "c": 0}  # ties: first stratum first
    assert allocate({"big": 100, "small": 10}, 11) == {"big": 10, "small": 1}
    assert allocate({"a": 3, "b": 2}, 9) == {"a": 3, "b": 2}


def test_stratified_rows_do_not_depend_on_the_other_strata():
    rows = [("x", i) for i in range(20)] + [("y", i) for i in range(20)]
    alone = stratified(rows[:20], 5, key=lambda r: r[0], seed=3)
    mixed = stratified(rows, 10, key=lambda r: r[0], seed=3)
    assert [r for r in mixed if r[0] == "x"] == alone and stratified(rows, None, key=lambda r: r[0]) == rows
