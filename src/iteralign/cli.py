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


def main() -> None:  # pragma: no cover - console entry
    app()
