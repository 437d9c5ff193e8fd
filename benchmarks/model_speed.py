"""Speed of the embedded model, and what the server and sleuth's client add on top of llama.cpp.

One process loads the GGUF into xllamacpp's llama.cpp server (2 threads, listening on 127.0.0.1) and, on that same
loaded model, alternates:

* in-process: ``server.handle_chat_completions(request_dict)`` (llama.cpp's handler called directly: no HTTP);
* HTTP + bare ``openai`` client;
* HTTP + sleuth's client (``sleuth.llm.client.LLM`` -> litellm) for the per-call overhead.

Part 1 (throughput): a ~N-token prompt (a unique prefix per request so no KV-cache reuse) and M generated tokens
(``ignore_eos``), prompt and generation tokens/s from llama.cpp's own timings, and wall time per request; the ratio
HTTP / in-process of the wall times is the server's overhead.
Part 2 (per-call overhead): tiny requests (cached prompt, 1 token) through openai vs sleuth; the median difference
is sleuth's overhead per call.
Part 3: cost of schema-constrained decoding (sleuth's tool-call fallback) vs free decoding, same prompt.

Usage: nice -n 10 .venv/bin/python benchmarks/model_speed.py [--model local] [--prompt-tokens 1000]
       [--gen-tokens 128] [--reps 3] [--calls 20]
The machine is shared: the load average is printed with the results; treat ratios as more reliable than rates.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import uuid
from typing import Any

FILLER = (
    "The archive holds maintenance logs, design notes and meeting minutes from several teams. Each entry records "
    "who changed what, when, and why, with links to tickets and follow-up tasks. "
)


def prompt_of(n_tokens: int, count: Any) -> str:
    words = FILLER * (n_tokens // 30 + 1)
    text = " ".join(words.split()[: int(n_tokens * 0.75)])
    return f"[{uuid.uuid4().hex}] {text}\n\nSummarise the archive above in detail."


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="local")
    ap.add_argument("--prompt-tokens", type=int, default=1000)
    ap.add_argument("--gen-tokens", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--poll", type=int, default=None, help="ggml thread polling level 0-100 (llama.cpp default 50)")
    args = ap.parse_args()

    import xllamacpp
    from openai import OpenAI

    from sleuth.llm.client import LLM
    from sleuth.llm.local import resolve_local_model
    from sleuth.llm.toolcalls import tool_call_schema

    path, _ = resolve_local_model(args.model)
    p = xllamacpp.CommonParams()
    p.model.path = str(path)
    p.n_ctx = 4096
    p.cpuparams.n_threads = args.threads
    p.cpuparams_batch.n_threads = args.threads
    if args.poll is not None:
        p.cpuparams.poll = args.poll
        p.cpuparams_batch.poll = args.poll
    p.hostnames = ["127.0.0.1"]
    p.port = 0
    p.model_alias = {"local"}
    t = time.perf_counter()
    server = xllamacpp.Server(p)
    load_s = time.perf_counter() - t
    api_base = server.listening_address.rstrip("/") + "/v1"
    oa = OpenAI(base_url=api_base, api_key="x", max_retries=0)
    sl = LLM("openai/local", api_base=api_base, api_key="x", max_retries=0)
    sl.chat([{"role": "user", "content": "warm up"}], max_tokens=1)  # imports litellm once
    load0 = os.getloadavg()[0]

    def body(prompt: str, n: int, **extra: Any) -> dict[str, Any]:
        return {"model": "local", "messages": [{"role": "user", "content": prompt}], "max_tokens": n,
                "temperature": 0.0, **extra}

    def inproc(prompt: str, n: int, **extra: Any) -> tuple[float, dict[str, Any]]:
        t0 = time.perf_counter()
        r = server.handle_chat_completions(body(prompt, n, **extra))
        return time.perf_counter() - t0, r

    def http(prompt: str, n: int, **extra: Any) -> tuple[float, dict[str, Any]]:
        b = body(prompt, n, **extra)
        t0 = time.perf_counter()
        r = oa.chat.completions.create(model="local", messages=b["messages"], max_tokens=n, temperature=0.0,
                                       extra_body={k: v for k, v in extra.items()})
        return time.perf_counter() - t0, r.model_dump()

    # -- part 1: throughput -----------------------------------------------------------------------------------
    runs: dict[str, list[dict[str, float]]] = {"in-process": [], "http+openai": []}
    for rep in range(args.reps):
        for name, fn in (("in-process", inproc), ("http+openai", http)) if rep % 2 == 0 else (
                ("http+openai", http), ("in-process", inproc)):
            wall, r = fn(prompt_of(args.prompt_tokens, rep), args.gen_tokens, ignore_eos=True)
            tm = r.get("timings") or {}
            runs[name].append({
                "wall_s": wall, "prompt_n": tm.get("prompt_n", 0), "gen_n": tm.get("predicted_n", 0),
                "prompt_tps": tm.get("prompt_per_second", 0.0), "gen_tps": tm.get("predicted_per_second", 0.0),
                "engine_s": (tm.get("prompt_ms", 0) + tm.get("predicted_ms", 0)) / 1000,
            })
    med = {k: {m: statistics.median(r[m] for r in v) for m in v[0]} for k, v in runs.items()}

    # -- part 2: per-call overhead ----------------------------------------------------------------------------
    tiny = [{"role": "user", "content": "Reply with OK."}]
    walls: dict[str, list[float]] = {"openai": [], "sleuth": [], "in-process": []}
    for i in range(args.calls):
        order = ["openai", "sleuth", "in-process"] if i % 2 == 0 else ["in-process", "sleuth", "openai"]
        for name in order:
            t0 = time.perf_counter()
            if name == "openai":
                oa.chat.completions.create(model="local", messages=tiny, max_tokens=1, temperature=0.0)
            elif name == "sleuth":
                sl.chat(tiny, max_tokens=1)
            else:
                server.handle_chat_completions({"model": "local", "messages": tiny, "max_tokens": 1})
            walls[name].append(time.perf_counter() - t0)
    call_ms = {k: statistics.median(v) * 1000 for k, v in walls.items()}

    # -- part 3: constrained vs free decoding -----------------------------------------------------------------
    tools = [{"type": "function", "function": {"name": "grep", "parameters": {"type": "object", "properties": {
        "pattern": {"type": "string"}}, "required": ["pattern"]}}}]
    q = "Write a JSON object naming the tool grep with a pattern that finds lines about disk failures."
    schema = {"type": "json_schema", "json_schema": {"name": "call", "schema": tool_call_schema(tools)}}
    free_tps, cons_tps = [], []
    for _ in range(args.reps):
        _, r1 = inproc(f"[{uuid.uuid4().hex}] {q}", 40, ignore_eos=True)
        _, r2 = inproc(f"[{uuid.uuid4().hex}] {q}", 40, response_format=schema)
        free_tps.append(r1["timings"]["predicted_per_second"])
        cons_tps.append(r2["timings"]["predicted_per_second"])
    load1 = os.getloadavg()[0]

    ip, hp = med["in-process"], med["http+openai"]
    result = {
        "model": args.model, "weights": path.name, "threads": args.threads, "poll": args.poll, "load_s": round(load_s, 2),
        "loadavg_1min": [round(load0, 2), round(load1, 2)],
        "prompt_tokens": ip["prompt_n"], "gen_tokens": ip["gen_n"], "reps": args.reps,
        "in_process": ip, "http_openai": hp,
        "http_over_inprocess_wall": round(hp["wall_s"] / ip["wall_s"], 3),
        # the load-insensitive measure: time outside llama.cpp's own prompt+generation timings, per request
        "outside_engine_s": {"in_process": round(ip["wall_s"] - ip["engine_s"], 3),
                             "http_openai": round(hp["wall_s"] - hp["engine_s"], 3)},
        "http_outside_engine_fraction": round((hp["wall_s"] - hp["engine_s"]) / hp["wall_s"], 5),
        "per_call_ms": {k: round(v, 1) for k, v in call_ms.items()},
        "sleuth_minus_openai_ms": round(call_ms["sleuth"] - call_ms["openai"], 1),
        "gen_tps_free": round(statistics.median(free_tps), 2),
        "gen_tps_constrained": round(statistics.median(cons_tps), 2),
    }
    print(json.dumps(result, indent=1))
    print()
    print("| path | prompt tok/s | gen tok/s | wall per request (s) |")
    print("|---|---|---|---|")
    for name, m in (("in-process llama.cpp", ip), ("server over HTTP (openai client)", hp)):
        print(f"| {name} | {m['prompt_tps']:.1f} | {m['gen_tps']:.1f} | {m['wall_s']:.2f} |")
    print(f"\nHTTP server / in-process wall-time ratio: {result['http_over_inprocess_wall']:.3f} (engine speed varies "
          "with load between requests; the next line is the load-insensitive measure)")
    oe = result["outside_engine_s"]
    print(f"time outside llama.cpp's timings per request: in-process {oe['in_process']:.3f} s, HTTP+openai "
          f"{oe['http_openai']:.3f} s ({100 * result['http_outside_engine_fraction']:.2f}% of the HTTP request)")
    print(f"per-call median (tiny request): in-process {call_ms['in-process']:.1f} ms, openai {call_ms['openai']:.1f} "
          f"ms, sleuth {call_ms['sleuth']:.1f} ms (sleuth - openai = {result['sleuth_minus_openai_ms']:.1f} ms)")
    print(f"generation tok/s free vs schema-constrained: {result['gen_tps_free']} vs {result['gen_tps_constrained']}")
    print(f"load average (1 min) at start/end: {load0:.2f} / {load1:.2f}")
    del server


if __name__ == "__main__":
    main()
