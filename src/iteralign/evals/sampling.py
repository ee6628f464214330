"""Stratified, seeded subsamples of a benchmark: every stratum represented in proportion, the same rows every time.

Benchmark files are grouped by kind (XSTest writes its 25 homonyms, then 25 figurative-language prompts, ...), so the
first ``limit`` rows cover only the first few kinds. ``stratified(rows, limit, key, seed)`` instead:

1. groups the rows by ``key`` (e.g. XSTest's ``type``), strata in order of first appearance;
2. gives each stratum ``limit * size / total`` rows, rounded down, then hands the rows still to place to the strata
   with the largest remainders (ties: the stratum that appears first): the largest-remainder method, so the counts
   sum to ``limit`` and no stratum is over- or under-represented by more than one row;
3. draws that many rows from each stratum with ``random.Random(f"{seed}:{stratum}")``, which depends on nothing but
   the seed and the stratum's name (not on the Python process, nor on the other strata);
4. returns the chosen rows in their original file order.

With ``limit`` at or above the number of rows, all rows are returned.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TypeVar

Row = TypeVar("Row")


def allocate(sizes: dict[str, int], limit: int) -> dict[str, int]:
    """Rows per stratum: proportional to ``sizes``, summing to ``min(limit, total)`` (largest remainders)."""
    total = sum(sizes.values())
    if limit >= total:
        return dict(sizes)
    exact = {name: limit * size / total for name, size in sizes.items()}
    counts = {name: int(share) for name, share in exact.items()}
    order = sorted(sizes, key=lambda name: (-(exact[name] - counts[name]), list(sizes).index(name)))
    for name in order[: limit - sum(counts.values())]:
        counts[name] += 1
    return counts


def stratified(rows: Sequence[Row], limit: int | None, key: Callable[[Row], str], seed: int = 0) -> list[Row]:
    """A proportional stratified sample of ``limit`` rows (module docstring); all rows when ``limit`` is None."""
    if limit is None or limit >= len(rows):
        return list(rows)
    strata: dict[str, list[int]] = {}
    for index, row in enumerate(rows):
        strata.setdefault(str(key(row)), []).append(index)
    counts = allocate({name: len(members) for name, members in strata.items()}, limit)
    chosen = {i for name, members in strata.items()
              for i in random.Random(f"{seed}:{name}").sample(members, counts[name])}
    return [row for index, row in enumerate(rows) if index in chosen]
