"""MCP for hosts that wait, with the official MCP Python client over stdio and streamable HTTP: progress
notifications during a long `ask`, a cancelled `ask` that stops (no model call after it, no worker left, the next
call answered), `outputSchema` on every tool with structured content that validates, the documents as resources,
the search-strategy prompts, and a result larger than the host's message limit.

`ask` is sleuth's real react agent over the real corpus tools; only its model is scripted (each call sleeps and is
logged; tests/integration/mcp_scripted_server.py), so a run is long without a real model. The real-model version is
tests/integration/test_mcp_server.py::test_stdio_rerank_and_ask_with_the_local_model.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp", reason="the MCP server needs the `mcp` extra")

import anyio
import jsonschema
from mcp import Client
from mcp.shared.exceptions import MCPError

from tests.integration.mcp_helpers import (
    SCRIPTED_SERVER,
    SECRET,
    SLEUTH,
    HttpServer,
    free_port,
    scripted_stdio,
    sleuth_stdio,
    text_of,
    write_bridge_corpus,
)

QUESTION = "Who designed the Kestrel Bridge?"
INVALID_PARAMS = -32602


@pytest.fixture()
def corpus_dir(tmp_path: Path) -> Path:
    return write_bridge_corpus(tmp_path)


def _calls(log: Path) -> list[float]:
    return [float(x) for x in log.read_text().split()] if log.exists() else []


class Progress:
    """A progress callback that records (time, progress, message)."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, float, str | None]] = []

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.seen.append((time.monotonic(), progress, message))

    @property
    def messages(self) -> list[str]:
        return [m or "" for _, _, m in self.seen]


async def _ask_with_progress(client: Client) -> tuple[Any, Progress, float, float]:
    progress = Progress()
    t0 = time.monotonic()
    result = await client.call_tool("ask", {"question": QUESTION, "agent": "react"}, progress_callback=progress)
    return result, progress, t0, time.monotonic()


def _check_progress(result: Any, progress: Progress, t0: float, t1: float) -> None:
    assert result.is_error is False, text_of(result)
    assert "Bram Okafor" in text_of(result) and result.structured_content["answer"] == "Bram Okafor"
    values = [p for _, p, _ in progress.seen]
    assert values == sorted(values) and len(set(values)) == len(values)  # strictly increasing
    steps = [m for m in progress.messages if m.startswith("#")]
    assert any("call_model: calls grep" in m for m in steps), progress.messages
    assert any("run_tools" in m for m in steps), progress.messages
    # they arrive while the call runs (3 model calls of 1 s each), not with the answer
    first = progress.seen[0][0]
    assert first - t0 < 2.5 and t1 - first > 1.0, (first - t0, t1 - first)


def test_stdio_ask_sends_progress_while_it_runs(corpus_dir: Path) -> None:
    async def main() -> tuple[Any, Progress, float, float]:
        async with Client(scripted_stdio(corpus_dir, "--delay", "1", "--steps", "2"), read_timeout_seconds=120) as c:
            return await _ask_with_progress(c)

    _check_progress(*anyio.run(main))


def test_http_ask_sends_progress_while_it_runs(corpus_dir: Path) -> None:
    port = free_port()
    server = HttpServer([sys.executable, SCRIPTED_SERVER, str(corpus_dir),
                         "--transport", "http", "--port", str(port), "--delay", "1", "--steps", "2"], port)
    try:
        async def main() -> tuple[Any, Progress, float, float]:
            async with Client(server.url, read_timeout_seconds=120) as c:
                return await _ask_with_progress(c)

        _check_progress(*anyio.run(main))
    finally:
        err = server.stop()
    assert "Traceback" not in err, err


def test_a_quiet_tool_gets_heartbeats(corpus_dir: Path) -> None:
    """A tool that reports nothing still sends progress every --progress-interval seconds while it runs."""

    async def main() -> Progress:
        params = scripted_stdio(corpus_dir, "--progress-interval", "0.5")
        async with Client(params, read_timeout_seconds=60) as c:
            progress = Progress()
            r = await c.call_tool("sleep", {"seconds": 2.2}, progress_callback=progress)
            assert text_of(r) == "slept 2.2"
            fast = Progress()
            await c.call_tool("read", {"doc_id": "readme.txt"}, progress_callback=fast)
            assert fast.seen == []  # a quick call sends none
            return progress

    progress = anyio.run(main)
    assert 3 <= len(progress.seen) <= 5, progress.messages
    assert all(m.startswith("sleep: working, ") for m in progress.messages)


