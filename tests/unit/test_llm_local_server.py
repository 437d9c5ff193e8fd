"""The real LocalServer and LLM client around a stand-in server program (tests/unit/fake_llama_serve.py: the same
flags, state file and token rule as the llama.cpp one, no model): the token travels from the owner-only state
file to every request, a crashed server is restarted and the trace says so, a server replaced by another process
(new token) is picked up. The real llama.cpp server's configuration is measured in tests/model."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from sleuth.llm.client import LLM
from sleuth.llm.local import LocalServer
from sleuth.llm.serve import pid_alive
from sleuth.tracing.tracer import MemoryTracer

FAKE_SERVE = [sys.executable, str(Path(__file__).with_name("fake_llama_serve.py"))]
MSGS = [{"role": "user", "content": "ping"}]


@pytest.fixture()
def server(tmp_path: Path):  # type: ignore[no-untyped-def]
    weights = tmp_path / "model.gguf"
    weights.write_bytes(b"GGUF")
    s = LocalServer(weights, key="local", home=tmp_path / "home", ready_timeout_s=30, serve_cmd=FAKE_SERVE)
    yield s
    s.stop()
    s.release()


def _wait_dead(pid: int) -> None:
    deadline = time.time() + 10
    while pid_alive(pid) and time.time() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pid)


def test_state_is_owner_only_and_the_token_reaches_every_request(server: LocalServer) -> None:
    model = LLM("local", local_server=server, max_retries=0)
    r = model.chat(MSGS)
    state = server.read_state()
    assert state and state["token"] and r.content == f"pong from {state['pid']}"
    assert stat.S_IMODE(server.state_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(server.dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(server.log_file.stat().st_mode) == 0o600
    assert model.count_tokens("hello world") == 2  # /tokenize answered: the token was sent there too
    st = server.status()
    assert st.healthy and st.token_required and state["token"] not in json.dumps(st.to_dict())
    # without the token the server refuses
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(urllib.request.Request(state["api_base"] + "/chat/completions", data=b"{}"), timeout=5)
    assert info.value.code == 401


def test_model_status_json_never_prints_the_token(server: LocalServer) -> None:
    server.ensure(lease=False)
    token = server.token
    assert token
    env = {**os.environ, "SLEUTH_HOME": str(server.dir.parent)}
    out = subprocess.run([sys.executable, "-m", "sleuth.cli.main", "model", "status", "--json"], env=env,
                         capture_output=True, text=True, timeout=60)
    st = json.loads(out.stdout)
    assert st["running"] and st["healthy"] and st["token_required"] and token not in out.stdout


def test_a_crashed_server_is_restarted_and_the_trace_says_so(server: LocalServer) -> None:
    model = LLM("local", local_server=server, max_retries=0)
    model.chat(MSGS)
    old = server.read_state()["pid"]  # type: ignore[index]
    os.kill(old, signal.SIGKILL)
    _wait_dead(old)
    tracer = MemoryTracer()
    r = model.chat(MSGS, tracer=tracer)
    new = server.read_state()["pid"]  # type: ignore[index]
    assert new != old and r.content == f"pong from {new}" and server.restarts == 1
    [note] = tracer.of_kind("note")
    assert note.name == "local_server" and note.data["old_pid"] == old and note.data["new_pid"] == new
    assert "restarted" in note.preview and note.data["reason"]
    assert [e.kind for e in tracer.events] == ["note", "llm"]  # the restart, then the call that succeeded


def test_a_dead_server_found_at_start_is_replaced_and_noted(server: LocalServer) -> None:
    server.ensure(lease=False)
    old = server.read_state()["pid"]  # type: ignore[index]
    os.kill(old, signal.SIGKILL)  # its state file stays behind, as after a crash
    _wait_dead(old)
    tracer = MemoryTracer()
    LLM("local", local_server=server, max_retries=0).chat(MSGS, tracer=tracer)
    [note] = tracer.of_kind("note")
    assert note.data["old_pid"] == old and note.data["reason"] == "had died" and note.data["new_pid"] != old


def test_a_server_replaced_by_another_process_is_picked_up_with_its_new_token(server: LocalServer) -> None:
    model = LLM("local", local_server=server, max_retries=0)
    model.chat(MSGS)
    first = server.read_state()
    other = LocalServer(server.model_path, key="local", home=server.dir.parent, serve_cmd=FAKE_SERVE)
    other.stop()
    _wait_dead(first["pid"])  # type: ignore[index]
    other.ensure(lease=False)  # a new server: new port, new token; this client still holds the old ones
    second = other.read_state()
    assert second and second["token"] != first["token"]  # type: ignore[index]
    r = model.chat(MSGS)
    assert r.content == f"pong from {second['pid']}"


def test_async_calls_use_the_token_and_restart_too(server: LocalServer) -> None:
    import asyncio

    model = LLM("local", local_server=server, max_retries=0)
    asyncio.run(model.achat(MSGS))
    old = server.read_state()["pid"]  # type: ignore[index]
    os.kill(old, signal.SIGKILL)
    _wait_dead(old)
    tracer = MemoryTracer()
    r = asyncio.run(model.achat(MSGS, tracer=tracer))
    assert r.content.startswith("pong from") and tracer.of_kind("note")[0].data["old_pid"] == old
