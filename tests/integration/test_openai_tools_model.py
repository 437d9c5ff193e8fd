"""OpenAI function calling with the embedded local model (Qwen2.5-Coder-0.5B on llama.cpp's OpenAI-compatible server).

What works with this server and model (measured; see docs/results/integrations.md): it returns no native
``tool_calls`` when sent ``tools=`` (the model writes a fenced JSON call into the content). So the tests use the
two routes that do work:

1. the ``openai`` client with ``response_format`` of type ``json_schema`` built from the same specs
   (:func:`sleuth.llm.toolcalls.tool_call_schema`), then the dispatcher on the parsed call;
2. sleuth's model layer (``get_model("local").chat(messages, tools=specs)``), which does the constrained-JSON
   fallback itself and returns ``ToolCall`` records the dispatcher takes as they are.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sleuth.tools import openai_tools

pytestmark = [pytest.mark.model, pytest.mark.slow]

QUESTION = "Who designed the Kestrel Bridge? Use a tool to find out."


@pytest.fixture(scope="module")
def local_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A private embedded server for this module (weights from the normal cache), so the test does not queue
    behind other work on the per-user shared server."""
    pytest.importorskip("xllamacpp", reason="needs the `local` extra")
    from sleuth.errors import WeightsError
    from sleuth.llm.local import LocalServer
    from sleuth.llm.weights import DEFAULT_WEIGHTS, ensure_weights

    try:
        weights = ensure_weights(DEFAULT_WEIGHTS)
    except WeightsError as e:
        pytest.skip(f"embedded model weights not installed: {e}")
    server = LocalServer(weights, key="pytest-openai-tools", home=tmp_path_factory.mktemp("sleuth_home"), linger_s=1)
    yield server
    server.stop()


@pytest.fixture()
def local_api_base(local_server):  # type: ignore[no-untyped-def]
    base = local_server.ensure()
    yield base
    local_server.release()


def _check_tool_message(msg: dict[str, Any], call_id: str) -> None:
    assert msg["role"] == "tool" and msg["tool_call_id"] == call_id
    assert msg["content"]
    if msg["content"].startswith("Error ("):  # the model may err; then it is an observation it can fix
        assert "Please fix" in msg["content"] or "hint" in msg["content"]


def test_openai_client_with_json_schema_then_dispatch(sample_corpus: Path, local_server: Any, local_api_base: str) -> None:
    from openai import OpenAI

    from sleuth.llm.toolcalls import tool_call_schema, tool_prompt

    specs, dispatch = openai_tools(sample_corpus, include=["search", "read"])
    client = OpenAI(base_url=local_api_base, api_key=local_server.token, timeout=600)  # the server's own token
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": tool_prompt(specs)},
        {"role": "user", "content": QUESTION},
    ]
    resp = client.chat.completions.create(
        model="local",
        messages=messages,  # type: ignore[arg-type]
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "tool_call", "schema": tool_call_schema(specs), "strict": True},
        },
        max_tokens=96,
        temperature=0,
    )
    call = json.loads(resp.choices[0].message.content or "")
    assert call["name"] in ("search", "read")
    tool_call = {"id": "call_1", "type": "function",
                 "function": {"name": call["name"], "arguments": json.dumps(call["arguments"])}}
    out = dispatch([tool_call])
    assert len(out) == 1
    _check_tool_message(out[0], "call_1")
    if call["name"] == "search" and not out[0]["content"].startswith("Error"):
        assert "kestrel_bridge" in out[0]["content"] or "bram_okafor" in out[0]["content"]


def test_sleuth_model_layer_tool_calls_go_straight_to_the_dispatcher(sample_corpus: Path, local_server: Any) -> None:
    from sleuth.llm.client import LLM

    specs, dispatch = openai_tools(sample_corpus, include=["search", "read"])
    model = LLM("local", local_server=local_server)
    try:
        messages: list[dict[str, Any]] = [{"role": "user", "content": QUESTION}]
        result = model.chat(messages, tools=specs, max_tokens=96)
        assert result.tool_calls, result.content
        messages.append(result.assistant_message())
        tool_messages = dispatch(result.tool_calls)
        assert [m["tool_call_id"] for m in tool_messages] == [c.id for c in result.tool_calls]
        for m, c in zip(tool_messages, result.tool_calls, strict=True):
            _check_tool_message(m, c.id)
        messages += tool_messages
        # the conversation with the tool results is accepted by the server for the next turn
        final = model.chat(messages, max_tokens=48)
        assert final.content.strip()
    finally:
        close = getattr(model, "close", None)
        if close:
            close()
