"""Tool-use check for candidate local models: for 20 fixed questions, does the model produce a valid call to one of
grep / search / answer (right name, arguments that validate), and is it the expected tool?

Two modes per model:
* constrained: sleuth's default for the embedded server (tool instruction + JSON schema ``anyOf`` per tool);
* native: the tools passed as OpenAI ``tools=`` with no constraint; the reply's text is parsed for a call.

Usage (each model gets its own server, separate from the shared default one):
    nice -n 10 .venv/bin/python benchmarks/tool_use_check.py --model local --model local:smollm2-135m
    ... --limit 5 --modes constrained        # a quick look
Prints one line per question and a summary table (markdown), and writes JSON to --out when given.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class GrepArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pattern: str = Field(min_length=1, description="regular expression to search the documents for")
    glob: str | None = Field(None, description="only files matching this glob, e.g. *.log")
    ignore_case: bool = False


class SearchArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1, description="natural-language query for ranked (BM25) search")
    k: int = Field(10, ge=1, le=50)


class AnswerArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=1, description="the final answer")
    sources: list[str] = Field(default_factory=list, description="doc ids that support the answer")


ARGS = {"grep": GrepArgs, "search": SearchArgs, "answer": AnswerArgs}
DESCRIPTIONS = {
    "grep": "Find lines matching an exact regex in the corpus files (best for exact names, codes, identifiers).",
    "search": "Ranked keyword search over the corpus (best for topics and questions in plain words).",
    "answer": "Give the final answer once you know it.",
}
TOOLS = [
    {"type": "function", "function": {"name": n, "description": DESCRIPTIONS[n], "parameters": m.model_json_schema()}}
    for n, m in ARGS.items()
]
SYSTEM = (
    "You are a search agent over a folder of text documents. Use grep for exact strings, search for topics, "
    "and answer when the conversation already contains the answer."
)

# (question, expected tool). Questions whose answer is in the prompt expect `answer`.
QUESTIONS: list[tuple[str, str]] = [
    ("Which log files contain the error code E1042?", "grep"),
    ("Find every line that mentions 'OutOfMemoryError'.", "grep"),
    ("Where is the function parse_config defined?", "grep"),
    ("Which documents mention the IP address 10.0.0.17?", "grep"),
    ("Find the lines with TODO in the Python files.", "grep"),
    ("Which files reference the ticket JIRA-5531?", "grep"),
    ("Show lines that contain the exact phrase 'connection reset by peer'.", "grep"),
    ("Find mentions of the environment variable SLEUTH_HOME.", "grep"),
    ("What documents discuss the causes of the French Revolution?", "search"),
    ("Find documents about how vaccines train the immune system.", "search"),
    ("Which articles explain climate change effects on coral reefs?", "search"),
    ("Look for documents about the history of the printing press.", "search"),
    ("Find passages about treatment options for type 2 diabetes.", "search"),
    ("What do the documents say about renewable energy subsidies?", "search"),
    ("Search for material on the economic impact of remote work.", "search"),
    ("The document says: 'The Eiffel Tower was completed in 1889.' When was the Eiffel Tower completed?", "answer"),
    ("Context: doc a.txt says 'The server listens on port 8080.' Which port does the server listen on?", "answer"),
    ("You already found: 'Marie Curie won Nobel Prizes in 1903 and 1911.' In which years did she win?", "answer"),
    ("Given the note 'Backups run nightly at 02:00 UTC', when do backups run? Answer now.", "answer"),
    ("The grep result was 'config.yaml:3: timeout: 30s'. What is the configured timeout?", "answer"),
]


def check(call: Any) -> tuple[bool, str]:
    if call is None:
        return False, "no call"
    if call.parse_error:
        return False, f"unparseable arguments: {call.parse_error[:60]}"
    model = ARGS.get(call.name)
    if model is None:
        return False, f"unknown tool {call.name!r}"
    try:
        model.model_validate(call.arguments)
    except ValidationError as e:
        return False, f"invalid arguments: {e.errors()[0]['msg'][:60]}"
    return True, ""


def run_model(spec: str, modes: list[str], limit: int, max_tokens: int) -> dict[str, Any]:
    from sleuth.errors import ModelError
    from sleuth.llm.client import LLM
    from sleuth.llm.local import LocalServer, resolve_local_model

    path, key = resolve_local_model(spec)
    server = LocalServer(path, key=f"bench-{key}", linger_s=2)
    t = time.perf_counter()
    server.ensure()
    load_s = time.perf_counter() - t
    out: dict[str, Any] = {"model": spec, "weights": path.name, "load_s": round(load_s, 1), "modes": {}}
    try:
        for mode in modes:
            llm = LLM(spec, local_server=server, native_tools=(mode == "native"), max_retries=1)
            rows = []
            for q, expected in QUESTIONS[:limit]:
                msgs = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}]
                t0 = time.perf_counter()
                try:
                    r = llm.chat(msgs, tools=TOOLS, max_tokens=max_tokens)
                    call = r.tool_calls[0] if r.tool_calls else None
                    ok, why = check(call)
                    raw = json.dumps(call.model_dump(include={"name", "arguments"})) if call else r.content[:120]
                    tokens = r.usage.completion_tokens
                except ModelError as e:
                    call, ok, why, raw, tokens = None, False, f"{type(e).__name__}", str(e)[:120], 0
                row = {
                    "q": q, "expected": expected, "valid": ok, "tool": call.name if call else None,
                    "right_tool": ok and call is not None and call.name == expected, "why": why, "raw": raw,
                    "latency_s": round(time.perf_counter() - t0, 2), "completion_tokens": tokens,
                }
                rows.append(row)
                mark = "ok " if row["valid"] else "BAD"
                print(f"  [{spec} {mode}] {mark} {row['tool'] or '-':7s} (want {expected:6s}) "
                      f"{row['latency_s']:5.1f}s {raw[:90]}", file=sys.stderr, flush=True)
            out["modes"][mode] = {
                "valid": sum(r["valid"] for r in rows),
                "right_tool": sum(r["right_tool"] for r in rows),
                "n": len(rows),
                "median_latency_s": round(statistics.median(r["latency_s"] for r in rows), 2),
                "rows": rows,
            }
    finally:
        server.stop()
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", action="append", help="local | local:<name> | gguf:/path (repeatable)")
    ap.add_argument("--modes", default="constrained,native")
    ap.add_argument("--limit", type=int, default=len(QUESTIONS))
    ap.add_argument("--max-tokens", type=int, default=96)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    models = args.model or ["local"]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    results = [run_model(m, modes, args.limit, args.max_tokens) for m in models]
    print("| model | mode | valid call | expected tool | median latency (s) |")
    print("|---|---|---|---|---|")
    for res in results:
        for mode, s in res["modes"].items():
            print(f"| {res['model']} | {mode} | {s['valid']}/{s['n']} | {s['right_tool']}/{s['n']} | "
                  f"{s['median_latency_s']} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
