"""The ``iteralign export`` and ``iteralign export-data`` commands (registered on the app in ``iteralign.cli``):
thin shells over ``export.model.export_model`` and ``export.data.export_data``; heavy imports happen inside."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

import typer


def export(
    run_dir: Path = typer.Argument(..., help="A run folder (runs/<name>)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write (new or empty)."),
    fmt: str = typer.Option("merged", "--format", "-f", help="adapter (peft folder), merged (base + adapter, a "
                            "plain transformers folder) or gguf (one GGUF file, for llama.cpp and Ollama)."),
    iteration: Optional[int] = typer.Option(None, help="Export this iteration's model (default: the last one the "
                                            "gate accepted)."),
    quant: str = typer.Option("f16", help="GGUF tensor type: f32, f16, bf16, q8_0, q5_1, q5_0, q4_1, q4_0."),
    dtype: str = typer.Option("auto", help="merged: weights dtype (auto: the base model's; float32, bfloat16, "
                              "float16)."),
    base_id: Optional[str] = typer.Option(None, help="Hub id of the base model, recorded in the adapter config and "
                                          "the card (e.g. HuggingFaceTB/SmolLM2-135M-Instruct)."),
    push_to_hub: Optional[str] = typer.Option(None, help="Also upload the folder to this hub repo (needs HF_TOKEN "
                                              "and HF_HUB_OFFLINE=0)."),
    public: bool = typer.Option(False, help="Create the hub repo public (default: private)."),
) -> None:
    """Write a run's accepted model (or --iteration N's) as an adapter, a merged model or a GGUF file, with a model
    card recording the base model, the iterations, the constitution and the evaluation before and after."""
    from iteralign.export.model import export_model

    command = shlex.join(["iteralign", *sys.argv[1:]]) if sys.argv[1:2] == ["export"] else ""
    try:
        path = export_model(run_dir, out, fmt, iteration, quant=quant, dtype=dtype, base_id=base_id,
                            command=command, push_to_hub=push_to_hub, private=not public)
    except ValueError as exc:  # ExportError, gguf_file.UnsupportedModel, a config that no longer validates
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"wrote {path}")


def export_data(
    run_dir: Path = typer.Argument(..., help="A run folder (runs/<name>)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write the data sets into."),
) -> None:
    """Write a run's training data (SFT messages, preference pairs, the constitution with provenance) as
    Hugging Face datasets folders and JSONL, in the layouts TRL, alignment-handbook and axolotl read."""
    from iteralign.export.data import export_data as write

    try:
        counts = write(run_dir, out)
    except FileNotFoundError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(", ".join(f"{name}: {n} rows" for name, n in counts.items()) + f"; wrote {out}")
