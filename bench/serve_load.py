"""Load benchmark of ``iteralign serve``: sequential requests vs 4, 16 and 64 concurrent clients, one run, loopback.

It starts ``iteralign serve --model offline:smollm2-135m-instruct`` (the real 135M model; ``--dtype`` as given,
default ``auto`` = bfloat16 on CPU) on a free 127.0.0.1 port as a subprocess, warms it up, then runs one level after
the other with the same kind of request (a distinct chat prompt each, greedy, ``max_tokens`` 32):

- sequential: 16 requests, one at a time;
- concurrency 4, 16, 64: 32, 64 and 128 requests, each level a closed loop of that many clients.

Every level is bounded in count and in time (``--level-limit-s``: no new request starts after it). For each level it
reports completion tokens per second (wall clock), the ratio to the sequential level, p50/p95 latency, errors
(non-200 answers, transport errors) and the server's batch sizes (from ``GET /metrics``, before/after). Targets
(issue 21): concurrency 16 >= 4x sequential tokens/s; p95 at concurrency 16 <= 2 x sequential per-request time x 16;
no errors.

Run:  .venv/bin/python bench/serve_load.py [--threads 1] [--dtype float32] [--quick]
Writes bench/out/serve_load.json and prints a Markdown table. ``--quick`` runs a quarter of the requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
TOPICS = ["the water cycle", "binary search", "why the sky is blue", "how vaccines work", "the French revolution",
          "compound interest", "photosynthesis", "black holes", "the rules of chess", "how a bicycle stays upright",
          "recursion", "plate tectonics", "the immune system", "supply and demand", "how bread rises", "the internet"]
STYLES = ["Explain {} to a ten-year-old.", "Write a short paragraph about {}.", "Give me three facts about {}.",
          "What should a student know about {}?"]
PROMPTS = [style.format(topic) for style in STYLES for topic in TOPICS]  # 64 distinct prompts
LEVELS = [(1, 16), (4, 32), (16, 64), (64, 128)]  # (concurrency, requests)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(args, port: int, log_path: Path) -> subprocess.Popen:
    """``iteralign serve`` in a subprocess; returns once ``/health`` answers."""
    cmd = [str(ROOT / ".venv/bin/iteralign"), "serve", "--model", args.model, "--port", str(port), "--dtype",
           args.dtype, "--max-batch-size", str(args.max_batch_size), "--max-queue", str(args.max_queue)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **({"OMP_NUM_THREADS": str(args.threads)} if args.threads else {})}
    proc = subprocess.Popen(cmd, stdout=log_path.open("w"), stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 180
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"iteralign serve did not start; see {log_path}")
        time.sleep(0.5)


async def one(client: httpx.AsyncClient, url: str, prompt: str, max_tokens: int) -> dict:
    body = {"model": "smollm2", "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
            "temperature": 0}
    start = time.perf_counter()
    try:
        response = await client.post(f"{url}/chat/completions", json=body)
        status = response.status_code
        tokens = response.json()["usage"]["completion_tokens"] if status == 200 else 0
    except httpx.HTTPError as exc:
        status, tokens = type(exc).__name__, 0
    return {"status": status, "tokens": tokens, "latency_s": time.perf_counter() - start}


async def level(url: str, concurrency: int, count: int, max_tokens: int, limit_s: float) -> dict:
    """``count`` requests from ``concurrency`` clients in a closed loop; none starts after ``limit_s``."""
    todo = iter(PROMPTS[i % len(PROMPTS)] for i in range(count))
    results: list[dict] = []
    start = time.perf_counter()

    async def client_loop(client: httpx.AsyncClient) -> None:
        for prompt in todo:
            if time.perf_counter() - start > limit_s:
                return
            results.append(await one(client, url, prompt, max_tokens))

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        await asyncio.gather(*(client_loop(client) for _ in range(concurrency)))
    wall = time.perf_counter() - start
    ok = [r for r in results if r["status"] == 200]
    latencies = sorted(r["latency_s"] for r in ok) or [float("nan")]
    tokens = sum(r["tokens"] for r in ok)
    return {"concurrency": concurrency, "requests": len(results), "answered": len(ok),
            "errors": len(results) - len(ok), "error_kinds": sorted({str(r["status"]) for r in results} - {"200"}),
            "wall_s": round(wall, 2), "completion_tokens": tokens, "tokens_per_s": round(tokens / wall, 2),
            "p50_s": round(statistics.median(latencies), 3),
            "p95_s": round(latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))], 3)}


def batch_sizes(before: dict, after: dict) -> dict[str, int]:
    """The server's batch-size histogram for one level (the difference of two /metrics snapshots)."""
    sizes = {k: after["batch_sizes"].get(k, 0) - before["batch_sizes"].get(k, 0) for k in after["batch_sizes"]}
    return {k: v for k, v in sorted(sizes.items(), key=lambda kv: int(kv[0])) if v}


