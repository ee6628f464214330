"""Linear layers with weights pre-packed for oneDNN: bfloat16 inference on CPU at up to twice the matmul speed.

A plain ``nn.Linear`` in bfloat16 on CPU calls a generic GEMM that re-reads its weight in row-major order on every
call. Decoding multiplies skinny activations (one row per sequence, 1 to 16 rows) by every weight of the model at
every step, where that GEMM reaches a fraction of the machine's bf16 rate: measured here (bench/decode_ops.py), a
576 x 1536 weight at 16 rows runs at ~230 GFLOP/s through ``F.linear`` and ~470 through oneDNN with the weight
reordered once into its blocked layout. This is what ``torch.compile``'s CPU backend does with frozen weights
(``torch.ops.mkldnn._reorder_linear_weight`` + ``_linear_pointwise``), without minutes of compilation.

``pack_linears(model)`` swaps every ``nn.Linear`` of an inference model for a ``PackedLinear`` holding the packed
weight (and the bias); the original weight is dropped unless something else holds it (a tied input embedding).
It is applied only to bfloat16 models on CPU, only when the ops exist, accept the weight (not on a CPU without
AVX-512 or AVX-NE-CONVERT) and a probe product matches ``F.linear`` exactly; otherwise the model is left as it is. Training never sees a packed model (the SFT stage loads its own).
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


@functools.cache
def _module_class() -> type:
    """The ``PackedLinear`` module class, defined on first use so that importing this module does not import torch."""
    import torch

    class PackedLinear(torch.nn.Module):
        """``y = x W^T + b`` with ``W`` in oneDNN's packed layout (inference only: no gradient flows)."""

        def __init__(self, linear: torch.nn.Linear):
            super().__init__()
            self.in_features, self.out_features = linear.in_features, linear.out_features
            weight = linear.weight.detach()
            self.register_buffer("packed", torch.ops.mkldnn._reorder_linear_weight(weight, ROWS_HINT),
                                 persistent=False)
            bias = None if linear.bias is None else linear.bias.detach()
            self.register_buffer("bias", bias, persistent=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            flat = x.reshape(-1, self.in_features).contiguous()
            out = torch.ops.mkldnn._linear_pointwise(flat, self.packed, self.bias, "none", [], "")
            return out.reshape(*x.shape[:-1], self.out_features)

        def extra_repr(self) -> str:
            return f"in_features={self.in_features}, out_features={self.out_features}, packed=oneDNN"

    return PackedLinear


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
    """Replace the model's bf16 CPU ``nn.Linear`` layers by packed ones, in place; returns how many were packed
    (0 when the ops are missing, the model is not bf16 on CPU, or the probe disagrees with ``F.linear``)."""
    if not _ops_available():
        return 0
    targets = [(parent, name, child) for parent in model.modules() for name, child in parent.named_children()
               if _packable(child)]
    if not targets:
        return 0
    cls = _module_class()
    if not _probe(cls, targets[0][2]):
        return 0
    for parent, name, child in targets:
        setattr(parent, name, cls(child))
    return len(targets)
