"""Saving the trained adapter (or model) so that it is complete under every launcher, and proving it.

The known failure this guards against: under DeepSpeed ZeRO-3 each process holds only a shard of every parameter,
so calling ``model.save_pretrained`` on the main process alone writes tensors of shape ``[0]`` (or, when
``stage3_gather_16bit_weights_on_model_save`` is off, ``Trainer`` writes an empty state dict): an adapter that
loads without error and changes nothing. ``Trainer.save_model`` is the path transformers, TRL and PEFT support: on
*every* process it gathers the full state dict (``accelerator.get_state_dict`` / DeepSpeed's consolidated 16-bit
state dict / FSDP's full state dict, which we switch to first as PEFT's FSDP guide does) and the main process writes
it. ``save_complete`` calls it on all ranks, then checks the files on the main process and fails loudly when a tensor
is empty or an expected LoRA key is missing.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any


class IncompleteSaveError(RuntimeError):
    """The saved adapter/model is empty or lacks weights it should have."""


def expected_lora_keys(model: Any) -> set[str]:
    """The tensor names PEFT writes for a model's trainable LoRA weights (the adapter name is dropped on save).

    Names are known on every process even when ZeRO-3 has partitioned the tensors themselves.
    """
    adapter = getattr(model, "active_adapter", "default")
    adapter = adapter if isinstance(adapter, str) else "default"
    return {name.replace(f".{adapter}.", ".") for name, p in model.named_parameters()
            if p.requires_grad and "lora_" in name}


def verify_saved(directory: Path, expected: set[str]) -> dict:
    """Check the weight files in ``directory``: at least one tensor, none empty, every ``expected`` name present.
    Returns a summary (tensor count, parameter count); raises ``IncompleteSaveError`` otherwise."""
    from safetensors import safe_open

    files = sorted(directory.glob("adapter_model.safetensors")) or sorted(directory.glob("model*.safetensors"))
    if not files:
        raise IncompleteSaveError(f"{directory}: no adapter_model.safetensors or model*.safetensors was written")
    shapes: dict[str, list[int]] = {}
    for path in files:
        with safe_open(str(path), framework="pt") as f:
            shapes.update({key: f.get_slice(key).get_shape() for key in f.keys()})
    empty = sorted(k for k, shape in shapes.items() if math.prod(shape) == 0)
    missing = sorted(expected - set(shapes))
    if not shapes or empty or missing:
        raise IncompleteSaveError(
            f"{directory}: incomplete save ({len(shapes)} tensors; empty: {empty[:3]}{'...' if len(empty) > 3 else ''};"
            f" missing: {missing[:3]}{'...' if len(missing) > 3 else ''}). Under DeepSpeed ZeRO-3 set "
            "zero3_save_16bit_model: true in the accelerate config (configs/accelerate/deepspeed_zero3.yaml does)."
        )
    return {"tensors": len(shapes), "parameters": sum(math.prod(s) for s in shapes.values())}


def save_complete(trainer: Any, final: Path, expected: set[str], stats: dict) -> None:
    """Save through ``trainer.save_model`` on all processes, verify on the main one, publish by renaming.

    The main process adds the verification summary to ``stats`` and writes them to ``train_stats.json`` beside
    ``final`` before the rename, so ``final`` appears only once complete, verified and described.
    """
    accelerator = trainer.accelerator
    tmp = final.with_name(f".{final.name}.tmp")
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    if getattr(trainer, "is_fsdp_enabled", False):  # Trainer.save_model writes nothing from sharded FSDP state
        accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
    accelerator.wait_for_everyone()
    trainer.save_model(str(tmp))  # a collective under ZeRO-3/FSDP: every rank must call it
    if accelerator.is_main_process:
        stats["saved"] = verify_saved(tmp, expected)
        (final.parent / "train_stats.json").write_text(json.dumps(stats, indent=2))
        tmp.rename(final)
    accelerator.wait_for_everyone()
