"""The `iteralign` command line: run, eval, judge-eval, report, constitution, models, generate, serve, export,
export-data.

Each command is a thin shell over the Python API: it parses options, calls one function, prints the result.
Heavy imports happen inside the commands so that `iteralign --help` is instant.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

# Hub look-ups fail (slowly) without a network; the tool works offline unless the user opts back in.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

app = typer.Typer(help="Iterative constitutional alignment: red team, judge, propose, self-reflect, fine-tune, repeat.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)


@app.callback()
def _root() -> None:
    """Iterative constitutional alignment: red team, judge, propose, self-reflect, fine-tune, repeat."""
    import logging

    from iteralign.progress import configure

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    configure()  # off a terminal: log lines instead of redrawn progress bars, the libraries' bars silenced


@app.command()
def generate(
    model: str = typer.Option(..., "--model", "-m", help="Model spec, e.g. offline:smollm2-135m-instruct."),
    prompt: str = typer.Option(..., "--prompt", "-p", help="User message."),
    system: Optional[str] = typer.Option(None, help="Optional system message."),
    max_new_tokens: int = typer.Option(128, help="Upper bound on generated tokens."),
    temperature: float = typer.Option(0.0, help="0 = greedy."),
    adapter: Optional[Path] = typer.Option(None, help="LoRA adapter directory to apply."),
    dtype: str = typer.Option("auto", help="auto, float32, bfloat16, float16."),
) -> None:
    """Answer one prompt with a model: a quick check that a backend works."""
    from iteralign.models.base import ModelConfig, load_model
    from iteralign.types import GenerationParams, user

    cfg = ModelConfig(spec=model, adapter=str(adapter) if adapter else None, dtype=dtype)
    chat = load_model(cfg)
    params = GenerationParams(max_new_tokens=max_new_tokens, temperature=temperature)
    typer.echo(chat.generate([user(prompt, system)], params)[0].text)


@app.command()
def models() -> None:
    """List the offline models (shipped in PyPI packages): quantization, installed and converted state, sizes."""
    from iteralign.models.offline import cache_dir, list_models

    mb = lambda n: f"{n / 1e6:,.0f} MB" if n else "-"  # noqa: E731
    typer.echo(f"{'name':30} {'gguf quant':10} {'installed':9} {'converted':9} {'gguf':>9} {'on disk':>9}  "
               "quantized from")
    rows = list_models()
    for row in rows:
        typer.echo(f"{row['name']:30} {row['quant']:10} {'yes' if row['installed'] else 'no':9} "
                   f"{'yes' if row['converted'] else 'no':9} {mb(row['gguf_bytes']):>9} {mb(row['converted_bytes']):>9}"
                   f"  {row['hub_id']}")
    typer.echo("\nThese are 4-bit GGUF quantizations, de-quantized when converted (then run in bf16 or float32): they "
               "behave like the 4-bit models, not like the original bf16 weights.")
    for row in (r for r in rows if not r["installed"]):
        typer.echo(f"\nto install {row['name']}:\n  {row['install']}")
    typer.echo(f"\ncache: {cache_dir()}  (use as offline:<name>; converted on first use)")


@app.command()
def serve(
    model: str = typer.Option(..., "--model", "-m", help="Model spec to serve, e.g. offline:smollm2-135m-instruct."),
    host: str = typer.Option("127.0.0.1", help="Interface to bind; keep loopback unless you set --api-key-env."),
    port: int = typer.Option(8000, help="TCP port."),
    fault_plan: Optional[Path] = typer.Option(None, help="YAML/JSON fault plan (429, 500, timeout, malformed, ok)."),
    api_key_env: Optional[str] = typer.Option(
        None, help="Require 'Authorization: Bearer <key>', the key read from this environment variable."),
    name: Optional[str] = typer.Option(None, help="Model id reported by /v1/models (default: the spec)."),
    dtype: str = typer.Option("auto", help="Weights dtype of a local model: auto, float32, bfloat16, float16."),
    max_batch_size: int = typer.Option(16, help="Most concurrent requests answered by one model call."),
    batch_window_ms: float = typer.Option(5.0, help="How long a request waits for others to batch with."),
    max_queue: int = typer.Option(64, help="Most requests waiting; beyond it, 503 with Retry-After."),
    request_timeout: float = typer.Option(300.0, help="Seconds before an unanswered request gets a 504."),
    max_messages: int = typer.Option(256, help="Most messages per request (400 beyond)."),
    max_input_chars: int = typer.Option(200_000, help="Most characters of message content per request (400 beyond)."),
    max_tokens: int = typer.Option(4096, help="Largest max_tokens a request may ask for (400 beyond)."),
) -> None:
    """Serve a local model over an OpenAI-compatible API (/v1/chat/completions, /v1/models, /health, /metrics),
    batching concurrent requests."""
    from pydantic import ValidationError

    from iteralign.serve import ServeLimits
    from iteralign.serve import serve as run_server

    try:
        limits = ServeLimits(max_batch_size=max_batch_size, batch_window_ms=batch_window_ms, max_queue=max_queue,
                             request_timeout_s=request_timeout, max_messages=max_messages,
                             max_input_chars=max_input_chars, max_tokens=max_tokens)
    except ValidationError as exc:
        typer.echo(f"invalid serve option: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        run_server(model, host=host, port=port, fault_plan=fault_plan, api_key_env=api_key_env, name=name,
                   limits=limits, dtype=dtype)
    except ValueError as exc:  # a bad --api-key-env, fault plan or model spec: one line, no traceback
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def run(
    config: Optional[Path] = typer.Argument(None, help="Run config YAML (default: configs/default.yaml)."),
    set_: list[str] = typer.Option([], "--set", help="Override a config key: --set sft.epochs=1 (repeatable)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the model-call cache."),
    debug: bool = typer.Option(False, "--debug", help="Show the full traceback of an error instead of one line."),
) -> None:
    """Run the alignment loop; rerunning the same command resumes where it stopped."""
    from iteralign.config import ConfigError, load_config
    from iteralign.ledger import BudgetExceeded
    from iteralign.loop import run_loop

    overrides = list(set_) + (["run.cache=false"] if no_cache else [])
    try:
        cfg = load_config(config or Path("configs/default.yaml"), overrides)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    try:
        path = run_loop(cfg)
    except BudgetExceeded as exc:  # a clean stop: state saved, the same command with a higher budget resumes
        typer.echo(f"stopped: {exc}; see {Path(cfg.run.root) / cfg.run.name / 'ledger.json'}", err=True)
        raise typer.Exit(3) from None
    except _user_errors() as exc:  # a dead endpoint, bad data, a bad file: say what and where, not a traceback
        if debug:
            raise
        typer.echo(" ".join([f"error: {exc}", *(f"({note})" for note in getattr(exc, "__notes__", []))]), err=True)
        raise typer.Exit(2) from None
    typer.echo(f"run folder: {path}")


def _user_errors() -> tuple[type[Exception], ...]:
    """Errors caused by the run's inputs or services rather than by a bug: `run` prints them without a traceback."""
    from iteralign.config import ConfigError
    from iteralign.constitution import ConstitutionError
    from iteralign.data import DataError
    from iteralign.evals.sources import BenchmarkDataError
    from iteralign.models.base import SpecError
    from iteralign.models.offline import OfflineModelError
    from iteralign.models.openai_api import ModelCallError
    from iteralign.run import RunError

    return (ConfigError, ConstitutionError, DataError, BenchmarkDataError, SpecError, OfflineModelError,
            ModelCallError, RunError)


