"""What the SFT stage trains: the base model (optionally 4-bit for QLoRA), the previous adapter, the LoRA config.

Kept apart from ``sft.py`` so that the training recipe reads top to bottom while the loading choices (dtype,
bitsandbytes, warm start) live in one place.

QLoRA (``sft.quantization: 4bit``) follows the QLoRA paper and the PEFT/bitsandbytes docs: NF4 weights with double
quantization, bfloat16 compute, ``prepare_model_for_kbit_training`` (frozen base, norms in float32, input grads for
checkpointing). ``bnb_4bit_quant_storage`` is set to the compute dtype so that DeepSpeed ZeRO-3 and FSDP can shard
the packed weights like ordinary bf16 tensors; each process places its copy on its own GPU unless ZeRO-3 shards it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # pragma: no cover
    from iteralign.stages.sft_job import SFTJob

NO_GPU_FOR_QLORA = (
    "sft.quantization: 4bit (QLoRA) needs an NVIDIA GPU: bitsandbytes' 4-bit kernels do not run on CPU. "
    "Set sft.quantization: none here, or run on a GPU machine."
)
NO_BITSANDBYTES = "sft.quantization: 4bit needs bitsandbytes: pip install 'iteralign[qlora]' (NVIDIA GPU only)."


def quantization_config(job: "SFTJob") -> Any:
    """``BitsAndBytesConfig`` for QLoRA, or None; clear errors on a CPU machine or without bitsandbytes."""
    if job.cfg.quantization == "none":
        return None
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError(NO_GPU_FOR_QLORA)
    try:
        import bitsandbytes  # noqa: F401 - imported to fail early with our message, used by transformers
    except ImportError as exc:
        raise ImportError(NO_BITSANDBYTES) from exc
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch.bfloat16, bnb_4bit_quant_storage=torch.bfloat16)


def training_bf16(asked: bool) -> bool:
    """Whether to train in bf16 (``sft.bf16``): as asked, except on a CPU without native bf16 (AVX2 only, no CUDA),
    where bf16 matmuls take a generic path several times slower than float32 (``models.hf_linear``; LoRA SFT of the
    135M: 136 non-padding tokens/s in float32, bf16 not done in 500 s on a Zen 3 EPYC): there it trains in float32,
    which is also the more exact of the two, and says so in a warning each time it is asked (SFT, then DPO)."""
    import torch

    from iteralign.models.hf_linear import native_bf16

    if not asked or torch.cuda.is_available() or native_bf16():
        return asked
    log.warning("sft.bf16: this CPU has no native bf16 (AVX-512 or newer): training in float32 instead")
    return False


def load_model(job: "SFTJob", bf16: bool) -> Any:
    """The model to train: base weights (bf16 or float32 as ``bf16`` says; 4-bit for QLoRA), plus the previous
    adapter if any.

    Called after the training arguments exist, so that under ``accelerate launch`` with ZeRO-3 transformers already
    knows to shard the weights as it loads them.
    """
    import torch
    from transformers import AutoModelForCausalLM

    quant = quantization_config(job)
    kwargs: dict[str, Any] = {"dtype": torch.bfloat16 if bf16 or quant else torch.float32,
                              "trust_remote_code": job.trust_remote_code}
    if quant is not None:
        from transformers.integrations import is_deepspeed_zero3_enabled

        kwargs["quantization_config"] = quant
        if not is_deepspeed_zero3_enabled():
            kwargs["device_map"] = {"": torch.cuda.current_device()}
    model = AutoModelForCausalLM.from_pretrained(job.base, use_safetensors=True, **kwargs)
    if quant is not None:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=job.cfg.gradient_checkpointing)
    if job.init_adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, job.init_adapter, is_trainable=True)
    return model


def checkpointing_args(config_cls: type, enabled: bool) -> dict[str, bool]:
    """Trainer arguments that switch gradient checkpointing on or off under every transformers 5 release: later ones
    name it ``activation_checkpointing`` (keeping ``gradient_checkpointing`` as an alias), earlier ones only the
    latter, and an unknown keyword is an error."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(config_cls)}
    return {name: enabled for name in ("gradient_checkpointing", "activation_checkpointing") if name in names}


def peft_config(job: "SFTJob") -> Any:
    """A fresh LoRA config, or None for full fine-tuning or when the previous adapter is trained further."""
    if job.cfg.method != "lora" or job.init_adapter:
        return None
    from peft import LoraConfig

    return LoraConfig(r=job.cfg.lora_r, lora_alpha=job.cfg.lora_alpha, lora_dropout=job.cfg.lora_dropout,
                      target_modules=job.cfg.lora_target_modules, task_type="CAUSAL_LM")


def adapter_inputs_in_compute_dtype(model: Any, bf16: bool) -> int:
    """Under bf16 autocast, let LoRA layers take their inputs as they come (bf16) instead of copying each to the
    float32 adapter weights' dtype; returns the number of layers changed.

    PEFT keeps adapter weights in float32 and casts every LoRA layer's input to it, then promotes the layer's output
    to float32 and copies it back to bf16: three activation-sized copies per adapted linear per pass, 17% of a bf16
    LoRA step on CPU (BENCHMARKS.md, "LoRA steps without dropout or casts"). Autocast computes the adapter's
    matmuls in bf16 anyway (from float32 master weights, gradients in float32), so the copies buy nothing. Off
    without ``bf16`` (float32 training has nothing to cast).
    """
    if not bf16:
        return 0
    changed = 0
    for module in model.modules():
        if hasattr(module, "lora_A") and hasattr(module, "_cast_input_dtype"):
            module.cast_input_dtype_enabled = False  # read by PEFT's BaseTunerLayer._cast_input_dtype
            changed += 1
    return changed
