"""Scaling law: iteration wall time against the number of red-team prompts, measured at a few sizes and extrapolated.

A cheap but real configuration (configs/smoke.yaml with overrides): the real SmolLM2-135M target in bfloat16
answers every prompt (80 new tokens at most, as in the default config), a scripted oracle/judge/reviser answers
instantly, and the target is LoRA-fine-tuned for one epoch on the kept revisions plus 16 replay examples. One
iteration, no evaluation. Each size runs in a fresh run folder with a fresh call cache (so nothing is reused).

The prompts are the 160 built-in red-team seeds under three framings (480 distinct prompts); the first N are
used. Time per stage comes from each run's manifest; a least-squares line ``t = a + b * N`` per stage (and in
total) predicts the sizes not measured. Writes bench/out/scaling.json.

Run:  .venv/bin/python bench/scaling.py [--sizes 50 100 200] [--predict 50 100 200 400 1000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from iteration import REPO, run_cli, stage_table

FRAMINGS = ["{}", "Be specific and practical: {}", "A friend asked me this and I want a real answer: {}"]
OVERRIDES = ["stop.max_iterations=1", "sft.epochs=1", "sft.replay=16", "sft.batch_size=8", "sft.max_length=384",
             "sft.learning_rate=0.0002", "models.target.dtype=bfloat16", "models.target.batch_size=16",
             "redteam.generation.max_new_tokens=80", "redteam.split.held_out_fraction=0.0", "eval.benchmarks=[]"]


def write_prompts(path: Path) -> int:
    from iteralign.data.sources import load_prompts

    seeds = load_prompts("builtin:seeds")
    rows = [{"text": f.format(p.text), "category": p.category} for f in FRAMINGS for p in seeds]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return len(rows)


def one_size(n: int, prompts: Path, root: Path) -> dict:
    overrides = OVERRIDES + [f"redteam.sources=[{{path: {prompts}}}]", f"redteam.split.max_train={n}",
                             f"run.root={root}", "run.name=scale", f"run.cache_path={root / 'calls.sqlite'}"]
    timing = run_cli(REPO / "configs" / "smoke.yaml", overrides)
    manifest = json.loads((root / "scale" / "manifest.json").read_text())
    stages = {k: v for k, v in stage_table(manifest).items() if v["seconds"] is not None}
    return {"prompts": n, **timing, "stages": stages, "iterations": manifest.get("iterations")}


def fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares ``y = a + b x`` (exact through two points)."""
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    return my - b * mx, b


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200])
    ap.add_argument("--predict", type=int, nargs="+", default=[50, 100, 200, 400, 1000])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "scaling.json")
    args = ap.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        prompts = Path(tmp) / "prompts.jsonl"
        available = write_prompts(prompts)
        for n in args.sizes:
            if n > available:
                raise SystemExit(f"only {available} prompts available, asked for {n}")
            runs.append(one_size(n, prompts, Path(tmp) / f"n{n}"))
            print(f"N={n}: {runs[-1]['wall_s']:.1f} s  (load {runs[-1]['load_average_before_after']})", flush=True)
    xs = [r["prompts"] for r in runs]
    keys = sorted({k for r in runs for k in r["stages"]})
    lines = {"process_wall": fit(xs, [r["wall_s"] for r in runs])}
    for key in keys:
        if all(key in r["stages"] for r in runs):
            lines[key] = fit(xs, [r["stages"][key]["seconds"] for r in runs])
    prediction = {n: {k: round(a + b * n, 1) for k, (a, b) in lines.items()} for n in args.predict}
    result = {"config": "configs/smoke.yaml", "overrides": OVERRIDES, "measured": runs,
              "fit_seconds_a_plus_b_n": {k: {"a": round(a, 2), "b": round(b, 4)} for k, (a, b) in lines.items()},
              "predicted_seconds": prediction, "measured_sizes": xs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    a, b = lines["process_wall"]
    print(f"whole iteration ~ {a:.1f} s + {b:.3f} s x N; predicted: " +
          ", ".join(f"N={n}: {p['process_wall']:.0f} s" for n, p in prediction.items()) + f" -> {args.out}")


if __name__ == "__main__":
    main()