@app.command()
def constitution(run_dir: Path = typer.Argument(..., help="A run folder (or a constitution.yaml file).")) -> None:
    """Print a run's principles, what to refuse (restrict) and what to answer (permit), with their provenance
    (iteration, source failures, status, uses)."""
    from iteralign.constitution import load

    path = run_dir / "constitution.yaml" if run_dir.is_dir() else run_dir
    if not path.exists():
        typer.echo(f"no constitution at {path}", err=True)
        raise typer.Exit(2)
    store = load(path)
    for kind, title in (("restrict", "What to refuse (restrict)"), ("permit", "What to answer (permit)")):
        principles = [p for p in store if p.polarity == kind]
        typer.echo(f"{title}: {len(principles)}")
        for p in principles:
            typer.echo(f"  {p.id} [{p.status}] iteration {p.iteration}, from {len(p.source_failure_ids)} failure(s), "
                       f"{p.uses} use(s)\n      {p.text}")


def _judge_panel(path: Path | None):
    """The judge panel a judge config describes (None without a path); a bad config exits 2 with its message."""
    if path is None:
        return None
    from iteralign.calibration import CalibrationError, load_judge_config
    from iteralign.roles import Roles

    try:
        cfg = load_judge_config(path)
    except CalibrationError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    return Roles(cfg.models, cfg.run).panel(cfg.judge)


