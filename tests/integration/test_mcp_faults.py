"""`sleuth mcp` under hostile calls (issue #19): a call past its deadline frees its worker, faults reveal no paths,
a huge line or a hostile glob does not starve other readers (stdio and HTTP), a corrupt index is a typed error."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp", reason="the MCP server needs the `mcp` extra")

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from tests.integration.mcp_helpers import (
    SLEUTH,
    HttpServer as _HttpServer,
    free_port as _free_port,
    sleuth_stdio as _stdio,
    text_of as _text,
    write_corpus,
)


@pytest.fixture()
def corpus_dir(tmp_path: Path) -> Path:
    return write_corpus(tmp_path)



DEADLINE_SERVER = """
import sys, time
from sleuth.integrations import mcp_server
from sleuth.integrations.toolset import build_toolkit
from sleuth.tools.base import Tool, ToolArgs, ToolResult

class SleepArgs(ToolArgs):
    seconds: float = 1.0

def sleep(a):
    time.sleep(a.seconds)
    return ToolResult(text=f"slept {a.seconds}")

def boom(a):
    raise RuntimeError(f"failed reading {sys.prefix}/lib/secret/config and /home/someone/.ssh/id_rsa")

extra = [Tool("sleep", "Sleep a while.", SleepArgs, sleep), Tool("boom", "Always fails.", SleepArgs, boom)]
toolset = build_toolkit(sys.argv[1], extra_tools=extra, build_index=False)
server = mcp_server.build_server(toolset.toolkit, call_timeout=float(sys.argv[2]))
import anyio
anyio.run(mcp_server.serve_stdio, server)
"""


def test_stdio_call_deadline_frees_the_worker_and_faults_reveal_no_paths(corpus_dir: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable, args=["-c", DEADLINE_SERVER, str(corpus_dir), "1.0"], env=dict(os.environ)
    )

    async def main() -> None:
        async with Client(params, read_timeout_seconds=60) as client:
            t0 = time.perf_counter()
            late = await client.call_tool("sleep", {"seconds": 30})
            assert late.is_error and "ToolTimeoutError" in _text(late) and time.perf_counter() - t0 < 5
            # every worker slot taken by a call that never ends: the deadline frees them all
            async with anyio.create_task_group() as tg:
                for _ in range(6):
                    tg.start_soon(client.call_tool, "sleep", {"seconds": 30})
                await anyio.sleep(0.2)
                t1 = time.perf_counter()
                ok = await client.call_tool("read", {"doc_id": "readme.txt"})
                assert ok.is_error is False and "small corpus" in _text(ok)
                assert time.perf_counter() - t1 < 5
            fault = await client.call_tool("boom", {})
            text = _text(fault)
            assert fault.is_error and "RuntimeError" in text and "internal fault" in text
            assert sys.prefix not in text and ".ssh" not in text and "/home" not in text
            assert fault.structured_content is None

    anyio.run(main)


def _hostile_corpus(root: Path) -> None:
    long_id = "a" * 204
    (root / "ids").mkdir(exist_ok=True)
    for i in range(300):
        (root / "ids" / f"{long_id[: 200 - len(str(i))]}{i}").write_text("plain text\n")
    block = b"a" * (1 << 20)
    with open(root / "one_line.txt", "wb") as fh:  # 120 MB on one line
        for i in range(120):
            fh.write(block if i != 60 else b" needle " + block)
        fh.write(b"\n")


HOSTILE_CALLS = [
    ("grep", {"pattern": "needle"}),
    ("grep", {"pattern": "a"}),
    ("ls", {"glob": "*a" * 6 + "*b"}),
    ("ls", {"glob": "*a" * 40 + "*b"}),
    ("grep", {"pattern": "plain", "glob": "*a" * 40 + "*b"}),
]


async def _hostile_while_reading(hostile: Any, reader: Any) -> list[float]:
    latencies: list[float] = []
    done = anyio.Event()

    async def attack() -> None:
        for name, args in HOSTILE_CALLS:
            r = await hostile.call_tool(name, args)
            assert "Traceback" not in _text(r)
            if name == "grep" and args["pattern"] == "needle":
                assert r.is_error is False and "line too long, shown cut" in _text(r), _text(r)[:500]
        done.set()

    async def read_loop() -> None:
        while not done.is_set():
            t0 = time.perf_counter()
            with anyio.fail_after(10):  # the reader is always answered
                r = await reader.call_tool("read", {"doc_id": "readme.txt"})
            assert r.is_error is False and "small corpus" in _text(r)
            latencies.append(time.perf_counter() - t0)
            await anyio.sleep(0.05)

    async with anyio.create_task_group() as tg:
        tg.start_soon(attack)
        tg.start_soon(read_loop)
    return latencies


def test_stdio_huge_line_and_hostile_glob_while_reads_are_answered(corpus_dir: Path) -> None:
    _hostile_corpus(corpus_dir)

    async def main() -> list[float]:
        async with Client(_stdio(corpus_dir, "--no-build-index"), read_timeout_seconds=120) as client:
            return await _hostile_while_reading(client, client)  # concurrent requests on one session

    latencies = anyio.run(main)
    assert latencies and max(latencies) < 10


def test_http_huge_line_and_hostile_glob_while_a_second_client_reads(corpus_dir: Path) -> None:
    _hostile_corpus(corpus_dir)
    port = _free_port()
    server = _HttpServer([SLEUTH, "mcp", "--corpus", str(corpus_dir), "--no-build-index", "--transport", "http",
                          "--port", str(port)], port)
    try:
        async def main() -> list[float]:
            async with Client(server.url, read_timeout_seconds=120) as hostile, \
                    Client(server.url, read_timeout_seconds=120) as reader:
                return await _hostile_while_reading(hostile, reader)

        latencies = anyio.run(main)
        assert latencies and max(latencies) < 10
        assert server.proc.poll() is None
    finally:
        err = server.stop()
    assert "Traceback" not in err, err


def test_stdio_corrupt_index_is_a_typed_error_while_reads_are_answered(corpus_dir: Path, tmp_path: Path) -> None:
    """Issue #19: a crafted `.sleuth/` index (values, not shapes) once segfaulted the server on one `search`. Now
    the index is checked when the server opens it: `search` and `df` are left out and the server's instructions
    name the damage and the fix; calls to them are tool errors, `read` calls on the same session are always
    answered, and the server keeps serving."""
    import numpy as np

    env = {**os.environ, "SLEUTH_HOME": str(tmp_path / "home")}
    subprocess.run([SLEUTH, "index", str(corpus_dir)], check=True, capture_output=True, env=env, timeout=300)
    index = corpus_dir / ".sleuth" / "bm25"
    for name in ("indices.csc.index.npy", "data.csc.index.npy"):
        a = np.load(index / name).copy()
        a[: max(1, len(a) // 2)] = 2**30 if a.dtype.kind in "iu" else np.nan  # out of range / not finite
        np.save(index / name, a)

    async def main() -> list[float]:
        params = StdioServerParameters(command=SLEUTH, args=["mcp", "--corpus", str(corpus_dir), "--no-build-index"],
                                       env=env)
        async with Client(params, read_timeout_seconds=120) as client:
            latencies: list[float] = []
            done = anyio.Event()

            names = [t.name for t in (await client.list_tools()).tools]
            assert "search" not in names and "df" not in names, names  # the damaged index is never served
            assert client.instructions and "--rebuild" in client.instructions, client.instructions

            async def attack() -> None:
                for name, args in [("search", {"query": "quick brown fox"}), ("df", {"terms": ["fox"]})] * 3:
                    r = await client.call_tool(name, args)
                    assert r.is_error and "Traceback" not in _text(r), _text(r)[:500]
                done.set()

            async def read_loop() -> None:
                while not done.is_set():
                    t0 = time.perf_counter()
                    with anyio.fail_after(10):
                        r = await client.call_tool("read", {"doc_id": "notes/alpha.md"})
                    assert r.is_error is False and "quick brown fox" in _text(r)
                    latencies.append(time.perf_counter() - t0)
                    await anyio.sleep(0.05)

            async with anyio.create_task_group() as tg:
                tg.start_soon(attack)
                tg.start_soon(read_loop)
            r = await client.call_tool("grep", {"pattern": "fox"})  # still serving
            assert r.is_error is False and "alpha.md" in _text(r)
            return latencies

    latencies = anyio.run(main)
    assert latencies and max(latencies) < 10
