"""Wall time of an offline model's first conversion (GGUF -> safetensors, ``models.offline.ensure_converted``).

Each conversion runs in a fresh subprocess with an empty ``ITERALIGN_CACHE`` (a temporary folder, removed after), so
nothing is reused; with ``--base`` the same conversion runs on another source tree too (its ``src`` first on the
path), alternately, for a before/after ratio in one run. Run:
    .venv/bin/python bench/conversion.py smollm2-135m-instruct qwen2.5-coder-0.5b-instruct [--base ../wt-base]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TIMED = ("import sys, time; from iteralign.models.offline import ensure_converted; t = time.perf_counter(); "
         "ensure_converted(sys.argv[1]); print(time.perf_counter() - t)")


def seconds(tree: Path, name: str) -> float:
    """One conversion of ``name`` with ``tree``'s source, in an empty cache."""
    with tempfile.TemporaryDirectory() as cache:
        env = os.environ | {"ITERALIGN_CACHE": cache, "PYTHONPATH": str(tree / "src"), "HF_HUB_OFFLINE": "1"}
        out = subprocess.run([sys.executable, "-c", TIMED, name], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("names", nargs="+", help="offline model names (`iteralign models`)")
    ap.add_argument("--base", type=Path, help="another source tree, converted the same way for a ratio")
    args = ap.parse_args()
    trees = {"new": HERE.parent} | ({"base": args.base.resolve()} if args.base else {})
    for name in args.names:
        got = {label: seconds(tree, name) for label, tree in trees.items()}
        ratio = f"  base/new {got['base'] / got['new']:.2f}x" if "base" in got else ""
        print(f"{name:32} " + "  ".join(f"{k} {v:6.1f} s" for k, v in got.items()) + ratio, flush=True)


if __name__ == "__main__":
    main()