# --- cancellation ---------------------------------------------------------------------------------------------


async def _cancel_ask_after_progress(client: Client, n_messages: int = 2) -> float:
    """Start an endless ask, cancel it once ``n_messages`` progress messages arrived; the time of the cancel."""
    progress = Progress()
    with anyio.CancelScope() as scope:
        async def watch() -> None:
            while len(progress.seen) < n_messages:
                await anyio.sleep(0.05)
            scope.cancel()

        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            await client.call_tool("ask", {"question": QUESTION, "agent": "react"}, progress_callback=progress)
            raise AssertionError("the endless ask returned")
    return time.monotonic()


def _check_stopped(calls_log: Path, server_log: Path, cancelled_at_wall: float) -> None:
    calls = _calls(calls_log)
    assert calls, "the model was never called"
    # the model call in flight at the cancel started before it; none after (0.3 s for the cancel to reach the server)
    assert not [t for t in calls if t > cancelled_at_wall + 0.3], (calls, cancelled_at_wall)
    deadline = time.monotonic() + 10
    while "ask stopped after it was cancelled" not in server_log.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "ask stopped after it was cancelled (cancelled by the client)" in server_log.read_text()
    assert "abandoned" not in server_log.read_text()


def test_stdio_cancelled_ask_stops_and_the_next_call_is_answered(corpus_dir: Path, tmp_path: Path) -> None:
    calls_log, server_log = tmp_path / "calls.log", tmp_path / "server.log"
    params = scripted_stdio(corpus_dir, "--delay", "1", "--steps", "0", "--calls-log", str(calls_log),
                            "--log", str(server_log))

    async def main() -> float:
        async with Client(params, read_timeout_seconds=60) as c:
            t0 = time.monotonic()
            await _cancel_ask_after_progress(c)
            wall = time.time()
            assert time.monotonic() - t0 < 20
            t1 = time.monotonic()
            r = await c.call_tool("read", {"doc_id": "readme.txt"})
            assert r.is_error is False and "small corpus" in text_of(r) and time.monotonic() - t1 < 3
            await anyio.sleep(3)  # an ask still running would have made three more model calls by now
            again = await c.call_tool("ls", {})  # the session still serves
            assert "readme.txt" in text_of(again)
            return wall

    wall = anyio.run(main)
    _check_stopped(calls_log, server_log, wall)


def test_http_cancelled_ask_stops_and_the_next_call_is_answered(corpus_dir: Path, tmp_path: Path) -> None:
    calls_log, server_log = tmp_path / "calls.log", tmp_path / "server.log"
    port = free_port()
    server = HttpServer([sys.executable, SCRIPTED_SERVER, str(corpus_dir),
                         "--transport", "http", "--port", str(port), "--delay", "1", "--steps", "0",
                         "--calls-log", str(calls_log), "--log", str(server_log)], port)
    try:
        async def main() -> float:
            async with Client(server.url, read_timeout_seconds=60) as c:
                await _cancel_ask_after_progress(c)
                wall = time.time()
            async with Client(server.url, read_timeout_seconds=60) as c:  # a new client after the cancel
                t1 = time.monotonic()
                r = await c.call_tool("read", {"doc_id": "readme.txt"})
                assert r.is_error is False and time.monotonic() - t1 < 3
            await anyio.sleep(3)
            return wall

        wall = anyio.run(main)
        _check_stopped(calls_log, server_log, wall)
        assert server.proc.poll() is None
    finally:
        err = server.stop()
    assert "Traceback" not in err, err


