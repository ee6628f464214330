"""The bf16 linear products of decoding, one at a time: ``F.linear`` against oneDNN's packed weights, and separate
sibling products (q/k/v, gate/up) against one product over their stacked weights.

``models/hf_linear.py`` packs every bf16 linear for oneDNN on the strength of the first comparison. The second is
the measurement behind *not* fusing siblings (BENCHMARKS.md, "Fused projections, measured and not kept"): faster
alone at some shapes, no faster in whole decoding steps. Shapes: SmolLM2-135M (576 wide), Qwen2.5-Coder-0.5B (896)
and -1.5B (1536); rows 1, 16 (decoding batches) and 256 (a prefill). Each figure is the median of ``--repeats``
timings of ``--calls`` products, both variants timed alternately; results must be equal bit for bit. Run:

    OMP_NUM_THREADS=2 .venv/bin/python bench/decode_ops.py [--calls 200] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

#: (in features, sibling out features) of the q/k/v and gate/up groups of the three offline models.
SHAPES = {
    "135m qkv": (576, [576, 192, 192]), "135m gate/up": (576, [1536, 1536]),
    "0.5b qkv": (896, [896, 128, 128]), "0.5b gate/up": (896, [4864, 4864]),
    "1.5b qkv": (1536, [1536, 256, 256]), "1.5b gate/up": (1536, [8960, 8960]),
}


def _packed(weight: torch.Tensor) -> torch.Tensor:
    return torch.ops.mkldnn._reorder_linear_weight(weight, 16)


def _linear(x: torch.Tensor, packed: torch.Tensor) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, packed, None, "none", [], "")


def _time(fn, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e6


def compare(a, b, calls: int, repeats: int) -> tuple[float, float]:
    """Median microseconds per call of ``a`` and ``b``, timed alternately after a warm-up."""
    for fn in (a, b):
        _time(fn, 10)
    ta, tb = [], []
    for _ in range(repeats):
        ta.append(_time(a, calls))
        tb.append(_time(b, calls))
    return statistics.median(ta), statistics.median(tb)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out/decode_ops.json")
    args = ap.parse_args()
    torch.manual_seed(0)
    rows_out = []
    with torch.inference_mode():
        for name, (k, sizes) in SHAPES.items():
            weights = [torch.randn(n, k, dtype=torch.bfloat16) / k**0.5 for n in sizes]
            packed, stacked = [_packed(w) for w in weights], _packed(torch.cat(weights))
            for rows in (1, 16, 256):
                x = torch.randn(rows, k, dtype=torch.bfloat16)
                plain_us, packed_us = compare(lambda: [torch.nn.functional.linear(x, w) for w in weights],
                                              lambda: [_linear(x, p) for p in packed], args.calls, args.repeats)
                sep_us, fused_us = compare(lambda: [_linear(x, p) for p in packed],
                                           lambda: _linear(x, stacked).split(sizes, -1), args.calls, args.repeats)
                equal = torch.equal(torch.cat([_linear(x, p) for p in packed], -1), _linear(x, stacked))
                row = {"shape": name, "rows": rows, "F.linear_us": round(plain_us, 1), "packed_us": round(packed_us, 1),
                       "packed_speedup": round(plain_us / packed_us, 2), "fused_us": round(fused_us, 1),
                       "fused_speedup": round(sep_us / fused_us, 2), "fused_equal": equal}
                rows_out.append(row)
                print(f"{name:13} rows {rows:3}: F.linear {plain_us:8.1f} us, packed {packed_us:8.1f} "
                      f"({row['packed_speedup']:.2f}x); separate {sep_us:8.1f}, fused {fused_us:8.1f} "
                      f"({row['fused_speedup']:.2f}x), equal {equal}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"threads": torch.get_num_threads(), "rows": rows_out}, indent=1))


if __name__ == "__main__":
    main()
