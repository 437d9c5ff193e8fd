"""`sleuth mcp` over stdio, tested with the official MCP Python client against a real corpus: every tool listed
and called, bad input as tool errors, confinement, cancellation, disconnects, the CLI's options, the real model.

The servers run as real subprocesses (the `sleuth` console script). Tests that need a call slow enough to
interrupt start the same server code with one extra tool (``sleep``, ``mcp_helpers.SLOW_SERVER``): the server is
built generically from sleuth Tools, so an extra Tool is served exactly like grep or read. HTTP:
``test_mcp_http.py``; bounded resources under hostile calls: ``test_mcp_faults.py``.
"""

from __future__ import annotations

import json
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

from tests.conftest import private_model
from tests.integration.mcp_helpers import (
    SECRET,
    SLEUTH,
    SLOW_SERVER,
    sleuth_stdio as _stdio,
    text_of as _text,
    write_corpus,
)

# Arguments that exercise each tool the server may list; a new tool must be added here to be tested.
TOOL_CALLS: dict[str, tuple[dict[str, Any], str]] = {
    "ls": ({}, "notes/alpha.md"),
    "grep": ({"pattern": "quick brown", "ignore_case": True}, "notes/alpha.md"),
    "read": ({"doc_id": "notes/beta.txt"}, "42 units"),
    "df": ({"terms": ["fox", "budget"]}, "'fox': 2"),
    "search": ({"query": "budget review", "k": 2}, "notes/beta.txt"),
}


@pytest.fixture()
def corpus_dir(tmp_path: Path) -> Path:
    return write_corpus(tmp_path)


# --- stdio --------------------------------------------------------------------------------------------------


def test_stdio_lists_every_tool_read_only_and_calls_each(corpus_dir: Path) -> None:
    async def main() -> None:
        async with Client(_stdio(corpus_dir), read_timeout_seconds=60) as client:
            assert client.instructions and str(corpus_dir.resolve()) in client.instructions
            listed = (await client.list_tools()).tools
            names = [t.name for t in listed]
            assert {"ls", "grep", "read", "df", "search"} <= set(names)
            for tool in listed:
                assert tool.input_schema["type"] == "object"
                assert tool.description
                assert tool.annotations is not None and tool.annotations.read_only_hint is True
                assert tool.name in TOOL_CALLS, f"add a call for the new tool {tool.name!r} to TOOL_CALLS"
                args, expected = TOOL_CALLS[tool.name]
                result = await client.call_tool(tool.name, args)
                assert result.is_error is False, _text(result)
                assert expected in _text(result), (tool.name, _text(result))
            # structured data comes along for clients that read it
            read = await client.call_tool("read", {"doc_id": "notes/alpha.md"})
            assert read.structured_content and read.structured_content["doc_id"] == "notes/alpha.md"
            found = await client.call_tool("search", {"query": "budget", "k": 1})
            assert found.structured_content["result"][0]["doc_id"] == "notes/beta.txt"  # lists are wrapped

    anyio.run(main)


BAD_CALLS = [
    ("nope", {}, "ToolArgumentError"),  # unknown tool
    ("grep", {}, "ToolArgumentError"),  # missing argument
    ("grep", {"pattern": "fox", "bogus": 1}, "ToolArgumentError"),  # unknown argument
    ("read", {"doc_id": 7}, "ToolArgumentError"),  # wrong type
    ("grep", {"pattern": "(unclosed"}, "InvalidPatternError"),
    ("read", {"doc_id": "../secret.txt"}, "PathOutsideCorpusError"),
    ("read", {"doc_id": "/etc/passwd"}, "PathOutsideCorpusError"),
    ("grep", {"pattern": "SECRET", "path": "../"}, "PathOutsideCorpusError"),
    ("read", {"doc_id": "notes/missing.md"}, "DocumentNotFoundError"),
    ("search", {"query": "fox", "method": "telepathy"}, "ToolArgumentError"),
    ("search", {"query": "fox", "k": 0}, "ToolArgumentError"),
    ("df", {"terms": []}, "ToolArgumentError"),
    # hostile arguments (issue #19): each a typed error, none echoed whole, no absolute path
    ("grep", {"pattern": "a\x00b"}, "ToolArgumentError"),
    ("grep", {"pattern": "x" * 5_000_000}, "ToolArgumentError"),
    ("grep", {"pattern": "fox", "glob": "[z-a]"}, "InvalidGlobError"),
    ("ls", {"glob": "{a,b"}, "InvalidGlobError"),
    ("read", {"doc_id": "n" * 300}, "DocumentNotFoundError"),
    ("read", {"doc_id": "x" * 20_000_000}, "ToolArgumentError"),
    ("grep", {"pattern": "SECRET", "path": ".hidden"}, "DocumentNotFoundError"),
    ("x" * 100_000, {}, "ToolArgumentError"),
]


