"""`sleuth mcp --transport http` (streamable HTTP), tested with the official MCP Python client: two clients at once,
a client disconnecting mid-call, Host checks, non-loopback refusal, and the bearer token."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("mcp", reason="the MCP server needs the `mcp` extra")

import anyio
from mcp import Client

from tests.integration.mcp_helpers import (
    SLEUTH,
    SLOW_SERVER,
    HttpServer as _HttpServer,
    free_port as _free_port,
    text_of as _text,
    write_corpus,
)


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
