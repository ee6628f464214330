"""Linear layers for bfloat16 inference on CPU: weights pre-packed for oneDNN, or multiplied in float32 where the CPU
has no bf16 arithmetic.

A plain ``nn.Linear`` in bfloat16 on CPU calls a generic GEMM that re-reads its weight in row-major order on every
call. Decoding multiplies skinny activations (one row per sequence, 1 to 16 rows) by every weight of the model at
every step, where that GEMM reaches a fraction of the machine's bf16 rate: measured here (bench/decode_ops.py), a
576 x 1536 weight at 16 rows runs at ~230 GFLOP/s through ``F.linear`` and ~470 through oneDNN with the weight
reordered once into its blocked layout. This is what ``torch.compile``'s CPU backend does with frozen weights
(``torch.ops.mkldnn._reorder_linear_weight`` + ``_linear_pointwise``), without minutes of compilation.

A CPU without AVX-512 or AVX-NE-CONVERT (AVX2 only: AMD Zen 1-3, most Intel client chips before 2021) has no bf16
path in oneDNN: the packing op raises, and ``F.linear`` in bf16 takes a generic path 4-8x slower than float32
(measured on a Zen 3 EPYC: 15 GFLOP/s against 67-127). There each layer keeps a float32 copy of its weight (the
bf16 values, exactly) and multiplies in float32, rounding the product back to bf16 (``Float32Linear``): what a
native bf16 GEMM computes (bf16 inputs, float32 accumulation, bf16 output) up to the order of summation, at
float32's speed, for twice the weight memory.

``pack_linears(model)`` swaps every ``nn.Linear`` of an inference model for a ``PackedLinear`` holding the packed
weight (and the bias), or where packing is refused and the CPU has no native bf16, for a ``Float32Linear``; the
original weight is dropped unless something else holds it (a tied input embedding). It is applied only to bfloat16
models on CPU; a packed layer only when its probe product matches ``F.linear`` exactly; otherwise the model is left
as it is. Training never sees a swapped model (the SFT stage loads its own).
"""

from __future__ import annotations

import functools
from typing import Any

#: Rows the packed layout is tuned for (decoding batch); any row count is computed correctly.
ROWS_HINT = 16


def _ops_available() -> bool:
    import torch

    mkldnn = getattr(torch.ops, "mkldnn", None)
    return bool(torch.backends.mkldnn.is_available() and mkldnn is not None
                and hasattr(mkldnn, "_reorder_linear_weight") and hasattr(mkldnn, "_linear_pointwise"))


def _packable(module: Any) -> bool:
    import torch

    return (type(module) is torch.nn.Linear and module.weight.dtype == torch.bfloat16
            and module.weight.device.type == "cpu")


def _hold(module: Any, linear: Any, name: str, weight: Any, bias: Any) -> None:
    """Give a swapped-in layer ``linear``'s sizes, its weight as buffer ``name`` and ``bias`` as buffer ``bias``
    (left out of a state dict: a swapped model is for inference and never saved)."""
    module.in_features, module.out_features = linear.in_features, linear.out_features
    module.register_buffer(name, weight, persistent=False)
    module.register_buffer("bias", None if bias is None else bias.detach(), persistent=False)


@functools.cache
def _module_class() -> type:
    """The ``PackedLinear`` module class, defined on first use so that importing this module does not import torch."""
    import torch

    class PackedLinear(torch.nn.Module):
        """``y = x W^T + b`` with ``W`` in oneDNN's packed layout (inference only: no gradient flows)."""

        def __init__(self, linear: torch.nn.Linear):
            super().__init__()
            _hold(self, linear, "packed", torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach(), ROWS_HINT),
                  linear.bias)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            flat = x.reshape(-1, self.in_features).contiguous()
            out = torch.ops.mkldnn._linear_pointwise(flat, self.packed, self.bias, "none", [], "")
            return out.reshape(*x.shape[:-1], self.out_features)

        def extra_repr(self) -> str:
            return f"in_features={self.in_features}, out_features={self.out_features}, packed=oneDNN"

    return PackedLinear


@functools.cache
def _float32_class() -> type:
    """The ``Float32Linear`` module class (see the module docstring), defined on first use."""
    import torch

    class Float32Linear(torch.nn.Module):
        """``y = x W^T + b`` computed in float32 on the exact float32 copy of a bf16 layer, returned in bf16."""

        def __init__(self, linear: torch.nn.Linear):
            super().__init__()
            _hold(self, linear, "weight32", linear.weight.detach().float(),
                  None if linear.bias is None else linear.bias.float())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.nn.functional.linear(x.float(), self.weight32, self.bias).to(x.dtype)

        def extra_repr(self) -> str:
            return f"in_features={self.in_features}, out_features={self.out_features}, float32"

    return Float32Linear


def native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware as oneDNN sees it (AVX-512 or newer); False on AVX2-only CPUs."""
    import torch

    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(torch.backends.mkldnn.is_available() and check is not None and check())


def _probe(cls: type, linear: Any) -> bool:
    """True when the packed product equals ``F.linear`` bit for bit on a few random rows (1 and 16 of them); False
    when oneDNN refuses to pack at all (its bf16 path needs AVX-512 or AVX-NE-CONVERT: on an AVX2-only CPU the ops
    exist and raise)."""
    import torch

    try:
        packed = cls(linear)
    except RuntimeError:
        return False
    with torch.inference_mode():
        for rows in (1, ROWS_HINT):
            x = torch.randn(rows, linear.in_features, dtype=linear.weight.dtype)
            if not torch.equal(packed(x), torch.nn.functional.linear(x, linear.weight, linear.bias)):
                return False
    return True


def pack_linears(model: Any) -> int:
    """Replace the model's bf16 CPU ``nn.Linear`` layers by packed ones, in place, or by float32 ones on a CPU without
    native bf16 where packing is refused; returns how many were replaced (0 when the model is not bf16 on CPU, or
    the CPU has native bf16 and packing is unavailable or its probe disagrees with ``F.linear``)."""
    targets = [(parent, name, child) for parent in model.modules() for name, child in parent.named_children()
               if _packable(child)]
    if not targets:
        return 0
    cls = _module_class() if _ops_available() else None
    if cls is None or not _probe(cls, targets[0][2]):
        if native_bf16():
            return 0
        cls = _float32_class()
    for parent, name, child in targets:
        setattr(parent, name, cls(child))
    return len(targets)
