"""One benchmark result (score, item count, standard error) and the two ways we aggregate per-item outcomes.

Accuracy-like rates (MC1, HHH, refusal rates, attack success) are means of 0/1 outcomes and get the binomial
standard error ``sqrt(p (1 - p) / n)``; MC2 is a mean of per-item probabilities and gets the sample standard error
``sd(x, ddof=1) / sqrt(n)``. Keeping both here means every benchmark reports error bars the same way, and the gate
in ``evals.gate`` can reason about them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Iterable


@dataclass
class Score:
    """A benchmark's headline number, how many items it rests on, and its standard error.

    ``extra`` holds benchmark-specific detail (per-category rates, excluded items) and is flattened into the JSON
    next to the three required keys.
    """

    score: float
    n: int
    stderr: float
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = asdict(self)
        out.update(out.pop("extra"))
        return out


def accuracy(outcomes: Iterable[bool | float]) -> Score:
    """Mean of 0/1 outcomes with the binomial standard error."""
    values = [float(x) for x in outcomes]
    if not values:
        raise ValueError("cannot score a benchmark with no items")
    p = sum(values) / len(values)
    return Score(p, len(values), math.sqrt(p * (1.0 - p) / len(values)))


def mean(values: Iterable[float]) -> Score:
    """Mean of per-item scores with the sample standard error (0 for a single item)."""
    xs = [float(x) for x in values]
    if not xs:
        raise ValueError("cannot score a benchmark with no items")
    m = sum(xs) / len(xs)
    if len(xs) < 2:
        return Score(m, 1, 0.0)
    var = sum((x - m) ** 2 for x in xs) / (len(xs) - 1)
    return Score(m, len(xs), math.sqrt(var / len(xs)))
