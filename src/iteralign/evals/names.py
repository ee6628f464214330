"""Score names (the keys of ``eval.json``), the groups ``eval.benchmarks`` accepts, and which way is better: all
derived from the benchmarks registered in ``evals.benchmark.BENCHMARKS``, so a plugin's benchmark is a name like any.

Groups: each benchmark's own name (``truthfulqa``, ``hhh``, ``xstest``, ``redteam``...), ``multiple_choice`` (every
log-likelihood benchmark), ``generation`` (every generating one) and ``all``.
"""

from __future__ import annotations

from typing import Iterable

from iteralign.evals.benchmark import BENCHMARKS, Benchmark


def _ordered() -> list[tuple[str, type[Benchmark]]]:
    return sorted(BENCHMARKS.items(), key=lambda item: (item[1].order, item[0]))


def score_names() -> tuple[str, ...]:
    """Every score name, benchmarks in their canonical order."""
    return tuple(score for _, cls in _ordered() for score in cls.scores)


def groups() -> dict[str, tuple[str, ...]]:
    """Group name -> score names."""
    out = {name: cls.scores for name, cls in _ordered()}
    for kind, needs in (("multiple_choice", "scorer"), ("generation", "generator")):
        out[kind] = tuple(s for _, cls in _ordered() if cls.needs == needs for s in cls.scores)
    out["all"] = score_names()
    return out


def lower_is_better(name: str) -> bool:
    """True for scores where lower is better (attack success, over-refusal)."""
    return any(name in cls.lower_is_better for _, cls in BENCHMARKS.items())


def owner(name: str) -> str:
    """The benchmark (group name) that produces score ``name``."""
    return next(group for group, cls in _ordered() if name in cls.scores)


def expand(names: Iterable[str]) -> list[str]:
    """Score names with groups expanded, deduplicated, in canonical order; unknown names raise ValueError."""
    known, by_group = score_names(), groups()
    wanted = set()
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        if name in by_group:
            wanted.update(by_group[name])
        elif name in known:
            wanted.add(name)
        else:
            raise ValueError(f"unknown benchmark {name!r}; known: {', '.join(known)}; groups: {', '.join(by_group)}")
    if not wanted:
        raise ValueError("no benchmark selected")
    return [b for b in known if b in wanted]