def test_in_process_cancel_leaves_no_worker_thread_and_frees_the_slot(corpus_dir: Path) -> None:
    """In one process the worker threads can be looked at: after the cancel none runs the call, and with one slot
    only, the next call is served at once (the slot was freed)."""
    from sleuth.integrations import mcp_calls, mcp_server
    from sleuth.integrations.toolset import build_toolkit
    from sleuth.llm.fake import ScriptedModel, tool

    calls: list[float] = []

    def slow(messages: Any, tools: Any) -> Any:
        calls.append(time.monotonic())
        time.sleep(0.5)
        return tool("grep", pattern="Kestrel")

    from sleuth.agents.budget import Budget

    toolset = build_toolkit(corpus_dir, model=ScriptedModel(default=slow),
                            budget=Budget(max_steps=1000, max_tokens=None, max_seconds=None))
    server = mcp_server.build_server(toolset.toolkit, corpus=toolset.corpus, max_concurrent_calls=1)

    def workers() -> list[str]:
        return [t.name for t in threading.enumerate() if t.name.startswith(mcp_calls.THREAD_PREFIX)]

    async def main() -> None:
        async with Client(server) as c:
            progress = Progress()
            with anyio.move_on_after(1.8):
                await c.call_tool("ask", {"question": QUESTION, "agent": "react"}, progress_callback=progress)
            stopped = time.monotonic()
            assert progress.seen and not workers()
            n = len(calls)
            t1 = time.monotonic()
            r = await c.call_tool("read", {"doc_id": "readme.txt"})
            assert r.is_error is False and time.monotonic() - t1 < 1.0
            await anyio.sleep(1.5)
            assert len(calls) == n and not [t for t in calls if t > stopped]

    anyio.run(main)


# --- outputSchema ---------------------------------------------------------------------------------------------

# Every tool the scripted server lists, with calls that cover its result shapes.
SCHEMA_CALLS: dict[str, list[dict[str, Any]]] = {
    "ls": [{}, {"glob": "*.md"}, {"glob": "nothing*"}, {"limit": 1}],
    "grep": [{"pattern": "fox"}, {"pattern": "fox", "files_with_matches": True}, {"pattern": "fox", "count": True},
             {"pattern": "fox", "context": 1}, {"pattern": "no such words"}],
    "read": [{"doc_id": "notes/beta.txt"}, {"doc_id": "notes/beta.txt", "start_line": 2, "end_line": 2}],
    "df": [{"terms": ["fox", "budget review", "zebra"]}],
    "search": [{"query": "budget review", "k": 2}, {"query": "the"}],
    "rerank": [{"query": "budget", "doc_ids": ["notes/alpha.md", "notes/beta.txt"]}],
    "ask": [{"question": QUESTION, "agent": "react"}],
    "wait": [{"seconds": 0.1}],
    "sleep": [{"seconds": 0.1}],
}


def test_every_tool_has_an_output_schema_and_its_results_validate(corpus_dir: Path) -> None:
    async def main() -> None:
        async with Client(scripted_stdio(corpus_dir, "--delay", "0", "--steps", "1"), read_timeout_seconds=120) as c:
            listed = {t.name: t for t in (await c.list_tools()).tools}
            assert set(listed) == set(SCHEMA_CALLS), sorted(listed)
            for name, tool in listed.items():
                if name in ("wait", "sleep"):  # the test's own tools declare no output type
                    assert tool.output_schema is None
                    continue
                schema = tool.output_schema
                assert schema is not None and schema["type"] == "object", name
                jsonschema.Draft202012Validator.check_schema(schema)
                for args in SCHEMA_CALLS[name]:
                    r = await c.call_tool(name, args)  # the client validates too, and raises on a mismatch
                    assert r.is_error is False, (name, args, text_of(r))
                    jsonschema.validate(r.structured_content, schema)
                    if name in ("search", "rerank"):  # lists come wrapped
                        assert set(r.structured_content) == {"result"}
            bad = await c.call_tool("read", {"doc_id": "../secret.txt"})  # an error result carries no structured data
            assert bad.is_error is True and bad.structured_content is None

    anyio.run(main)


# --- resources ------------------------------------------------------------------------------------------------


