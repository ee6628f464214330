"""Before/after in one run: the same workload on two source trees, alternately, with the machine's limits between.

A shared, noisy machine makes absolute figures from different runs incomparable, so this script runs each workload
on the *base* tree (e.g. a worktree of the previous main: ``git worktree add --detach ../base <commit>``) and on
this tree, one after the other, for ``--rounds`` rounds, each in a fresh subprocess whose ``PYTHONPATH`` puts that
tree's ``src`` first (the same venv and libraries). Before each round the roofline limits are measured again
(``roofline.measure``, same threads), so every figure gets the ceiling of its own moment. Workloads:

* ``decode``: ``HFModel.generate`` on bench/generation.py's 32 prompts, SmolLM2-135M, bf16, batch 16, greedy, 64
  new tokens -> generated tokens/s; ceiling ``min(copy bandwidth / bf16 weight bytes x 16, bf16 flops / 2P)``;
* ``sft``: the SFT stage (``stages.sft.train``) as bench/sft.py runs it: LoRA, bf16, batch 4, 16 examples of
  ~25-200 answer tokens, one epoch -> non-padding tokens/s inside optimizer steps; ceiling ``bf16 flops / 4P``;
* ``dpo``: the DPO stage (``stages.dpo.train_dpo``): LoRA, bf16, batch 8, one epoch over 16 pairs of the same
  answers (chosen and rejected of different lengths) -> non-padding tokens (prompt + answer, both sides) per second
  inside optimizer steps; ceiling ``bf16 flops / 4P`` (the reference's pass is precomputed, outside the steps);
* ``revise``: the same as ``decode`` with the default run's 1.5B reviser/oracle (Qwen2.5-Coder-1.5B, bf16), 8 of
  the prompts at batch 8, 48 new tokens;
* ``decode1`` / ``revise1``: the same two at batch 1, one request at a time (``iteralign serve``, streaming, a
  batch's last row), 8 and 4 prompts; ``long1``: the 1.5B answering one ~1,500-token prompt alone (a proposal
  batch's last row), tokens/s of the 48 decoding steps after the prompt;
* ``judge``: the recommended local judge (``configs/judges/verdict-0.5b.yaml``) on judge_blind's first 48 items in
  judge-eval's batches of 8 -> items/s (no ceiling: passes of several depths and lengths per item), with the labels;
* ``score``: ``HFModel.loglikelihood`` on the first 100 TruthfulQA questions (MC1 + MC2 requests), bf16, batch 16
  -> token positions run per second (input-embedding hook, as bench/compare_lm_eval.py counts them).

"bf16" in a ceiling is the bf16 path the tool takes on this CPU (``roofline.bf16_path``): on a CPU without native
bf16 (AVX2 only) that is the float32 matmul and 4-byte weights, and the bound says so.

``--profile`` adds the top operators (``torch.profiler``, self CPU time) of one extra run of each workload.
Writes bench/out/ab.json: per round and tree, the figure, its ceiling and fraction, CPU seconds, load average;
and the new/base ratio of each round. Run:
    .venv/bin/python bench/ab.py --base ../wt-perf-base [--rounds 2] [--threads 1] [--only decode sft] [--profile]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
PARAMS = 134_515_008  # SmolLM2-135M (bench/roofline.py)


def _profiled(fn, profile: bool) -> tuple[object, list | None]:
    """``fn()``, and with ``profile`` the top operators of a second, profiled call (``_top_ops``)."""
    out = fn()
    return out, (_top_ops(fn) if profile else None)


def _top_ops(fn) -> list:
    """The top 12 operators by self CPU time of one profiled call of ``fn``."""
    from torch.profiler import ProfilerActivity, profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1
    return [{"op": e.key, "self_ms": round(e.self_cpu_time_total / 1e3, 1), "calls": e.count,
             "share": round(e.self_cpu_time_total / total, 3)} for e in events[:12]]


def work_decode(profile: bool, name: str = "smollm2-135m-instruct", batch: int = 16, prompts: int = 32,
                new_tokens: int = 64, texts: list[str] | None = None, after_prompt: bool = False) -> dict:
    """Generated tokens/s of ``HFModel.generate``; with ``after_prompt``, of the decoding steps alone (the time of
    a one-token call, i.e. the prompt's pass, taken off, and its token)."""
    from generation import PROMPTS

    from iteralign.models.base import ModelConfig
    from iteralign.models.hf import HFModel
    from iteralign.models.offline import ensure_converted
    from iteralign.types import GenerationParams, user

    path = ensure_converted(name)
    model = HFModel.load(str(path), ModelConfig(spec=f"hf:{path}", dtype="bfloat16", batch_size=batch, device="cpu"))
    model.generate([user("Hi")], GenerationParams(max_new_tokens=4))  # warm-up
    convs, params = [user(p) for p in texts or PROMPTS[:prompts]], GenerationParams(max_new_tokens=new_tokens)
    t0 = time.perf_counter()
    first = model.generate(convs, GenerationParams(max_new_tokens=1)) if after_prompt else []
    t1, c0 = time.perf_counter(), time.process_time()
    out = model.generate(convs, params)
    seconds, cpu = time.perf_counter() - t1, time.process_time() - c0
    top = _top_ops(lambda: model.generate(convs, params)) if profile else None  # the timed call was the one above
    tokens = sum(c.completion_tokens for c in out) - sum(c.completion_tokens for c in first)
    if after_prompt:
        seconds -= t1 - t0
    return {"figure": tokens / seconds, "unit": "tok/s after the prompt" if after_prompt else "generated tok/s",
            "tokens": tokens, "seconds": seconds, "cpu_seconds": cpu, "texts": [c.text for c in out], "profile": top}


def work_sft(profile: bool) -> dict:
    import tempfile

    from sft import examples

    from iteralign.config import SFTConfig
    from iteralign.models.offline import ensure_converted
    from iteralign.stages.sft import SFTJob, train

    cfg = SFTConfig(method="lora", bf16=True, epochs=1, batch_size=4, max_length=256, learning_rate=1e-5, replay=0)
    base = str(ensure_converted("smollm2-135m-instruct"))

    def run() -> dict:
        with tempfile.TemporaryDirectory() as tmp:
            return train(SFTJob(base=base, examples=examples(16), out_dir=tmp, cfg=cfg))

    c0 = time.process_time()
    stats, top = _profiled(run, profile)
    return {"figure": stats["tokens_per_second_in_steps"], "unit": "non-padding tok/s in steps",
            "seconds": stats["step_seconds"], "cpu_seconds": time.process_time() - c0, "train_loss": stats["train_loss"],
            "losses": stats["losses"], "profile": top}


def work_dpo(profile: bool) -> dict:
    """DPO as the loop runs it (``stages.dpo.train_dpo``): LoRA, bf16, batch 8, one epoch over 16 pairs whose chosen
    and rejected answers differ in length (~20 to ~200 tokens), reference log-probabilities precomputed."""
    import tempfile

    from sft import examples

    from iteralign.config import SFTConfig
    from iteralign.models.offline import ensure_converted
    from iteralign.records import PreferencePair
    from iteralign.stages.dpo import train_dpo
    from iteralign.stages.dpo_job import DPOJob, DPOSettings

    cfg = SFTConfig(method="lora", bf16=True, batch_size=8, max_length=384, replay=0)
    base = str(ensure_converted("smollm2-135m-instruct"))
    rows = examples(17)
    pairs = [PreferencePair(id=f"p{i}", prompt=a.prompt, chosen=a.completion, rejected=b.completion)
             for i, (a, b) in enumerate(zip(rows, rows[1:]))]

    def run() -> dict:
        from datasets import load_from_disk

        with tempfile.TemporaryDirectory() as tmp:
            stats = train_dpo(DPOJob(base=base, pairs=pairs, out_dir=tmp, cfg=cfg,
                                     dpo=DPOSettings(epochs=1, learning_rate=1e-5)))
            data = load_from_disk(f"{tmp}/pairs")
            return stats | {"tokens": sum(2 * len(r["prompt_ids"]) + len(r["chosen_ids"]) + len(r["rejected_ids"])
                                          for r in data)}

    c0 = time.process_time()
    stats, top = _profiled(run, profile)
    return {"figure": stats["tokens"] / stats["step_seconds"], "unit": "non-padding tok/s in steps",
            "seconds": stats["step_seconds"],
            "cpu_seconds": time.process_time() - c0, "train_loss": stats["train_loss"], "losses": stats["losses"],
            "profile": top}


def work_score(profile: bool) -> dict:
    from compare_lm_eval import TokenCounter

    from iteralign.data.benchmark_files import packaged_dir
    from iteralign.evals import truthfulqa
    from iteralign.models.base import ModelConfig
    from iteralign.models.hf import HFModel
    from iteralign.models.offline import ensure_converted

    path = ensure_converted("smollm2-135m-instruct")
    model = HFModel.load(str(path), ModelConfig(spec=f"hf:{path}", dtype="bfloat16", batch_size=16, device="cpu"))
    questions = truthfulqa.load_questions(packaged_dir(), 100)
    t0, c0 = time.perf_counter(), time.process_time()
    with TokenCounter() as counted:
        scores = truthfulqa.evaluate(model, questions, ("mc1", "mc2"), False)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    top = _top_ops(lambda: truthfulqa.evaluate(model, questions, ("mc1", "mc2"), False)) if profile else None
    return {"figure": counted.tokens / seconds, "unit": "token positions/s", "seconds": seconds, "cpu_seconds": cpu,
            "scores": {k: v.score for k, v in scores.items()}, "profile": top}


def work_revise(profile: bool) -> dict:
    """The default run's reviser and oracle: Qwen2.5-Coder-1.5B in bf16, 8 prompts at batch 8, 48 new tokens."""
    return work_decode(profile, "qwen2.5-coder-1.5b-instruct", batch=8, prompts=8, new_tokens=48)


def work_decode1(profile: bool) -> dict:
    """``decode`` one request at a time: 8 prompts at batch 1."""
    return work_decode(profile, batch=1, prompts=8)


def work_revise1(profile: bool) -> dict:
    """``revise`` one request at a time: 4 prompts at batch 1."""
    return work_decode(profile, "qwen2.5-coder-1.5b-instruct", batch=1, prompts=4, new_tokens=48)


def work_long1(profile: bool) -> dict:
    """The oracle answering one long prompt alone, as a proposal batch's last row does: 1.5B, batch 1, the 32
    prompts three times over (~1,500 tokens) to be sorted by topic; the 48 decoding steps after the prompt."""
    from generation import PROMPTS

    text = "Sort these requests by topic:\n" + "\n".join(f"- {p}" for p in PROMPTS * 3)
    return work_decode(profile, "qwen2.5-coder-1.5b-instruct", batch=1, new_tokens=49, texts=[text],
                       after_prompt=True)


def work_judge(profile: bool) -> dict:
    """The recommended local judge (configs/judges/verdict-0.5b.yaml) on judge_blind's first 48 items, in
    judge-eval's batches of 8 (``calibration.calibrate``), no call cache, model load excluded -> items/s."""
    from iteralign.calibration import calibrate, load_judge_config, load_labelled
    from iteralign.judges import JudgeItem
    from iteralign.roles import Roles

    items = load_labelled(HERE.parent / "src/iteralign/data/labelled/judge_blind.jsonl")[:48]
    cfg = load_judge_config(HERE.parent / "configs/judges/verdict-0.5b.yaml", ["run.cache=false"])
    panel = Roles(cfg.models, cfg.run).panel(cfg.judge)
    panel.judge([JudgeItem(items[0].prompt, items[0].response)])  # load the model
    t0, c0 = time.perf_counter(), time.process_time()
    result = calibrate(panel, items)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    top = _top_ops(lambda: calibrate(panel, items[:8])) if profile else None
    labels = [row["pred"] for row in result["items"]]
    return {"figure": len(items) / seconds, "unit": "items/s", "seconds": seconds, "cpu_seconds": cpu,
            "accuracy": result["overall"]["accuracy"], "texts": labels, "profile": top}


WORK = {"decode": work_decode, "sft": work_sft, "dpo": work_dpo, "score": work_score, "revise": work_revise,
        "decode1": work_decode1, "revise1": work_revise1, "long1": work_long1, "judge": work_judge}
#: Qwen2.5-Coder-1.5B (untied head); the other workloads run SmolLM2-135M (``PARAMS``)
PARAMS_OF = {"revise": 1_543_714_304, "revise1": 1_543_714_304, "long1": 1_543_714_304}
BATCH_OF = {"decode": 16, "revise": 8, "decode1": 1, "revise1": 1, "long1": 1}  # the decoding workloads' batch sizes


def ceiling(work: str, lim: dict, native: bool = True) -> tuple[float, str]:
    """The bound of a workload's figure under the limits ``lim`` (same threads), on the bf16 path the tool takes on
    this CPU (``roofline.bf16_path``: float32 matmuls and 4-byte weights where bf16 is not native)."""
    import roofline

    if work == "judge":  # several passes of different depths and lengths per item: no single bound
        return 0.0, "none"
    gflops, width, path = roofline.bf16_path(lim, native)
    flops, params, tag = gflops * 1e9, PARAMS_OF.get(work, PARAMS), "" if native else f", {path}"
    if work in BATCH_OF:
        batch = BATCH_OF[work]
        memory, compute = lim["copy_gbs"] * 1e9 / (width * params) * batch, flops / (2 * params)
        return (memory, "memory" + tag) if memory < compute else (compute, "compute" + tag)
    k = 4 if work in ("sft", "dpo") else 2
    return flops / (k * PARAMS), f"compute {k}P{tag}"


def run_worker(tree: Path, work: str, threads: int, profile: bool) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree / "src"), ITERALIGN_PROGRESS="log")
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    load = os.getloadavg()[0]
    proc = subprocess.run([sys.executable, __file__, "--worker", work] + (["--profile"] if profile else []),
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1], "tree": str(tree)}
    return json.loads(proc.stdout.strip().splitlines()[-1]) | {"load_before": load, "load_after": os.getloadavg()[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", type=Path, required=False, help="the other source tree (its src/ is used); without it only this tree runs")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--only", nargs="+", choices=list(WORK), default=["decode", "sft", "score"])
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--out", type=Path, default=HERE / "out" / "ab.json")
    ap.add_argument("--worker", choices=list(WORK), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        import iteralign

        print(json.dumps(WORK[args.worker](args.profile) | {"source": str(Path(iteralign.__file__).parent)}))
        return
    import roofline
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    trees = {"base": args.base.resolve(), "new": HERE.parent} if args.base else {"new": HERE.parent}
    result = {"trees": {k: str(v) for k, v in trees.items()}, "threads": torch.get_num_threads(), "rounds": []}
    for r in range(args.rounds):
        limits = roofline.measure(argparse.Namespace(threads=args.threads, sizes=[512, 1024], repeats=5, copy_mb=256))
        row = {"limits": limits["limits"], "native_bf16": limits["native_bf16"],
               "load": limits["load_average_before_after"], "work": {}}
        for work in args.only:
            pair = {}
            order = ("base", "new") if r % 2 == 0 else ("new", "base")  # alternate who goes first
            for name in (n for n in order if n in trees):
                res = run_worker(trees[name], work, args.threads, args.profile and r == 0)
                if "figure" in res:
                    bound, kind = ceiling(work, limits["limits"], limits["native_bf16"])
                    res |= {"ceiling": round(bound, 1), "bound": kind,
                            "fraction": round(res["figure"] / bound, 4) if bound else None}
                pair[name] = res
                of = (f" = {100 * res['fraction']:.1f}% of {res['ceiling']:.0f} ({res['bound']})"
                      if res.get("fraction") else "")
                print(f"round {r} {work:7} {name:4} " + (f"{res['figure']:9.2f} {res['unit']}{of}, load "
                      f"{res['load_before']:.1f}" if "figure" in res else f"ERROR {res['error']}"), flush=True)
            if len(pair) == 2 and all("figure" in v for v in pair.values()):
                pair["ratio_new_over_base"] = round(pair["new"]["figure"] / pair["base"]["figure"], 3)
                if "texts" in pair["new"]:
                    pair["same_texts"] = sum(a == b for a, b in zip(pair["new"]["texts"], pair["base"]["texts"]))
                print(f"round {r} {work:7} ratio new/base {pair['ratio_new_over_base']:.2f}x", flush=True)
            row["work"][work] = pair
        result["rounds"].append(row)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()