def test_stdio_bad_input_is_a_tool_error_and_the_server_keeps_serving(corpus_dir: Path) -> None:
    async def main() -> None:
        async with Client(_stdio(corpus_dir), read_timeout_seconds=60) as client:
            for name, args, error_type in BAD_CALLS:
                bad = await client.call_tool(name, args)
                assert bad.is_error is True, (name, args)
                text = _text(bad)
                assert error_type in text, (name[:40], str(args)[:80], text[:300])
                assert SECRET not in text
                assert len(text) < 3000 and str(corpus_dir.parent) not in text and sys.prefix not in text
                assert bad.meta and bad.meta["sleuth"]["error_type"] == error_type
                ok = await client.call_tool("grep", {"pattern": "budget", "ignore_case": True})
                assert ok.is_error is False and "notes/beta.txt" in _text(ok)

    anyio.run(main)


def test_stdio_nothing_outside_the_corpus_or_hidden_is_reachable(corpus_dir: Path) -> None:
    async def main() -> None:
        async with Client(_stdio(corpus_dir), read_timeout_seconds=60) as client:
            listing = _text(await client.call_tool("ls", {"limit": 1000}))
            assert ".hidden" not in listing and "secret" not in listing
            found = await client.call_tool("grep", {"pattern": "TOPSECRET-7f3."})  # the echo must not match
            assert SECRET not in _text(found) and "secret.txt" not in _text(found)
            hidden = await client.call_tool("read", {"doc_id": ".hidden/secret.txt"})
            assert SECRET not in _text(hidden)
            for glob in ["*", "**", ".*", ".hidden/**", "{.hidden/*,x}"]:
                for call in ({"pattern": "TOPSECRET"}, {"pattern": "TOPSECRET", "files_with_matches": True}):
                    found = await client.call_tool("grep", {**call, "glob": glob})
                    assert SECRET not in _text(found) and "secret.txt" not in _text(found), glob
                assert ".hidden" not in _text(await client.call_tool("ls", {"glob": glob}))

    anyio.run(main)


def test_stdio_cancelled_call_leaves_the_session_serving(corpus_dir: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable, args=["-c", SLOW_SERVER, str(corpus_dir), "stdio"], env=dict(os.environ)
    )

    async def main() -> None:
        async with Client(params, read_timeout_seconds=60) as client:
            t0 = time.perf_counter()
            with anyio.move_on_after(0.5):
                await client.call_tool("sleep", {"seconds": 5})
            assert time.perf_counter() - t0 < 3
            ok = await client.call_tool("read", {"doc_id": "readme.txt"})
            assert ok.is_error is False and "small corpus" in _text(ok)
            assert time.perf_counter() - t0 < 4  # served while the abandoned call still sleeps

    anyio.run(main)


def test_stdio_client_disconnecting_mid_call_ends_the_server_cleanly(corpus_dir: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_SERVER, str(corpus_dir), "stdio"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin and proc.stdout

    def send(obj: dict[str, Any]) -> None:
        proc.stdin.write((json.dumps(obj) + "\n").encode())  # type: ignore[union-attr]
        proc.stdin.flush()  # type: ignore[union-attr]

    send(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}
            },
        }
    )
    init = json.loads(proc.stdout.readline())
    assert init["result"]["serverInfo"]["name"] == "sleuth"
    send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    send({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "sleep", "arguments": {"seconds": 2}}})
    time.sleep(0.5)
    proc.stdin.close()  # the client goes away mid-call
    try:
        rc = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = proc.stderr.read().decode(errors="replace")  # type: ignore[union-attr]
    assert rc == 0, err
    assert "Traceback" not in err


def test_cli_rejects_bad_options(corpus_dir: Path, tmp_path: Path) -> None:
    missing = subprocess.run([SLEUTH, "mcp", "--corpus", str(tmp_path / "nope")], capture_output=True, text=True)
    assert missing.returncode == 2 and "CorpusNotFoundError" in missing.stderr
    assert missing.stdout == ""  # stdout is the protocol channel
    unknown = subprocess.run(
        [SLEUTH, "mcp", "--corpus", str(corpus_dir), "--tools", "grep,teleport"], capture_output=True, text=True
    )
    assert unknown.returncode == 2 and "teleport" in unknown.stderr
    transport = subprocess.run(
        [SLEUTH, "mcp", "--corpus", str(corpus_dir), "--transport", "carrier-pigeon"], capture_output=True, text=True
    )
    assert transport.returncode == 2


def test_stdio_without_an_index_search_is_omitted_and_said_so(corpus_dir: Path) -> None:
    async def main() -> None:
        async with Client(_stdio(corpus_dir, "--no-build-index"), read_timeout_seconds=60) as client:
            names = [t.name for t in (await client.list_tools()).tools]
            assert names == ["ls", "grep", "read"]
            assert client.instructions and "sleuth index" in client.instructions
            miss = await client.call_tool("search", {"query": "fox"})
            assert miss.is_error is True and "unknown tool" in _text(miss)
            state = corpus_dir / ".sleuth"
            assert not state.exists() or not any(state.iterdir())  # no index written

    anyio.run(main)


