"""Where a local model runs and in which dtype: the ``device`` and ``dtype`` of ``ModelConfig`` resolved for torch.

Shared by the transformers and vLLM backends and by model identities (a bf16 and a float32 copy answer differently,
so the resolved dtype is part of what identifies a model).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import torch


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is visible, else ``cpu``; anything else is passed to torch as is."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def resolve_dtype(dtype: str, device: str) -> "torch.dtype":
    """``auto`` -> bfloat16 (on CPU it generated 2.5x faster than float32 here, see BENCHMARKS.md; on GPUs without
    bf16 support, float16); an explicit dtype is respected."""
    import torch

    if dtype != "auto":
        return getattr(torch, dtype)
    if device.startswith("cuda") and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16
