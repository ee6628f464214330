"""The run report, built from the run folder alone (so it can be rebuilt at any time: `iteralign report RUN_DIR`).

``report.md``: per-iteration outcomes (red-team failure rate, principles, revisions kept, gate decision), benchmark
scores before and after each iteration, the constitution with provenance, and cost per stage.
"""

from __future__ import annotations

import json
from pathlib import Path

from iteralign.run import atomic_write


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _evals(path: Path) -> list[tuple[str, dict]]:
    found = [("baseline", path / "baseline" / "eval.json")]
    found += [(d.name, d / "eval.json") for d in sorted(path.glob("iter-*"))]
    return [(name, json.loads(f.read_text())) for name, f in found if f.exists()]


def markdown(path: Path) -> str:
    manifest = json.loads((path / "manifest.json").read_text())
    parts = [f"# iteralign run `{path.name}`"]
    its = manifest.get("iterations", [])
    parts.append("## Iterations\n\n" + _table(
        ["iteration", "red-teamed", "failures", "failure rate", "unknown", "principles", "revisions kept", "accepted"],
        [[s["iteration"], s["red_team"], s["failures"], f"{s['failure_rate']:.1%}", s.get("unknown", 0),
          s.get("principles", "-"), f"{s.get('revisions_kept', '-')}/{s.get('revisions', '-')}",
          s.get("accepted", s.get("stopped", "-"))] for s in its]))
    evals = _evals(path)
    if evals:
        names = sorted({b for _, e in evals for b in e.get("benchmarks", {})})
        rows = [[n] + [_score(e, n) for _, e in evals] for n in names]
        parts.append("## Benchmarks\n\n" + _table(["benchmark"] + [name for name, _ in evals], rows))
    const = path / "constitution.yaml"
    if const.exists():
        from iteralign.constitution import load

        parts.append("## Constitution\n\n" + "\n".join(
            f"- **{p.id}** ({p.status}, iteration {p.iteration}, from {len(p.source_failure_ids)} failures): {p.text}"
            for p in load(const)))
    stages = manifest.get("stages", {})
    parts.append("## Stages\n\n" + _table(
        ["stage", "status", "seconds", "model calls", "cache hits", "tokens"],
        [[k, v.get("status"), v.get("seconds_total", v.get("seconds", "-")), v.get("usage", {}).get("calls", "-"),
          v.get("usage", {}).get("cache_hits", "-"),
          v.get("usage", {}).get("prompt_tokens", 0) + v.get("usage", {}).get("completion_tokens", 0)]
         for k, v in stages.items()]))
    return "\n\n".join(parts) + "\n"


def _score(evaluation: dict, name: str) -> str:
    entry = evaluation.get("benchmarks", {}).get(name)
    return f"{entry['score']:.3f} ± {entry['stderr']:.3f}" if entry else "-"


def render_report(path: str | Path) -> Path:
    """Write ``report.md`` into the run folder and return its path."""
    path = Path(path)
    out = path / "report.md"
    atomic_write(out, markdown(path))
    return out