def test_stdio_tools_option_limits_the_listing(corpus_dir: Path) -> None:
    async def main() -> None:
        async with Client(_stdio(corpus_dir, "--tools", "read,ls"), read_timeout_seconds=60) as client:
            assert [t.name for t in (await client.list_tools()).tools] == ["read", "ls"]
            grep = await client.call_tool("grep", {"pattern": "fox"})
            assert grep.is_error is True and "unknown tool" in _text(grep)

    anyio.run(main)


# --- streamable HTTP ----------------------------------------------------------------------------------------


def test_stdio_stdout_carries_only_the_protocol(corpus_dir: Path) -> None:
    """Nothing but protocol messages may reach stdout on the stdio transport (a stray print breaks clients)."""
    proc = subprocess.run(
        [SLEUTH, "mcp", "--corpus", str(corpus_dir)],
        input=b"",
        capture_output=True,
        timeout=60,
        env={**os.environ, "PYTHONWARNINGS": "default"},
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == b""


# --- with the embedded model: rerank and ask ---------------------------------------------------------------


@pytest.mark.model
@pytest.mark.slow
def test_stdio_rerank_and_ask_with_the_local_model(sample_corpus: Path, tmp_path: Path) -> None:
    """rerank and ask with the embedded model: `ask` sends a progress notification per agent step while it runs,
    and a second `ask` cancelled after its first step stops (the server logs it) while `read` is still answered."""
    from mcp.client.stdio import stdio_client

    spec, env = private_model(tmp_path)
    params = _stdio(sample_corpus, "--model", spec, "--tools", "rerank,ask,read", "--budget", "steps=3,seconds=900",
                    "--log-level", "info")
    params = params.model_copy(update={"env": env})
    server_log = tmp_path / "server.log"

    async def main() -> None:
        with server_log.open("w") as errlog:
            async with Client(stdio_client(params, errlog=errlog), read_timeout_seconds=1200) as client:
                await session(client)

    async def session(client: Client) -> None:
        assert [t.name for t in (await client.list_tools()).tools] == ["rerank", "ask", "read"]
        ranked = await client.call_tool(
            "rerank",
            {"query": "Who designed the Kestrel Bridge?",
             "doc_ids": ["places/saltmarsh.md", "projects/kestrel_bridge.txt", "people/greta_lind.md"]},
        )
        assert ranked.is_error is False, _text(ranked)
        listed = [line.split(". ", 1)[1] for line in _text(ranked).splitlines()[1:]]
        assert sorted(listed) == sorted(
            ["places/saltmarsh.md", "projects/kestrel_bridge.txt", "people/greta_lind.md"]
        )
        bad = await client.call_tool("rerank", {"query": "x", "doc_ids": ["../etc/passwd"]})
        assert bad.is_error is True and "PathOutsideCorpusError" in _text(bad)
        seen: list[tuple[float, str]] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            seen.append((time.monotonic(), message or ""))

        answer = await client.call_tool("ask", {"question": "Who designed the Kestrel Bridge?", "agent": "react"},
                                        progress_callback=on_progress)
        done = time.monotonic()
        assert answer.is_error is False, _text(answer)
        assert "Sources:" in _text(answer)
        steps = [m for _, m in seen if m.startswith("#")]
        assert steps and steps[0].startswith("#1 call_model"), [m for _, m in seen]
        assert done - seen[0][0] > 1.0  # the first arrived while the run went on, not with the answer
        # cancel a second run after its first step: it stops, and the session goes on serving
        seen.clear()
        with anyio.CancelScope() as scope:
            async def cancel_after_first_step() -> None:
                while not any(m.startswith("#") for _, m in seen):
                    await anyio.sleep(0.1)
                scope.cancel()

            async with anyio.create_task_group() as tg:
                tg.start_soon(cancel_after_first_step)
                await client.call_tool("ask", {"question": "Where was the designer of the Kestrel Bridge born?",
                                               "agent": "react"}, progress_callback=on_progress)
                raise AssertionError("the ask was not cancelled")
        t1 = time.monotonic()
        ok = await client.call_tool("read", {"doc_id": "projects/kestrel_bridge.txt"})
        assert ok.is_error is False and time.monotonic() - t1 < 10
        deadline = time.monotonic() + 300  # a model call in flight at the cancel finishes first
        while "ask stopped after it was cancelled" not in server_log.read_text():
            assert time.monotonic() < deadline, server_log.read_text()[-2000:]
            await anyio.sleep(1)

    anyio.run(main)


# --- bounded resources under hostile calls (issue #19) -----------------------------------------------------