def run(args, url: str) -> list[dict]:
    metrics_url = url.removesuffix("/v1") + "/metrics"
    asyncio.run(level(url, 2, 2, args.max_tokens, args.level_limit_s))  # warm-up, not reported
    rows = []
    for concurrency, count in LEVELS:
        count = max(concurrency, count // 4) if args.quick else count
        before = httpx.get(metrics_url, timeout=10).json()
        row = asyncio.run(level(url, concurrency, count, args.max_tokens, args.level_limit_s))
        sizes = batch_sizes(before, httpx.get(metrics_url, timeout=10).json())
        row["batch_sizes"] = sizes
        row["mean_batch_size"] = round(sum(int(k) * v for k, v in sizes.items()) / max(1, sum(sizes.values())), 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def summarise(rows: list[dict]) -> dict:
    seq = rows[0]
    per_request = seq["wall_s"] / max(1, seq["answered"])
    for row in rows:
        row["vs_sequential"] = round(row["tokens_per_s"] / seq["tokens_per_s"], 2)
    c16 = next(r for r in rows if r["concurrency"] == 16)
    p95_bound = 2 * per_request * 16
    return {"sequential_per_request_s": round(per_request, 3),
            "target_c16_4x": {"ratio": c16["vs_sequential"], "met": c16["vs_sequential"] >= 4},
            "target_c16_p95": {"p95_s": c16["p95_s"], "bound_s": round(p95_bound, 2), "met": c16["p95_s"] <= p95_bound},
            "errors": sum(r["errors"] for r in rows)}


def markdown(rows: list[dict]) -> str:
    lines = ["| clients | requests | errors | tok/s | vs sequential | p50 s | p95 s | mean batch | batch sizes |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        name = "1 (sequential)" if r["concurrency"] == 1 else str(r["concurrency"])
        lines.append(f"| {name} | {r['requests']} | {r['errors']} | {r['tokens_per_s']} | {r['vs_sequential']}x | "
                     f"{r['p50_s']} | {r['p95_s']} | {r['mean_batch_size']} | {r['batch_sizes']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="offline:smollm2-135m-instruct")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="OMP_NUM_THREADS of the server (0: torch's default)")
    parser.add_argument("--max-batch-size", type=int, default=16)
    parser.add_argument("--max-queue", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--level-limit-s", type=float, default=180.0)
    parser.add_argument("--quick", action="store_true", help="a quarter of the requests (a smoke run)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/out/serve_load.json")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    port, load_before = free_port(), os.getloadavg()
    proc = start_server(args, port, args.out.with_suffix(".server.log"))
    try:
        rows = run(args, f"http://127.0.0.1:{port}/v1")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    result = {"command": " ".join([".venv/bin/python", *sys.argv]), "settings": vars(args) | {"out": str(args.out)},
              "load_before": load_before, "load_after": os.getloadavg(), "levels": rows, "summary": summarise(rows)}
    args.out.write_text(json.dumps(result, indent=2))
    print(markdown(rows))
    print(json.dumps(result["summary"], indent=2))


if __name__ == "__main__":
    main()
