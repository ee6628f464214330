"""Content fingerprints of model weights and LoRA adapters, for the call cache's model identity.

The cache must tell a tuned model from its base even when both live under the same path (a rerun that overwrites
``iter-000/sft``). Hashing whole base checkpoints would cost seconds per load (6 GB for Qwen2.5-1.5B in float32),
so we choose, per kind of weights:

* a directory converted by ``models.offline``: the pinned sha256 of the verified source file, recorded beside it
  in ``SOURCE_RECORD`` (exact and free);
* any other directory of ``*.safetensors``: sha256 over each file's name, size, JSON header (names, dtypes, shapes)
  and 16 evenly spaced 4 KiB slices of its tensor data. A fine-tune changes every tensor, so the slices catch it;
  reading ~64 KiB per file keeps it in milliseconds;
* a hub id: the same, on the snapshot transformers downloaded (the snapshot folder is named by commit);
* a LoRA adapter (megabytes): the full sha256 of its weights and its ``adapter_config.json``.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

#: Written by ``models.offline`` beside each converted model: {"name", "sha256", "hub_id", ...}.
SOURCE_RECORD = "iteralign-source.json"

_SLICES, _SLICE_BYTES = 16, 4096


def _sampled_file_hash(path: Path, h: "hashlib._Hash") -> None:
    size = path.stat().st_size
    h.update(f"{path.name}:{size}".encode())
    with path.open("rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        h.update(f.read(header_len))
        data_start = 8 + header_len
        span = max(size - data_start - _SLICE_BYTES, 0)
        for k in range(_SLICES):
            f.seek(data_start + span * k // max(_SLICES - 1, 1))
            h.update(f.read(_SLICE_BYTES))


def directory_fingerprint(directory: Path) -> str:
    """The fingerprint of a local model directory (see the module docstring for the rule)."""
    record = directory / SOURCE_RECORD
    if record.is_file():
        return "sha256:" + json.loads(record.read_text())["sha256"]
    files = sorted(directory.glob("*.safetensors"))
    if not files:  # e.g. a legacy pytorch_model.bin checkpoint: hash it fully (rare, and usually small)
        files = sorted(directory.glob("*.bin"))
        h = hashlib.sha256()
        for path in files:
            h.update(path.name.encode())
            h.update(path.read_bytes())
        return "sha256:" + h.hexdigest() if files else "unknown"
    h = hashlib.sha256()
    for path in files:
        _sampled_file_hash(path, h)
    return "sampled:" + h.hexdigest()


def weights_fingerprint(path_or_hub_id: str) -> str:
    """Fingerprint of base weights given what ``from_pretrained`` was called with (local dir or hub id)."""
    local = Path(path_or_hub_id)
    if local.is_dir():
        return directory_fingerprint(local)
    try:
        from transformers.utils import cached_file

        config = cached_file(path_or_hub_id, "config.json")
    except Exception:  # noqa: BLE001 - identity must not fail a load; the hub id still names the model
        config = None
    if config is None:
        return f"hub:{path_or_hub_id}"
    return directory_fingerprint(Path(config).parent)


def adapter_fingerprint(adapter_dir: str) -> str:
    """Full sha256 of a PEFT adapter directory's config and weight files."""
    directory = Path(adapter_dir)
    files = [directory / "adapter_config.json", *sorted(directory.glob("adapter_model.*"))]
    missing = [str(p) for p in files[:1] if not p.is_file()]
    if missing or len(files) < 2:
        raise FileNotFoundError(
            f"adapter: {directory} is not a PEFT adapter directory (needs adapter_config.json and adapter_model.*)"
        )
    h = hashlib.sha256()
    for path in files:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return "sha256:" + h.hexdigest()


#: Tokenizer files that hold a chat template, read for the identity of a local model folder.
TEMPLATE_FILES = ("tokenizer_config.json", "chat_template.jinja", "chat_template.json")


def template_fingerprint(model_dir: str | None, override: str | None) -> str:
    """Which chat template a model is prompted with: the configured override file, else the template files of a
    local model folder; ``from-weights`` where the weights fingerprint already fixes it (offline models, hub ids)."""
    h = hashlib.sha256()
    if override:
        path = Path(override)
        if not path.is_file():
            raise FileNotFoundError(f"chat_template: no such file {path}")
        h.update(path.read_bytes())
    elif model_dir and Path(model_dir).is_dir():
        for name in TEMPLATE_FILES:
            path = Path(model_dir) / name
            if path.is_file():
                h.update(name.encode() + path.read_bytes())
    else:
        return "from-weights"
    return h.hexdigest()[:16]


def local_identity(backend: str, name: str | None, weights: str, cfg, template_dir: str | None) -> dict:
    """The identity of a transformers-style model, computed from files only (no weights loaded): the backend, a hub
    name (None for a local folder, whose path may move), the weights and adapter fingerprints, the chat template,
    and the resolved dtype and device. ``cfg`` is the ``ModelConfig``."""
    from iteralign.models.devices import resolve_device, resolve_dtype

    device = resolve_device(cfg.device) if backend == "hf" else "cuda"
    return {"backend": backend, "name": name, "weights": weights,
            "adapter": adapter_fingerprint(cfg.adapter) if cfg.adapter else None,
            "chat_template": template_fingerprint(template_dir, cfg.chat_template),
            "dtype": str(resolve_dtype(cfg.dtype, device)).removeprefix("torch."), "device": device.split(":")[0]}
