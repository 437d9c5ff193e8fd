"""`sleuth mcp` tested with the official MCP Python client, over stdio and streamable HTTP, against a real corpus.

The servers run as real subprocesses (the `sleuth` console script). Tests that need a call slow enough to
interrupt start the same server code with one extra tool (``sleep``): the server is built generically from sleuth
Tools, so an extra Tool is served exactly like grep or read.
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
    HttpServer as _HttpServer,
    free_port as _free_port,
    sleuth_stdio as _stdio,
    text_of as _text,
    write_corpus,
)

# A server with the corpus tools plus a slow tool, to interrupt calls mid-flight.
SLOW_SERVER = """
import sys, time
from sleuth.integrations import mcp_server
from sleuth.integrations.toolset import build_toolkit
from sleuth.tools.base import Tool, ToolArgs, ToolResult

class SleepArgs(ToolArgs):
    seconds: float = 1.0

def sleep(a):
    time.sleep(a.seconds)
    return ToolResult(text=f"slept {a.seconds}")

toolset = build_toolkit(sys.argv[1], extra_tools=[Tool("sleep", "Sleep a while.", SleepArgs, sleep)])
port = int(sys.argv[3]) if len(sys.argv) > 3 else 0
mcp_server.run(toolset.toolkit, transport=sys.argv[2], port=port)
"""

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


@pytest.fixture()
def http_server(corpus_dir: Path):  # type: ignore[no-untyped-def]
    port = _free_port()
    server = _HttpServer([SLEUTH, "mcp", "--corpus", str(corpus_dir), "--transport", "http", "--port", str(port)], port)
    yield server
    err = server.stop()
    assert "Traceback" not in err, err


@pytest.fixture()
def slow_http_server(corpus_dir: Path):  # type: ignore[no-untyped-def]
    port = _free_port()
    server = _HttpServer([sys.executable, "-c", SLOW_SERVER, str(corpus_dir), "http", str(port)], port)
    yield server
    err = server.stop()
    assert "Traceback" not in err, err


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


def test_http_two_clients_at_once(http_server: _HttpServer) -> None:
    async def session(tag: str, out: dict[str, list[str]]) -> None:
        async with Client(http_server.url, read_timeout_seconds=60) as client:
            names = [t.name for t in (await client.list_tools()).tools]
            assert {"ls", "grep", "read"} <= set(names)
            texts = []
            for _ in range(3):
                texts.append(_text(await client.call_tool("grep", {"pattern": "fox", "files_with_matches": True})))
                texts.append(_text(await client.call_tool("read", {"doc_id": "notes/beta.txt"})))
                texts.append(_text(await client.call_tool("search", {"query": "fox returns", "k": 2})))
            bad = await client.call_tool("read", {"doc_id": "../secret.txt"})
            assert bad.is_error is True
            out[tag] = texts

    async def main() -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        async with anyio.create_task_group() as tg:
            tg.start_soon(session, "a", out)
            tg.start_soon(session, "b", out)
        return out

    out = anyio.run(main)
    assert out["a"] == out["b"]
    assert "notes/alpha.md" in out["a"][0] and "notes/beta.txt" in out["a"][0]
    assert "42 units" in out["a"][1]
    assert "notes/beta.txt" in out["a"][2]
    assert http_server.proc.poll() is None


def test_http_client_disconnecting_mid_call_does_not_stop_other_clients(slow_http_server: _HttpServer) -> None:
    url = slow_http_server.url

    async def abandon() -> None:
        with anyio.move_on_after(0.5):
            async with Client(url, read_timeout_seconds=60) as client:
                await client.call_tool("sleep", {"seconds": 3})
                raise AssertionError("the call should have been abandoned")

    async def other(results: list[float]) -> None:
        async with Client(url, read_timeout_seconds=60) as client:
            t0 = time.perf_counter()
            slow = client.call_tool("sleep", {"seconds": 1})
            r = await slow
            assert _text(r) == "slept 1.0"
            ok = await client.call_tool("ls", {})
            assert "readme.txt" in _text(ok)
            results.append(time.perf_counter() - t0)

    async def main() -> list[float]:
        results: list[float] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(abandon)
            tg.start_soon(other, results)
        # and a fresh client after the disconnect
        async with Client(url, read_timeout_seconds=60) as client:
            r = await client.call_tool("read", {"doc_id": "notes/alpha.md"})
            assert "quick brown fox" in _text(r)
        return results

    results = anyio.run(main)
    assert results and results[0] < 2.5  # not queued behind the abandoned 3 s call
    assert slow_http_server.proc.poll() is None


def test_http_rejects_foreign_host_header(http_server: _HttpServer) -> None:
    import httpx

    r = httpx.post(
        http_server.url,
        headers={"Host": "evil.example", "Content-Type": "application/json", "Accept": "application/json"},
        content=b"{}",
        timeout=10,
    )
    assert r.status_code in (400, 403, 421)
    assert http_server.proc.poll() is None


TOKEN = "tok-" + "x7Qe" * 8
INITIALIZE = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "probe", "version": "0"}}}).encode()
MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}


@pytest.fixture()
def token_http_server(corpus_dir: Path):  # type: ignore[no-untyped-def]
    """On loopback, with a token (from SLEUTH_MCP_TOKEN) and one extra allowed host name."""
    port = _free_port()
    server = _HttpServer([SLEUTH, "mcp", "--corpus", str(corpus_dir), "--transport", "http", "--port", str(port),
                          "--allow-host", "sleuth.test"], port, env={"SLEUTH_MCP_TOKEN": TOKEN})
    yield server
    err = server.stop()
    assert "Traceback" not in err and TOKEN not in err, err


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (["--host", "0.0.0.0"], {}, "without --allow-host and a token"),
        (["--host", "0.0.0.0", "--allow-host", "box.lan"], {}, "without a token"),
        (["--host", "0.0.0.0"], {"SLEUTH_MCP_TOKEN": TOKEN}, "without --allow-host"),
        (["--host", "::", "--token", TOKEN], {}, "without --allow-host"),
        (["--host", "192.168.1.20", "--allow-host", "box.lan", "--token", "short"], {}, "too short"),
    ],
)
def test_http_on_a_non_loopback_host_is_refused_without_allow_list_and_token(
    corpus_dir: Path, args: list[str], env: dict[str, str], says: str
) -> None:
    port = _free_port()
    p = subprocess.run([SLEUTH, "mcp", "--corpus", str(corpus_dir), "--transport", "http", "--port", str(port), *args],
                       capture_output=True, text=True, timeout=60, env={**os.environ, "SLEUTH_MCP_TOKEN": "", **env})
    assert p.returncode == 2 and "ConfigError" in p.stderr and says in p.stderr, p.stderr
    assert "hint" in p.stderr and "sleuth MCP server on" not in p.stderr
    assert not (corpus_dir / ".sleuth").exists()  # refused before building anything


def test_http_with_a_token_refuses_requests_without_it(token_http_server: _HttpServer) -> None:
    import httpx

    url = token_http_server.url
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN},
                    {"Authorization": f"Basic {TOKEN}"}, {"Origin": "http://evil.example"}):
        r = httpx.post(url, headers={**MCP_HEADERS, **headers}, content=INITIALIZE, timeout=10)
        assert r.status_code == 401, (headers, r.status_code, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
    assert httpx.get(url, timeout=10).status_code == 401
    ok = httpx.post(url, headers={**MCP_HEADERS, "Authorization": f"Bearer {TOKEN}"}, content=INITIALIZE, timeout=10)
    assert ok.status_code == 200 and "sleuth" in ok.text
    # the token does not switch the Host/Origin checks off: a rebinding page that somehow had it is still refused
    bad_host = httpx.post(url, headers={**MCP_HEADERS, "Authorization": f"Bearer {TOKEN}", "Host": "evil.example"},
                          content=INITIALIZE, timeout=10)
    assert bad_host.status_code == 421
    bad_origin = httpx.post(url, headers={**MCP_HEADERS, "Authorization": f"Bearer {TOKEN}",
                                          "Origin": "http://evil.example"}, content=INITIALIZE, timeout=10)
    assert bad_origin.status_code == 403
    # an allowed host name is served (with the token)
    named = httpx.post(url, headers={**MCP_HEADERS, "Authorization": f"Bearer {TOKEN}",
                                     "Host": f"sleuth.test:{token_http_server.port}"}, content=INITIALIZE, timeout=10)
    assert named.status_code == 200
    assert token_http_server.proc.poll() is None


def test_http_client_with_the_token_uses_the_tools(token_http_server: _HttpServer) -> None:
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    async def main() -> str:
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {TOKEN}"})
        async with http, Client(streamable_http_client(token_http_server.url, http_client=http),
                                read_timeout_seconds=60) as client:
            assert "read" in [t.name for t in (await client.list_tools()).tools]
            return _text(await client.call_tool("read", {"doc_id": "notes/beta.txt"}))

    assert "42 units" in anyio.run(main)


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