def test_resources_list_in_pages_never_hidden_and_read_back(corpus_dir: Path) -> None:
    for i in range(230):
        (corpus_dir / "many" / f"doc {i:03d} #é.txt").parent.mkdir(exist_ok=True)
        (corpus_dir / "many" / f"doc {i:03d} #é.txt").write_text(f"document number {i}\n")
    (corpus_dir / ".env").write_text(f"KEY={SECRET}\n")

    async def main() -> None:
        async with Client(sleuth_stdio(corpus_dir, "--no-build-index"), read_timeout_seconds=60) as c:
            templates = (await c.list_resource_templates()).resource_templates
            assert [t.uri_template for t in templates] == ["sleuth://doc/{id}"]
            uris: list[str] = []
            cursor = None
            pages = 0
            while True:
                page = await c.list_resources(cursor=cursor)
                assert len(page.resources) <= 100
                uris += [r.uri for r in page.resources]
                pages += 1
                cursor = page.next_cursor
                if not cursor:
                    break
            assert pages == 3 and len(uris) == len(set(uris)) == 234  # 230 + alpha, beta, readme, kestrel_bridge
            listed = json.loads(json.dumps(uris))
            ls = await c.call_tool("ls", {"limit": 1000})
            ids = ls.structured_content["doc_ids"]
            assert [u.removeprefix("sleuth://doc/") for u in listed] != ids  # percent-encoded ...
            from urllib.parse import unquote

            assert [unquote(u.removeprefix("sleuth://doc/")) for u in listed] == ids  # ... the same documents
            assert not any(".hidden" in u or ".env" in u for u in uris)
            for uri in (uris[0], uris[-1], "sleuth://doc/notes/alpha.md", "sleuth://doc/notes%2Falpha.md"):
                got = (await c.read_resource(uri)).contents[0]
                doc_id = unquote(uri.removeprefix("sleuth://doc/"))
                assert got.text == (corpus_dir / doc_id).read_text()
            alpha = (await c.read_resource("sleuth://doc/notes/alpha.md")).contents[0]
            assert alpha.mime_type == "text/markdown"

    anyio.run(main)


BAD_RESOURCES = [
    ("sleuth://doc/../secret.txt", "PathOutsideCorpusError"),
    ("sleuth://doc/%2e%2e/secret.txt", "PathOutsideCorpusError"),
    ("sleuth://doc/notes/..%2F..%2Fsecret.txt", "PathOutsideCorpusError"),
    ("sleuth://doc//etc/passwd", "PathOutsideCorpusError"),
    ("sleuth://doc/.hidden/secret.txt", "DocumentNotFoundError"),
    ("sleuth://doc/.env", "DocumentNotFoundError"),
    ("sleuth://doc/notes/missing.md", "DocumentNotFoundError"),
    ("sleuth://doc/", "DocumentNotFoundError"),
    ("sleuth://doc/a%00b", "PathOutsideCorpusError"),
    ("sleuth://doc/%ff%fe.txt", "not UTF-8"),
    ("file:///etc/passwd", "unknown resource"),
    ("sleuth://doc/notes/alpha.md?x=1", "takes no query"),
    ("sleuth://doc/" + "x" * 20_000, "too long"),
]


def test_bad_resource_uris_are_errors_that_reveal_nothing(corpus_dir: Path) -> None:
    (corpus_dir / ".env").write_text(f"KEY={SECRET}\n")

    async def main() -> None:
        async with Client(sleuth_stdio(corpus_dir, "--no-build-index"), read_timeout_seconds=60) as c:
            for uri, says in BAD_RESOURCES:
                with pytest.raises(MCPError) as err:
                    await c.read_resource(uri)
                assert err.value.code == INVALID_PARAMS, uri
                assert says in err.value.message, (uri[:60], err.value.message)
                assert SECRET not in err.value.message and str(corpus_dir.parent) not in err.value.message
                assert len(err.value.message) < 3000
            with pytest.raises(MCPError) as err:
                await c.list_resources(cursor="not a cursor!")
            assert err.value.code == INVALID_PARAMS and "cursor" in err.value.message
            ok = await c.read_resource("sleuth://doc/readme.txt")  # still serving
            assert "small corpus" in ok.contents[0].text

    anyio.run(main)


# --- prompts --------------------------------------------------------------------------------------------------


