"""The linear-layer paths of ``models.hf_linear`` side by side on this CPU: speed of the products and what they do to
a model's answers.

Three parts, each run in this one process (``--only`` picks):

* ``products``: float32 products of 1-512 rows by the weights decoding multiplies (SmolLM2's 576 x 1536 and 576 x
  49,152 head, the 1.5B's 1536 x 8960 MLP) through MKL's ``F.linear`` and oneDNN's packed product
  (``hf_linear._pack`` / ``_packed_product``): microseconds per call, GB/s of weight read, GFLOP/s; and whether a
  row's product is the same whatever rows surround it (bit for bit, 1-16 rows);
* ``fidelity``: SmolLM2-135M's float32 greedy answers to bench/generation.py's 32 prompts (64 tokens), then, teacher-
  forced along them, how often the argmax of each bf16 variant agrees with float32's and the mean absolute logit
  difference: plain bf16 (the generic path on a CPU without native bf16), ``Float32Linear`` through MKL, and
  ``Float32Linear`` packed for oneDNN;
* ``decode``: the 135M in float32 through ``HFModel.generate`` at batch 16 and 1 (48 tokens), MKL against packed
  (``pack_linears``), alternately for ``--rounds``; generated tokens/s and whether the texts are the same.

Writes bench/out/linear_paths.json. Run:  .venv/bin/python bench/linear_paths.py [--only products fidelity decode]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

HERE = Path(__file__).parent
SHAPES = [(576, 1536), (1536, 576), (576, 49152), (1536, 8960)]


def _per_call(fn, calls: int) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t0) / calls


def products(rows_list=(1, 2, 8, 16, 64, 512)) -> list[dict]:
    import torch

    from iteralign.models.hf_linear import _pack, _packed_product

    out = []
    for k, n in SHAPES:
        w = torch.randn(n, k)
        packed = _pack(w)
        for rows in rows_list:
            x = torch.randn(rows, k)
            calls = max(3, int(2e9 / (2 * rows * k * n + 4 * k * n * 50)))
            row = {"rows": rows, "weight": [k, n]}
            for name, fn in (("mkl", lambda: torch.nn.functional.linear(x, w)),
                             ("onednn_packed", lambda: _packed_product(x, packed, None))):
                s = _per_call(fn, calls)
                row[name] = {"us": round(s * 1e6, 1), "weight_gbs": round(4 * k * n / s / 1e9, 1),
                             "gflops": round(2 * rows * k * n / s / 1e9, 1)}
            out.append(row)
            print(json.dumps(row), flush=True)
        x = torch.randn(16, k)
        full = {"mkl": torch.nn.functional.linear(x, w), "onednn_packed": _packed_product(x, packed, None)}
        alone = {"mkl": lambda r: torch.nn.functional.linear(x[r:r + 1], w),
                 "onednn_packed": lambda r: _packed_product(x[r:r + 1], packed, None)}
        inv = {name: all(torch.equal(full[name][r:r + 1], alone[name](r)) for r in range(16)) for name in full}
        out.append({"weight": [k, n], "row_invariant": inv})
        print(json.dumps(out[-1]), flush=True)
    return out


def _smollm2():
    from iteralign.models.offline import ensure_converted

    return str(ensure_converted("smollm2-135m-instruct"))


def fidelity() -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from generation import PROMPTS
    from iteralign.models import hf_linear

    path = _smollm2()
    tok = AutoTokenizer.from_pretrained(path)
    exact = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, use_safetensors=True).eval()
    seqs = []
    with torch.inference_mode():
        for p in PROMPTS:
            ids = tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True,
                                          return_tensors="pt", return_dict=True)["input_ids"]
            seqs.append((ids.shape[1], exact.generate(ids, max_new_tokens=64, do_sample=False)))
        ref = [exact(input_ids=s).logits[0, n - 1:-1] for n, s in seqs]
    f32 = hf_linear._float32_class()
    swaps = {"plain_bf16": lambda m: None,
             "float32_copies_mkl": lambda m: _swap(m, lambda lin: f32(lin, packed=False)),
             "float32_copies_onednn_packed": lambda m: _swap(m, lambda lin: f32(lin, packed=True))}
    out = {}
    for name, swap in swaps.items():
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16, use_safetensors=True).eval()
        swap(model)
        agree = total = 0
        diffs = []
        with torch.inference_mode():
            for (n, s), r in zip(seqs, ref):
                logits = model(input_ids=s).logits[0, n - 1:-1].float()
                agree += int((logits.argmax(-1) == r.argmax(-1)).sum())
                total += len(r)
                diffs.append(float((logits - r).abs().mean()))
        out[name] = {"argmax_agreement": round(agree / total, 4), "positions": total,
                     "mean_abs_logit_diff": round(sum(diffs) / len(diffs), 4)}
        print(name, json.dumps(out[name]), flush=True)
    return out


def _swap(model, make) -> None:
    import torch

    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is torch.nn.Linear:
                setattr(parent, name, make(child))


def decode(rounds: int) -> dict:
    from generation import PROMPTS
    from iteralign.models import hf
    from iteralign.models.base import ModelConfig
    from iteralign.types import GenerationParams, user

    path, packer, out = _smollm2(), hf.pack_linears, {}
    for _ in range(rounds):
        for name in ("mkl", "onednn_packed"):
            hf.pack_linears = packer if name == "onednn_packed" else (lambda model: 0)
            model = hf.HFModel.load(path, ModelConfig(spec=f"hf:{path}", dtype="float32", batch_size=16))
            for batch, prompts in ((16, PROMPTS), (1, PROMPTS[:4])):
                model.cfg = model.cfg.model_copy(update={"batch_size": batch})
                t0 = time.perf_counter()
                answers = model.generate([user(p) for p in prompts], GenerationParams(max_new_tokens=48))
                seconds = time.perf_counter() - t0
                tokens = sum(len(model.tokenizer(a.text)["input_ids"]) for a in answers)
                run = out.setdefault(f"batch{batch}", {}).setdefault(name, {"tok_s": []})
                run["tok_s"].append(round(tokens / seconds, 1))
                run["texts"] = [a.text for a in answers]
    hf.pack_linears = packer
    for batch, runs in out.items():
        runs["same_texts"] = sum(a == b for a, b in zip(runs["mkl"]["texts"], runs["onednn_packed"]["texts"]))
        print(batch, {k: v["tok_s"] for k, v in runs.items() if isinstance(v, dict)}, "same texts",
              runs["same_texts"], flush=True)
    return out


def main() -> None:
    import sys

    import torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="+", choices=["products", "fidelity", "decode"],
                    default=["products", "fidelity", "decode"])
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    sys.path.insert(0, str(HERE))
    from iteralign.models.hf_linear import native_bf16

    result = {"torch_threads": torch.get_num_threads(), "native_bf16": native_bf16()}
    for part in args.only:
        result[part] = products() if part == "products" else fidelity() if part == "fidelity" else decode(args.rounds)
    (HERE / "out").mkdir(exist_ok=True)
    (HERE / "out" / "linear_paths.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"-> {HERE / 'out' / 'linear_paths.json'}")


if __name__ == "__main__":
    main()
