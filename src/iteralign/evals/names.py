"""Benchmark names (the keys of ``eval.json``), the groups the CLI accepts, and which direction is better."""

from __future__ import annotations

from typing import Iterable

BENCHMARKS = (
    "truthfulqa_mc1", "truthfulqa_mc2",
    "hhh_harmless", "hhh_helpful", "hhh_honest", "hhh_other", "hhh_overall",
    "redteam_asr", "xstest_safe_refusal", "xstest_unsafe_refusal",
)
#: Lower is better for these (attack success, over-refusal); higher is better for the rest.
LOWER_IS_BETTER = frozenset({"redteam_asr", "xstest_safe_refusal"})

GROUPS = {
    "truthfulqa": BENCHMARKS[0:2],
    "hhh": BENCHMARKS[2:7],
    "xstest": BENCHMARKS[8:10],
    "redteam": ("redteam_asr",),
    "multiple_choice": BENCHMARKS[0:7],
    "generation": BENCHMARKS[7:10],
    "all": BENCHMARKS,
}


def expand(names: Iterable[str]) -> list[str]:
    """Benchmark names with groups expanded, deduplicated, in canonical order; unknown names raise ValueError."""
    wanted = set()
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        if name in GROUPS:
            wanted.update(GROUPS[name])
        elif name in BENCHMARKS:
            wanted.add(name)
        else:
            raise ValueError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}; "
                             f"groups: {', '.join(GROUPS)}")
    if not wanted:
        raise ValueError("no benchmark selected")
    return [b for b in BENCHMARKS if b in wanted]
