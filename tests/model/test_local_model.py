"""The real embedded model (Qwen2.5-Coder-0.5B on xllamacpp's llama.cpp server): chat, tool call, structured output,
usage against the server's own numbers, sharing between processes, crash restart, no orphans, bad weights.

Each test module run uses its own SLEUTH_HOME server folder (the weights come from the normal cache)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from pydantic import BaseModel

from sleuth.errors import WeightsError
from sleuth.llm.base import ChatModel
from sleuth.llm.client import LLM
from sleuth.llm.local import LocalServer
from sleuth.llm.serve import pid_alive
from sleuth.llm.weights import DEFAULT_WEIGHTS, KNOWN_WEIGHTS, WeightsSpec, ensure_weights
from sleuth.tracing.tracer import MemoryTracer

pytestmark = pytest.mark.model

TOOLS = [
    {"type": "function", "function": {"name": "grep", "description": "Search the documents for a regex pattern.",
     "parameters": {"type": "object", "properties": {"pattern": {"type": "string"}}, "required": ["pattern"],
                    "additionalProperties": False}}},
    {"type": "function", "function": {"name": "answer", "description": "Give the final answer to the user.",
     "parameters": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"],
                    "additionalProperties": False}}},
]


@pytest.fixture(scope="module")
def weights():
    try:
        return ensure_weights(DEFAULT_WEIGHTS)
    except WeightsError as e:
        pytest.skip(f"embedded model weights not installed: {e}")


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("sleuth_home")


@pytest.fixture(scope="module")
def model(weights, home):
    server = LocalServer(weights, key="pytest", home=home, linger_s=1)
    m = LLM("local", local_server=server)
    yield m
    server.stop()


def test_chat_with_logprobs(model):
    assert isinstance(model, ChatModel)
    tracer = MemoryTracer()
    r = model.chat([{"role": "user", "content": "What is the capital of France? Answer with one word."}],
                   max_tokens=8, logprobs=True, top_logprobs=3, tracer=tracer)
    assert "paris" in r.content.lower()
    assert r.usage.token_source == "provider" and r.usage.prompt_tokens > 10 and r.usage.completion_tokens >= 1
    assert r.usage.cost == "unmeasured"
    assert r.logprobs and r.logprobs[0].token.strip().lower().startswith("par") and len(r.logprobs[0].top) == 3
    assert tracer.of_kind("llm")[0].usage == r.usage


def test_tool_call_through_the_constrained_fallback(model):
    r = model.chat(
        [{"role": "system", "content": "You search a folder of log files with tools."},
         {"role": "user", "content": "Find the lines that mention 'disk full'."}],
        tools=TOOLS, max_tokens=48,
    )
    assert len(r.tool_calls) == 1
    call = r.tool_calls[0]
    assert call.name in ("grep", "answer") and call.parse_error is None
    if call.name == "grep":
        assert "disk" in call.arguments["pattern"].lower()


class City(BaseModel):
    city: str
    country: str


def test_structured_output(model):
    value, r = model.structured([{"role": "user", "content": "Which city is the capital of Japan? Give the city "
                                  "and its country."}], City, max_tokens=40)
    assert value.city.lower() == "tokyo" and value.country.lower() == "japan"
    assert r.usage.calls >= 1


def test_usage_matches_the_server_report(model):
    from openai import OpenAI

    msgs = [{"role": "user", "content": "Count from one to five in words."}]
    r = model.chat(msgs, max_tokens=20)
    raw = OpenAI(base_url=model.start(), api_key=model.server.token).chat.completions.create(
        model="local", messages=msgs, max_tokens=20, temperature=0.0)
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (raw.usage.prompt_tokens, raw.usage.completion_tokens)
    assert r.content == raw.choices[0].message.content
    assert model.count_tokens("hello world") == 2  # the server's own tokenizer


def test_crashed_server_is_restarted_once(model):
    model.start()
    pid = model.server.read_state()["pid"]
    os.kill(pid, signal.SIGKILL)
    deadline = time.time() + 10
    while pid_alive(pid) and time.time() < deadline:
        time.sleep(0.1)
    r = model.chat([{"role": "user", "content": "Say OK."}], max_tokens=4)
    assert r.content
    assert model.server.restarts == 1 and model.server.read_state()["pid"] != pid


CLIENT = textwrap.dedent("""
    import sys
    from pathlib import Path
    from sleuth.llm.local import LocalServer
    s = LocalServer(Path(sys.argv[1]), key="shared", home=Path(sys.argv[2]), linger_s=1)
    s.ensure()
    print(s.read_state()["pid"], flush=True)
    sys.stdin.read()  # hold the lease until stdin closes (or this process is killed)
""")


def test_two_processes_share_one_server_and_leave_no_orphan(weights, home):
    def client():
        p = subprocess.Popen([sys.executable, "-c", CLIENT, str(weights), str(home)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
        return p, int(p.stdout.readline())

    a, pid_a = client()
    b, pid_b = client()
    assert pid_a == pid_b and pid_alive(pid_a)
    a.stdin.close()
    a.wait(timeout=30)
    time.sleep(3)
    assert pid_alive(pid_a)  # b still holds a lease
    b.kill()  # a client that dies without cleaning up: its lease is dead, the server still goes
    b.wait(timeout=30)
    deadline = time.time() + 30
    while pid_alive(pid_a) and time.time() < deadline:
        time.sleep(0.2)
    assert not pid_alive(pid_a)
    assert not (home / "server" / "shared.json").exists()


def test_truncated_gguf_is_a_weights_error(weights, tmp_path):
    truncated = tmp_path / "truncated.gguf"
    with weights.open("rb") as fh:
        truncated.write_bytes(fh.read(4 << 20))
    with pytest.raises(WeightsError, match="truncated|could not load"):
        LocalServer.for_spec(f"gguf:{truncated}", home=tmp_path, ready_timeout_s=120).ensure(lease=False)


def test_wrong_checksum_is_a_weights_error(weights, tmp_path):
    real = KNOWN_WEIGHTS[DEFAULT_WEIGHTS]
    wrong = WeightsSpec(**{**real.__dict__, "sha256": hashlib.sha256(b"not the model").hexdigest()})
    with pytest.raises(WeightsError, match="SHA-256"):
        ensure_weights(wrong, home=tmp_path)
    assert not (tmp_path / "models" / real.filename).exists()
