"""Linear layers for inference on CPU: bf16 weights pre-packed for oneDNN, or multiplied in float32 where the CPU has no
bf16 arithmetic, and there float32 weights pre-packed for oneDNN too.

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

On the same EPYC, at the 2-16 rows of decoding, MKL's float32 ``F.linear`` reads a large weight (SmolLM2's 49k-row
head, the 1.5B's MLP) at 2-5 GB/s of the ~20 the memory gives, and oneDNN's packed float32 product at 7-13 (2-3x
faster; at 64 rows 46-81 GFLOP/s against 93-100; bench/linear_paths.py), and a row's product does not depend on the
rows beside it, where MKL's does. So float32 layers are packed there, and so are the float32 copies of bf16 layers
(``Float32Linear`` with ``packed``): the 1.5B decodes 2.5x faster. The products round differently from MKL's; bf16
answers are as near float32 either way, but the judge's probes read the 0.5B's bf16 hidden states, which move with
the rounding. The honesty probe, whose cut a crafted reply crossed on that move alone, is fit to hold still under it
(``scripts/train_intent_probe.fit``'s stability term); the verdict probe moves by 0.02-0.05 on average and is not
refit (BENCHMARKS.md, "Probes fit to hold still under rounding").

``pack_linears(model)`` swaps every ``nn.Linear`` of an inference model for a ``PackedLinear`` holding the packed
weight (and the bias), or where packing is refused and the CPU has no native bf16, for a ``Float32Linear`` (packed
where oneDNN packs float32, else through MKL); the original weight is dropped unless something else holds it (a tied
input embedding). It is applied to bfloat16 models on CPU, and to float32 ones on a CPU without native bf16 (where
bf16 is native, float32 is left to MKL: not measured there); a packed layer only when its probe product matches
``F.linear`` (bit for bit in bf16, to float32 rounding in float32); otherwise the model is left as it is. Training
never sees a swapped model (the SFT stage loads its own).
"""

from __future__ import annotations

import copy
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

    return (type(module) is torch.nn.Linear and module.weight.dtype in (torch.bfloat16, torch.float32)
            and module.weight.device.type == "cpu")


def _hold(module: Any, linear: Any, name: str, weight: Any, bias: Any) -> None:
    """Give a swapped-in layer ``linear``'s sizes, its weight as buffer ``name`` and ``bias`` as buffer ``bias``
    (left out of a state dict: a swapped model is for inference and never saved)."""
    module.in_features, module.out_features = linear.in_features, linear.out_features
    module.register_buffer(name, weight, persistent=False)
    module.register_buffer("bias", None if bias is None else bias.detach(), persistent=False)


def _pack(weight: Any) -> Any:
    """``weight`` reordered into oneDNN's blocked layout (RuntimeError where oneDNN has no path for its dtype)."""
    import torch

    return torch.ops.mkldnn._reorder_linear_weight(weight, ROWS_HINT)


def _packed_product(flat: Any, packed: Any, bias: Any) -> Any:
    """``flat @ W^T + bias`` for a 2-D ``flat`` and a weight packed by ``_pack``."""
    import torch

    return torch.ops.mkldnn._linear_pointwise(flat, packed, bias, "none", [], "")


@functools.cache
def _module_class() -> type:
    """The ``PackedLinear`` module class, defined on first use so that importing this module does not import torch."""
    import torch

    class PackedLinear(torch.nn.Module):
        """``y = x W^T + b`` with ``W`` in oneDNN's packed layout (inference only: no gradient flows)."""

        def __init__(self, linear: torch.nn.Linear):
            super().__init__()
            _hold(self, linear, "packed", _pack(linear.weight.detach()), linear.bias)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = _packed_product(x.reshape(-1, self.in_features).contiguous(), self.packed, self.bias)
            return out.reshape(*x.shape[:-1], self.out_features)

        def extra_repr(self) -> str:
            return f"in_features={self.in_features}, out_features={self.out_features}, packed=oneDNN"

    return PackedLinear


@functools.cache
def _float32_class() -> type:
    """The ``Float32Linear`` module class (see the module docstring), defined on first use."""
    import torch

    class Float32Linear(torch.nn.Module):
        """``y = x W^T + b`` computed in float32 on a layer's float32 weight (the exact copy of a bf16 one's), returned
        in the input's dtype; the weight packed for oneDNN when ``packed``."""

        def __init__(self, linear: torch.nn.Linear, packed: bool = False):
            super().__init__()
            weight, self.packed = linear.weight.detach().float(), packed
            _hold(self, linear, "weight32", _pack(weight) if packed else weight,
                  None if linear.bias is None else linear.bias.float())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            flat = x.reshape(-1, self.in_features).float()
            out = (_packed_product(flat, self.weight32, self.bias) if self.packed
                   else torch.nn.functional.linear(flat, self.weight32, self.bias))
            return out.to(x.dtype).reshape(*x.shape[:-1], self.out_features)

        def extra_repr(self) -> str:
            return (f"in_features={self.in_features}, out_features={self.out_features}, float32"
                    + (", packed=oneDNN" if self.packed else ""))

    return Float32Linear


def native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware as oneDNN sees it (AVX-512 or newer); False on AVX2-only CPUs."""
    import torch

    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(torch.backends.mkldnn.is_available() and check is not None and check())


def _probe(cls: Any, linear: Any, exact: bool = True) -> bool:
    """True when the packed layer ``cls(linear)``'s product equals ``F.linear``'s on a few random rows (1 and 16 of
    them): bit for bit when ``exact`` (bf16), else to float32 rounding (float32: summation order differs); False
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
            got, want = packed(x), torch.nn.functional.linear(x, linear.weight, linear.bias)
            if not (torch.equal(got, want) if exact else
                    torch.allclose(got, want, rtol=1e-4, atol=1e-4 * float(want.abs().max()))):
                return False
    return True


def pack_linears(model: Any) -> int:
    """Replace the CPU ``nn.Linear`` layers of the model's dtype, in place: bf16 ones by packed ones, or on a CPU
    without native bf16 where packing is refused, by float32 copies (packed where oneDNN packs float32); float32
    ones, on a CPU without native bf16 only, by packed float32 ones. Returns how many were replaced (0 when nothing
    applies, or packing is unavailable or its probe disagrees with ``F.linear``)."""
    import torch

    targets = [(parent, name, child) for parent in model.modules() for name, child in parent.named_children()
               if _packable(child)]
    if not targets:
        return 0
    first = targets[0][2]
    targets = [t for t in targets if t[2].weight.dtype == first.weight.dtype]  # the model's dtype; others left be
    if first.weight.dtype == torch.bfloat16 and _ops_available() and _probe(_module_class(), first):
        cls = _module_class()
    elif native_bf16():  # float32 stays with MKL there: packing it is measured to help on AVX2 only
        return 0
    else:  # float32 products, packed where oneDNN packs float32; bf16 layers by float32 copies, else through MKL
        cls = _float32_class()
        packed = functools.partial(cls, packed=True)
        if _ops_available() and _probe(packed, copy.deepcopy(first).float(), exact=False):
            cls = packed
        elif first.weight.dtype == torch.float32:
            return 0
    for parent, name, child in targets:
        setattr(parent, name, cls(child))
    return len(targets)
