"""``iteralign export``: a run's accepted model (or a chosen iteration's) as a folder another tool loads.

    --format adapter   the peft LoRA adapter (adapter_config.json + safetensors) and the tokenizer with its chat
                       template: loads with peft's ``AutoPeftModelForCausalLM`` on top of the base weights
    --format merged    base + adapter merged (peft ``merge_and_unload``): a plain transformers folder, safetensors,
                       tokenizer, chat template and generation config; no peft needed to load it
    --format gguf      the merged model as one GGUF file (``export.gguf_file``), for llama.cpp and Ollama

Every folder gets a model card (``README.md``, ``export.card``). The merge happens in float32 (a LoRA delta added
to bf16 weights in bf16 loses most of its low bits) and the result is saved in the base's own dtype unless
``dtype`` says otherwise. ``push_to_hub`` uploads the folder (``export.hub``).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any, Literal

from iteralign.export.card import model_card
from iteralign.export.source import ExportError, RunModel, find_model
from iteralign.run import atomic_write

log = logging.getLogger(__name__)
Format = Literal["adapter", "merged", "gguf"]
FORMATS = ("adapter", "merged", "gguf")


def export_model(run_dir: str | Path, out: str | Path, fmt: Format = "merged", iteration: int | None = None, *,
                 quant: str = "f16", dtype: str = "auto", base_id: str | None = None, command: str = "",
                 push_to_hub: str | None = None, private: bool = True) -> Path:
    """Export ``run_dir``'s model to the folder ``out``; returns the folder (the GGUF file for ``gguf``)."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; one of {', '.join(FORMATS)}")
    if fmt == "gguf":
        from iteralign.export.gguf_file import check_quant

        check_quant(quant)  # before minutes of merging
    rm = find_model(run_dir, iteration)
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ExportError(f"{out} exists and is not empty; name a new folder")
    out.mkdir(parents=True, exist_ok=True)
    command = command or f"iteralign export {run_dir} --out {out} --format {fmt}"
    where, result = str(push_to_hub or out), out
    if fmt == "adapter":
        _write_adapter(rm, out, base_id)
    else:
        model, tokenizer = merged_model(rm, "float32" if fmt == "gguf" else dtype)
        if fmt == "merged":
            model.save_pretrained(str(out))
            tokenizer.save_pretrained(str(out))
        else:
            from iteralign.export.gguf_file import write_gguf

            result = write_gguf(model, tokenizer, out / f"{rm.layout.root.name}-{quant}.gguf", quant,
                                name=rm.layout.root.name)
    atomic_write(out / "README.md", model_card(rm, fmt, command, where, result.name if fmt == "gguf" else "",
                                               base_id))
    log.info("exported iteration %d of %s as %s to %s", rm.iteration, rm.layout.root, fmt, result)
    if push_to_hub:
        from iteralign.export.hub import push_folder

        push_folder(out, push_to_hub, private=private)
    return result


def merged_model(rm: RunModel, dtype: str = "auto") -> tuple[Any, Any]:
    """The run's model as one transformers model (the adapter merged into the weights, in float32, then cast to
    ``dtype``; ``auto``: the base's dtype) and its tokenizer with the chat template generation used."""
    import torch
    from transformers import AutoModelForCausalLM

    source = rm.base_source()
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32, use_safetensors=True,
                                                 trust_remote_code=rm.model.trust_remote_code)
    saved_dtype = getattr(model.config, "dtype", None) or torch.float32
    if rm.adapter:
        from peft import PeftModel

        if not (rm.adapter / "adapter_config.json").is_file():
            raise ExportError(f"{rm.adapter}: not a peft adapter folder (no adapter_config.json)")
        model = PeftModel.from_pretrained(model, str(rm.adapter)).merge_and_unload()
    target = saved_dtype if dtype == "auto" else getattr(torch, dtype)
    model = model.to(target)
    model.config.dtype = target
    return model, _tokenizer(rm, source)


def _tokenizer(rm: RunModel, source: str) -> Any:
    """The base tokenizer, with the configured chat template file if the run used one (what generation saw)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=rm.model.trust_remote_code)
    if rm.model.chat_template:
        tokenizer.chat_template = Path(rm.model.chat_template).read_text(encoding="utf-8")
    return tokenizer


def _write_adapter(rm: RunModel, out: Path, base_id: str | None) -> None:
    """The adapter's own files (weights and config; no optimizer state), its base recorded as ``base_id`` when
    given (a hub id others can resolve, instead of this machine's folder), and the tokenizer."""
    import json

    if rm.adapter is None:
        raise ExportError(f"iteration {rm.iteration} was trained with full fine-tuning: there is no adapter; "
                          "export --format merged")
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        if not (rm.adapter / name).is_file():
            raise ExportError(f"{rm.adapter}: incomplete adapter, no {name}")
        shutil.copy2(rm.adapter / name, out / name)
    config = json.loads((out / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = base_id or rm.base_source()
    atomic_write(out / "adapter_config.json", json.dumps(config, indent=2, sort_keys=True) + "\n")
    _tokenizer(rm, rm.base_source()).save_pretrained(str(out))
