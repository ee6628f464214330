"""The `iteralign` command line: run, eval, report, constitution, models, generate, serve.

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


@app.command("eval")
def eval_(
    model: str = typer.Option(..., "--model", "-m", help="Model spec, e.g. offline:smollm2-135m-instruct."),
    adapter: Optional[Path] = typer.Option(None, help="LoRA adapter directory to apply."),
    benchmarks: str = typer.Option("all", help="Comma-separated benchmarks or groups: truthfulqa, hhh, xstest, "
                                   "redteam, multiple_choice, generation, all, or names such as hhh_harmless."),
    limit: Optional[int] = typer.Option(None, min=1, help="Items per benchmark (per HHH category, XSTest label)."),
    out: Optional[Path] = typer.Option(None, help="Write the result JSON here (replies go to <stem>.replies.jsonl)."),
    data_dir: Optional[Path] = typer.Option(None, help="Benchmark folder (default: ../shared/benchmarks)."),
    redteam_prompts: Optional[str] = typer.Option(
        None, help="Held-out red-team prompts: a file, hub:<name> or builtin:seeds (default: AdvBench)."),
    max_new_tokens: int = typer.Option(128, help="Reply length for generation benchmarks."),
    dtype: str = typer.Option("auto", help="auto, float32, bfloat16, float16."),
    batch_size: int = typer.Option(16, help="Sequences per forward pass."),
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
    result = evaluate(chat, cfg, records=records)
    typer.echo(format_table(result))
    if out:
        write_result(result, out, records)
        typer.echo(f"wrote {out}")


def main() -> None:  # pragma: no cover - console entry
    app()
