"""The real embedded llama.cpp server only serves its owner (docs/SECURITY.md), measured with real HTTP
requests: loopback only; without the token every endpoint but /health answers 401, whatever the Origin or Host;
no Origin is echoed and credentials are never allowed (a browser page can neither call it nor read an answer);
with the token sleuth's client is served; the state file holding the token is owner-only; a crash restart is in
the trace. One server, started once for the module (the 0.5B model)."""

from __future__ import annotations

import json
import os
import signal
import stat
import time

import httpx
import pytest

from sleuth.errors import WeightsError
from sleuth.llm.client import LLM
from sleuth.llm.local import LocalServer
from sleuth.llm.serve import pid_alive
from sleuth.llm.weights import DEFAULT_WEIGHTS, ensure_weights
from sleuth.tracing.tracer import MemoryTracer

pytestmark = pytest.mark.model

CHAT = {"model": "local", "messages": [{"role": "user", "content": "Say OK."}], "max_tokens": 2}
EVIL = "http://evil.example"


@pytest.fixture(scope="module")
def server(tmp_path_factory):  # type: ignore[no-untyped-def]
    pytest.importorskip("xllamacpp", reason="needs the `local` extra")
    try:
        weights = ensure_weights(DEFAULT_WEIGHTS)
    except WeightsError as e:
        pytest.skip(f"embedded model weights not installed: {e}")
    s = LocalServer(weights, key="pytest-security", home=tmp_path_factory.mktemp("sleuth_home"), linger_s=1, n_ctx=512)
    s.ensure()
    yield s
    s.stop()
    s.release()


def _state(server: LocalServer) -> dict:
    state = server.read_state()
    assert state and state.get("token")
    return state


def test_loopback_only_and_the_state_file_is_owner_only(server: LocalServer) -> None:
    state = _state(server)
    assert state["url"].startswith("http://127.0.0.1:")
    assert stat.S_IMODE(server.state_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(server.dir.stat().st_mode) == 0o700


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("POST", "/v1/chat/completions", CHAT), ("POST", "/completion", {"prompt": "hi", "n_predict": 1}),
     ("POST", "/tokenize", {"content": "hi"}), ("GET", "/v1/models", None), ("GET", "/props", None),
     ("GET", "/slots", None), ("GET", "/metrics", None)],
)
def test_without_the_token_a_foreign_page_is_refused(server: LocalServer, method: str, path: str, body) -> None:
    url = _state(server)["url"]
    for headers in ({"Origin": EVIL}, {"Host": "evil.example"}, {"Origin": EVIL, "Authorization": "Bearer guess"},
                    {"Content-Type": "text/plain", "Origin": EVIL}):  # text/plain: a "simple" request, no preflight
        r = httpx.request(method, url + path, headers=headers, content=json.dumps(body) if body else None, timeout=60)
        assert r.status_code in (401, 404, 501), (path, headers, r.status_code, r.text[:200])
        assert r.headers.get("access-control-allow-origin", "") in ("", None), (path, r.headers)
        assert r.headers.get("access-control-allow-credentials", "false") != "true"


def test_preflight_allows_no_foreign_origin(server: LocalServer) -> None:
    r = httpx.options(_state(server)["url"] + "/v1/chat/completions", headers={
        "Origin": EVIL, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"}, timeout=30)
    assert r.headers.get("access-control-allow-origin", "") == ""
    assert r.headers.get("access-control-allow-credentials", "false") != "true"


def test_no_web_ui_and_health_says_nothing(server: LocalServer) -> None:
    url = _state(server)["url"]
    assert httpx.get(url + "/", timeout=30).status_code in (401, 404)
    health = httpx.get(url + "/health", headers={"Origin": EVIL}, timeout=30)
    assert health.status_code == 200 and set(health.json()) == {"status"}
    assert health.headers.get("access-control-allow-origin", "") == ""


def test_with_the_token_the_owner_is_served(server: LocalServer) -> None:
    state = _state(server)
    r = httpx.post(state["api_base"] + "/chat/completions", json=CHAT,
                   headers={"Authorization": f"Bearer {state['token']}"}, timeout=120)
    assert r.status_code == 200 and r.json()["choices"]
    model = LLM("local", local_server=server)
    assert model.chat(CHAT["messages"], max_tokens=2).content  # sleuth's client reads the token itself
    assert model.count_tokens("hello world") == 2


def test_a_crash_restart_is_in_the_trace(server: LocalServer) -> None:
    model = LLM("local", local_server=server)
    model.start()
    old = _state(server)
    os.kill(old["pid"], signal.SIGKILL)
    deadline = time.time() + 10
    while pid_alive(old["pid"]) and time.time() < deadline:
        time.sleep(0.1)
    tracer = MemoryTracer()
    assert model.chat(CHAT["messages"], max_tokens=2, tracer=tracer).content
    new = _state(server)
    assert new["token"] != old["token"] and new["pid"] != old["pid"]
    [note] = tracer.of_kind("note")
    assert note.name == "local_server" and note.data["old_pid"] == old["pid"] and note.data["new_pid"] == new["pid"]
    r = httpx.post(new["api_base"] + "/chat/completions", json=CHAT,
                   headers={"Authorization": f"Bearer {old['token']}"}, timeout=60)
    assert r.status_code == 401  # the old token died with the old server