def test_prompts_list_and_get(corpus_dir: Path) -> None:
    async def main() -> None:
        async with Client(sleuth_stdio(corpus_dir), read_timeout_seconds=60) as c:
            prompts = {p.name: p for p in (await c.list_prompts()).prompts}
            assert set(prompts) == {"answer", "find-documents"}
            assert [a.name for a in prompts["answer"].arguments or []] == ["question", "strategy"]
            texts = {}
            for strategy in ("react", "iter-retgen", "sira"):
                got = await c.get_prompt("answer", {"question": QUESTION, "strategy": strategy})
                assert len(got.messages) == 1 and got.messages[0].role == "user"
                texts[strategy] = got.messages[0].content.text
                assert QUESTION in texts[strategy] and "search" in texts[strategy]
                assert "ls, grep, read, df, search" in texts[strategy]  # the tools this server serves
            assert len(set(texts.values())) == 3
            assert "df" in texts["sira"] and "phrases" in texts["sira"]
            default = await c.get_prompt("answer", {"question": QUESTION})
            assert default.messages[0].content.text == texts["react"]
            found = await c.get_prompt("find-documents", {"topic": "the budget", "k": "3"})
            assert "the budget" in found.messages[0].content.text and "at most 3" in found.messages[0].content.text
            for name, args, says in [("answer", {}, "needs a question"),
                                     ("answer", {"question": "x", "strategy": "telepathy"}, "unknown strategy"),
                                     ("find-documents", {"topic": "x", "k": "-1"}, "whole number"),
                                     ("answer", {"question": "x" * 20_000}, "longer than"),
                                     ("nope", {}, "unknown prompt")]:
                with pytest.raises(MCPError) as err:
                    await c.get_prompt(name, args)
                assert err.value.code == INVALID_PARAMS and says in err.value.message, (name, err.value.message)

    anyio.run(main)


# --- a result larger than the host's message limit ------------------------------------------------------------


def test_huge_results_are_bounded_say_so_and_still_validate(corpus_dir: Path) -> None:
    big = "".join(f"line {i}: " + "lorem ipsum dolor sit amet " * 8 + "\n" for i in range(20_000))  # 4.5 MB
    (corpus_dir / "big.txt").write_text(big)
    for i in range(3000):
        (corpus_dir / "ids" / f"{'n' * 150}{i:04d}.txt").parent.mkdir(exist_ok=True)
        (corpus_dir / "ids" / f"{'n' * 150}{i:04d}.txt").write_text("x\n")
    limit = 20_000

    async def main() -> None:
        async with Client(sleuth_stdio(corpus_dir, "--no-build-index", "--max-result-chars", str(limit)),
                          read_timeout_seconds=120) as c:
            schemas = {t.name: t.output_schema for t in (await c.list_tools()).tools}
            for name, args in [("read", {"doc_id": "big.txt", "max_chars": 1_000_000}),
                               ("ls", {"limit": 100_000}),
                               ("grep", {"pattern": "lorem", "max_matches": 2000, "max_chars": 500_000})]:
                r = await c.call_tool(name, args)
                assert r.is_error is False, text_of(r)[:300]
                text = text_of(r)
                size = len(text) + len(json.dumps(r.structured_content, ensure_ascii=False, separators=(",", ":")))
                assert size <= limit, (name, size)
                assert "[result cut to fit the message limit of 20,000 characters" in text, text[-400:]
                assert r.meta and r.meta["sleuth"]["truncated"] is True
                jsonschema.validate(r.structured_content, schemas[name])
            doc = (await c.read_resource("sleuth://doc/big.txt")).contents[0]
            assert len(doc.text) < limit + 300 and big.startswith(doc.text.split("\n[truncated: ")[0])
            assert "read on with the read tool" in doc.text and doc.meta and doc.meta["sleuth"]["truncated"] is True
            small = await c.call_tool("read", {"doc_id": "readme.txt"})
            assert "cut to fit" not in text_of(small) and not (small.meta or {}).get("sleuth", {}).get("truncated")

    anyio.run(main)


def test_cli_rejects_a_max_result_chars_too_small(corpus_dir: Path) -> None:
    import subprocess

    p = subprocess.run([SLEUTH, "mcp", "--corpus", str(corpus_dir), "--max-result-chars", "10"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "max-result-chars" in p.stderr and p.stdout == ""