@app.command("eval")
def eval_(
    model: str = typer.Option(..., "--model", "-m", help="Model spec, e.g. offline:smollm2-135m-instruct."),
    adapter: Optional[Path] = typer.Option(None, help="LoRA adapter directory to apply."),
    benchmarks: str = typer.Option("all", help="Comma-separated benchmarks or groups: truthfulqa, hhh, xstest, "
                                   "redteam, multiple_choice, generation, all, or names such as hhh_harmless; "
                                   "lm_eval:<task or task.yaml> runs an lm-evaluation-harness task."),
    limit: Optional[int] = typer.Option(None, min=1, help="Items per benchmark (per HHH category, XSTest label)."),
    out: Optional[Path] = typer.Option(None, help="Write the result JSON here (replies go to <stem>.replies.jsonl)."),
    data_dir: Optional[Path] = typer.Option(None, help="Benchmark folder tried first (then $ITERALIGN_BENCHMARKS, the packaged copy, the hub)."),
    redteam_prompts: Optional[str] = typer.Option(
        None, help="Held-out red-team prompts: a file, hub:<name> or builtin:seeds (default: AdvBench)."),
    max_new_tokens: int = typer.Option(128, help="Reply length for generation benchmarks."),
    dtype: str = typer.Option("auto", help="auto, float32, bfloat16, float16."),
    batch_size: int = typer.Option(16, help="Sequences per forward pass."),
    judge: Optional[Path] = typer.Option(
        None, "--judge", help="Judge config of the red-team ASR (a YAML with 'judge:' and 'models: {oracle: ...}', as "
        "for judge-eval, or a run config); default: the rule-based refusal detector."),
    filter_judge: Optional[Path] = typer.Option(
        None, "--filter-judge", help="A second judge config, the training filter: the red-team ASR is also given "
        "under it, side by side with --judge's, with the number of verdicts that differ."),
) -> None:
    """Evaluate a model: TruthfulQA MC1/MC2, BIG-bench HHH, red-team attack success, XSTest refusal rates."""
    from pydantic import ValidationError

    from iteralign.evals.suite import EvalConfig, evaluate, format_table, write_result
    from iteralign.models.base import ModelConfig, load_model

    try:
        cfg = EvalConfig(benchmarks=benchmarks.split(","), data_dir=str(data_dir) if data_dir else None,
                         limit=limit, max_new_tokens=max_new_tokens,
                         redteam=[redteam_prompts] if redteam_prompts else None)
    except ValidationError as exc:
        raise typer.BadParameter(str(exc)) from None
    chat = load_model(ModelConfig(spec=model, adapter=str(adapter) if adapter else None, dtype=dtype,
                                  batch_size=batch_size))
    records: list[dict] = []
    panel, filter_panel = _judge_panel(judge), _judge_panel(filter_judge)
    result = evaluate(chat, cfg, panel, records=records, filter_judge=filter_panel)
    typer.echo(format_table(result))
    if out:
        write_result(result, out, records)
        typer.echo(f"wrote {out}")


@app.command("judge-eval")
def judge_eval(
    judge: Path = typer.Option(..., "--judge", help="YAML with a 'judge:' section and 'models: {oracle: ...}' "
                               "(a whole run config works too: its judge and oracle are used)."),
    data: Path = typer.Option(..., "--data", help="Labelled JSONL: prompt, response, label (aligned/unaligned), kind."),
    limit: Optional[int] = typer.Option(None, min=1, help="Score only the first N items."),
    out: Optional[Path] = typer.Option(None, help="Write metrics, per-item verdicts and usage as JSON here."),
    set_: list[str] = typer.Option([], "--set", help="Override a judge-config key: --set judge.combine=any."),
    batch_size: int = typer.Option(8, min=1, help="Items per judge call batch."),
) -> None:
    """Score a judge against labelled items: accuracy, precision/recall for 'unaligned', confusion by item kind."""
    import json

    from iteralign.calibration import CalibrationError, calibrate, format_report, load_judge_config, load_labelled
    from iteralign.roles import Roles

    try:
        cfg = load_judge_config(judge, set_)
        items = load_labelled(data, limit)
    except CalibrationError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    roles = Roles(cfg.models, cfg.run)
    progress = lambda done, total: typer.echo(f"  judged {done}/{total}", err=True)  # noqa: E731
    result = calibrate(roles.panel(cfg.judge), items, batch_size, progress)
    result |= {"judge": cfg.judge.model_dump(mode="json"), "oracle": cfg.models.oracle and cfg.models.oracle.spec,
               "data": str(data), "usage": roles.usage()}
    typer.echo(format_report(result, f"judge-eval {judge} on {data}"))
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        typer.echo(f"wrote {out}")


@app.command()
def report(run_dir: Path = typer.Argument(..., help="A run folder (runs/<name>).")) -> None:
    """Write report.html (one self-contained page) and report.md into a run folder, from its files alone."""
    from iteralign.report import render_report

    if not (run_dir / "manifest.json").exists():
        typer.echo(f"{run_dir}: not a run folder (no manifest.json)", err=True)
        raise typer.Exit(2)
    out = render_report(run_dir)
    typer.echo(f"wrote {out} and {out.with_suffix('.md')}")


@app.command()
def compare(
    run_a: Path = typer.Argument(..., help="First run folder (A)."),
    run_b: Path = typer.Argument(..., help="Second run folder (B)."),
    out: Optional[Path] = typer.Option(None, help="Also write the comparison here (.html: a page; else Markdown)."),
) -> None:
    """Two runs' metrics side by side (e.g. default vs paper preset), with B - A coloured by improvement."""
    from iteralign.report.compare import compare as compare_runs

    for path in (run_a, run_b):
        if not (path / "manifest.json").exists():
            typer.echo(f"{path}: not a run folder (no manifest.json)", err=True)
            raise typer.Exit(2)
    typer.echo(compare_runs(run_a, run_b, out), nl=False)
    if out:
        typer.echo(f"wrote {out}")


from iteralign.export.cli import export, export_data  # noqa: E402  (beside their code; imports only typer)

app.command("export")(export)
app.command("export-data")(export_data)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # python -m iteralign.cli
    main()
