"""A sleuth MCP server for tests that need long calls without a real model (run as a script).

Everything is sleuth's real code (``build_toolkit``, ``build_server``, the react agent, the listwise reranker, the
corpus tools) except the model: a :class:`~sleuth.llm.fake.ScriptedModel` whose every call sleeps ``--delay``
seconds and appends a line to ``--calls-log``. Its react script greps ``--steps`` times (a different pattern each time), then answers (``--steps 0``:
greps until cancelled). Two extra tools: ``wait`` (sleeps, honouring cancellation) and ``sleep`` (sleeps blindly,
reporting nothing: with a large ``--progress-interval`` it sends no progress at all).

    python mcp_scripted_server.py CORPUS [--transport stdio|http] [--port P] [--delay S] [--steps N]
        [--calls-log FILE] [--log FILE] [--progress-interval S] [--max-result-chars N]
"""

from __future__ import annotations

import argparse
import logging
import time
from typing import Any

import anyio

from sleuth.agents.budget import Budget
from sleuth.callcontrol import CallControl
from sleuth.integrations import mcp_server
from sleuth.integrations.toolset import build_toolkit
from sleuth.llm.fake import ScriptedModel, tool
from sleuth.tools.base import Tool, ToolArgs, ToolResult

ANSWER_DOC = "projects/kestrel_bridge.txt"


class SleepArgs(ToolArgs):
    seconds: float = 1.0


def wait(a: SleepArgs, control: CallControl) -> ToolResult:
    cancelled = control.wait(a.seconds)
    return ToolResult(text="cancelled" if cancelled else f"waited {a.seconds}")


def sleep(a: SleepArgs) -> ToolResult:
    time.sleep(a.seconds)
    return ToolResult(text=f"slept {a.seconds}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus")
    ap.add_argument("--transport", default="stdio")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--delay", type=float, default=1.0)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--calls-log", default="")
    ap.add_argument("--log", default="")
    ap.add_argument("--progress-interval", type=float, default=10.0)
    ap.add_argument("--max-result-chars", type=int, default=100_000)
    args = ap.parse_args()
    if args.log:
        logging.basicConfig(filename=args.log, level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    calls = 0

    def reply(messages: list[dict[str, Any]], tools: Any) -> Any:
        nonlocal calls
        calls += 1
        if args.calls_log:
            with open(args.calls_log, "a") as fh:
                fh.write(f"{time.time()}\n")
        time.sleep(args.delay)
        if not tools:  # the listwise reranker asks for a ranking
            return "[2] > [1]"
        if args.steps and calls > args.steps:
            return tool("answer", answer="Bram Okafor", doc_ids=[ANSWER_DOC])
        return tool("grep", pattern=f"Kestrel|step {calls}")  # a new call each time (repeats end a run)

    budget = Budget(max_steps=1000, max_tokens=None, max_seconds=None) if args.steps == 0 else None
    extra = [Tool("wait", "Wait a while (stops when cancelled).", SleepArgs, wait, takes_control=True),
             Tool("sleep", "Sleep a while.", SleepArgs, sleep)]
    toolset = build_toolkit(args.corpus, model=ScriptedModel(default=reply), budget=budget, extra_tools=extra)
    server = mcp_server.build_server(toolset.toolkit, corpus=toolset.corpus, progress_interval=args.progress_interval,
                                     max_result_chars=args.max_result_chars)
    if args.transport == "stdio":
        anyio.run(mcp_server.serve_stdio, server)
    else:
        anyio.run(lambda: mcp_server.serve_http(server, port=args.port))


if __name__ == "__main__":
    main()
