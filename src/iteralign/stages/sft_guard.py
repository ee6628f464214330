"""Guards around SFT that make a crash or a full disk cheap: a disk-space check before training starts, and the
choice of the checkpoint to resume from after a kill.

- ``check_disk``: training that dies of a full disk at its last checkpoint wastes every step before it; so before
  anything loads, the free space of the SFT folder is compared with an estimate of what training writes (from the
  parameter count in the base weights' safetensors headers) and a clear ``RunError`` says how much is missing.
- ``resume_point``: ``Trainer`` writes a checkpoint folder file by file and ``trainer_state.json`` last, so a kill
  during the save leaves a folder without it; resuming from that folder (what ``resume_from_checkpoint=True`` does,
  it takes the highest step) fails. The newest *complete* checkpoint is used instead and incomplete ones removed.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from iteralign.run import RunError

#: Disk written per parameter, in units of the weights' size: full fine-tuning keeps two checkpoints for a moment
#: (save, then rotation) of weights + two Adam moments, then writes the final model: 2 x 3 + 1. LoRA writes the
#: same for its trainable weights, a few percent of the model at the default ranks; 0.35 covers up to 5 %.
DISK_FACTOR = {"full": 7.0, "lora": 0.35}
MARGIN_BYTES = 64 * 2**20  # tokenizer files, trainer state, logs
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


def count_parameters(model_dir: str | Path) -> int | None:
    """Parameters in a local model folder, read from the safetensors headers (no weights loaded); None when the
    folder has no safetensors files (a hub id, another format)."""
    total = 0
    files = sorted(Path(model_dir).glob("*.safetensors")) if Path(model_dir).is_dir() else []
    for path in files:
        with open(path, "rb") as fh:
            size = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(size))
        for name, info in header.items():
            if name != "__metadata__":
                count = 1
                for dim in info["shape"]:
                    count *= dim
                total += count
    return total if files else None


def needed_bytes(parameters: int, method: str, bf16: bool) -> int:
    """Bytes SFT may write for a model of ``parameters`` (see ``DISK_FACTOR``)."""
    return int(parameters * (2 if bf16 else 4) * DISK_FACTOR[method]) + MARGIN_BYTES


def check_disk(out_dir: str | Path, base: str, method: str, bf16: bool) -> None:
    """Raise ``RunError`` before training when the disk holding ``out_dir`` has less free space than training needs."""
    parameters = count_parameters(base)
    if parameters is None:
        return  # weights not local: nothing to estimate from
    need = needed_bytes(parameters, method, bf16)
    where = Path(out_dir)
    while not where.exists():
        where = where.parent
    free = shutil.disk_usage(where).free
    if free < need:
        raise RunError(
            f"not enough free disk for SFT in {out_dir}: {free / 1e9:.2f} GB free, about {need / 1e9:.2f} GB needed "
            f"({method} fine-tuning of {parameters / 1e6:,.0f}M parameters: checkpoints and the final "
            f"{'adapter' if method == 'lora' else 'model'}); free some space or set run.root to a larger disk"
        )


def resume_point(ckpt_dir: str | Path) -> str | None:
    """The newest checkpoint saved completely (its ``trainer_state.json`` parses), or None; incomplete checkpoint
    folders (a kill during the save) are removed so that nothing later picks them up."""
    found = [p for p in Path(ckpt_dir).glob("checkpoint-*") if p.is_dir() and re.fullmatch(r"checkpoint-\d+", p.name)]
    complete = []
    for path in sorted(found, key=lambda p: int(p.name.split("-")[1])):
        try:
            json.loads((path / "trainer_state.json").read_text())
            complete.append(path)
        except (OSError, ValueError):
            shutil.rmtree(path, ignore_errors=True)
    return str(complete[-1]) if complete else None
