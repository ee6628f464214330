"""Score names (the keys of ``eval.json``), the groups ``eval.benchmarks`` accepts, and which way is better: all
derived from the benchmarks registered in ``evals.benchmark.BENCHMARKS``, so a plugin's benchmark is a name like any.

Groups: each benchmark's own name (``truthfulqa``, ``hhh``, ``xstest``, ``redteam``...), ``multiple_choice`` (every
log-likelihood benchmark), ``generation`` (every generating one) and ``all``. A benchmark with a ``prefix`` accepts
any score name ``<prefix>:<rest>`` (``lm_eval:arc_easy``); such names are never part of a group.
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


def family(name: str) -> tuple[str, type[Benchmark]] | None:
    """The benchmark whose ``prefix`` the open-ended score ``name`` (``lm_eval:<task>``) carries, if any."""
    head, sep, rest = name.partition(":")
    if not sep or not rest.strip():
        return None
    return next(((group, cls) for group, cls in _ordered() if cls.prefix == head), None)


def is_score_name(name: str) -> bool:
    """A fixed score name of a registered benchmark, or a name in a benchmark family (``lm_eval:<task>``)."""
    return name in score_names() or family(name) is not None


def lower_is_better(name: str) -> bool:
    """True for scores where lower is better (attack success, over-refusal)."""
    found = family(name)
    if found:
        return found[1].is_lower_better(name)
    return any(name in cls.lower_is_better for _, cls in BENCHMARKS.items())


def owner(name: str) -> str:
    """The benchmark (group name) that produces score ``name``."""
    found = family(name)
    return found[0] if found else next(group for group, cls in _ordered() if name in cls.scores)


def expand(names: Iterable[str]) -> list[str]:
    """Score names with groups expanded, deduplicated, in canonical order (family names such as ``lm_eval:<task>``
    last, in the order given); unknown names raise ValueError."""
    known, by_group = score_names(), groups()
    wanted, families = set(), []
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        if name in by_group:
            wanted.update(by_group[name])
        elif name in known:
            wanted.add(name)
        elif family(name):
            families += [name] if name not in families else []
        else:
            prefixes = [f"{cls.prefix}:<name>" for _, cls in _ordered() if cls.prefix]
            raise ValueError(f"unknown benchmark {name!r}; known: {', '.join(known + tuple(prefixes))}; groups: "
                             f"{', '.join(by_group)}")
    if not wanted and not families:
        raise ValueError("no benchmark selected")
    return [b for b in known if b in wanted] + families
