"""The litellm client against a fake OpenAI-compatible server on 127.0.0.1: request shape, tool calls (native and
schema-constrained fallback), structured output with retry, error mapping, retries, cache, concurrency, traces."""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import BaseModel

from sleuth.errors import (
    ContextOverflowError,
    ModelAuthError,
    ModelConnectionError,
    ModelError,
    ModelNotFoundError,
    ModelOutputError,
    ModelProtocolError,
)
from sleuth.llm.base import ChatModel
from sleuth.llm.client import LLM, ResponseCache, get_model
from sleuth.llm.fake import ScriptedModel
from sleuth.tracing.tracer import MemoryTracer
from tests.unit.llm_fake_server import FakeOpenAIServer, completion

MSGS = [{"role": "user", "content": "hello"}]
TOOLS = [
    {"type": "function", "function": {"name": "grep", "description": "search", "parameters": {
        "type": "object", "properties": {"pattern": {"type": "string"}}, "required": ["pattern"]}}},
    {"type": "function", "function": {"name": "answer", "description": "final answer", "parameters": {
        "type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}}},
]


def llm(url: str, **kw) -> LLM:
    kw.setdefault("backoff_s", 0.01)
    return LLM("openai/sleuth-test-model", api_base=url, api_key="sk-test", **kw)


def test_both_models_satisfy_the_protocol():
    assert isinstance(LLM("openai/gpt-4o-mini"), ChatModel)
    assert isinstance(ScriptedModel(["x"]), ChatModel)


def test_chat_usage_logprobs_and_trace():
    lp = {"content": [{"token": "ok", "logprob": -0.1, "top_logprobs": [{"token": "ok", "logprob": -0.1},
                                                                        {"token": "no", "logprob": -2.5}]}]}
    with FakeOpenAIServer([(200, completion("ok", logprobs=lp))]) as srv:
        tracer = MemoryTracer()
        r = llm(srv.url).chat(MSGS, max_tokens=5, logprobs=True, top_logprobs=2, tracer=tracer, name="probe")
        body = srv.requests[0]["body"]
    assert r.content == "ok"
    assert (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.token_source) == (11, 3, "provider")
    assert r.usage.cost == "unmeasured"  # an unknown model is unpriced, never 0
    assert r.logprobs and r.logprobs[0].top == {"ok": -0.1, "no": -2.5}
    assert body["logprobs"] is True and body["top_logprobs"] == 2 and body["max_tokens"] == 5
    assert srv.requests[0]["auth"] == "Bearer sk-test"
    [ev] = tracer.of_kind("llm")
    assert ev.name == "probe" and ev.usage.total_tokens == 14 and ev.preview == "ok"


def test_missing_usage_falls_back_to_local_tokenizer():
    with FakeOpenAIServer([(200, completion("three words here", usage={}))]) as srv:
        r = llm(srv.url).chat(MSGS)
    assert r.usage.token_source == "local_tokenizer"
    assert r.usage.completion_tokens == 3 and r.usage.prompt_tokens > 0


def test_native_tool_calls_used_as_is():
    call = {"id": "call_1", "type": "function", "function": {"name": "grep", "arguments": '{"pattern": "x"}'}}
    with FakeOpenAIServer([(200, completion("", tool_calls=[call]))]) as srv:
        r = llm(srv.url).chat(MSGS, tools=TOOLS)
        body = srv.requests[0]["body"]
    assert body["tools"][0]["function"]["name"] == "grep" and "response_format" not in body
    assert [(c.id, c.name, c.arguments) for c in r.tool_calls] == [("call_1", "grep", {"pattern": "x"})]
    assert r.assistant_message()["tool_calls"][0]["function"]["arguments"] == '{"pattern": "x"}'


def test_fallback_constrains_output_to_one_call_per_tool_schema():
    with FakeOpenAIServer([(200, completion('{"name": "answer", "arguments": {"text": "42"}}'))]) as srv:
        history = [*MSGS, {"role": "assistant", "content": "", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "grep", "arguments": '{"pattern": "a"}'}}]},
            {"role": "tool", "tool_call_id": "c1", "name": "grep", "content": "a.txt:1: a"}]
        r = llm(srv.url, native_tools=False).chat(history, tools=TOOLS)
        body = srv.requests[0]["body"]
    assert "tools" not in body
    schema = body["response_format"]["json_schema"]["schema"]
    assert [b["properties"]["name"]["const"] for b in schema["anyOf"]] == ["grep", "answer"]
    assert schema["anyOf"][0]["properties"]["arguments"]["required"] == ["pattern"]
    sent = body["messages"]
    assert sent[0]["role"] == "system" and "grep(pattern: string)" in sent[0]["content"]
    assert json.loads(sent[2]["content"]) == {"name": "grep", "arguments": {"pattern": "a"}}
    assert sent[3] == {"role": "user", "content": "Result of grep:\na.txt:1: a"}
    assert [(c.name, c.arguments) for c in r.tool_calls] == [("answer", {"text": "42"})]
    assert r.content == "" and r.finish_reason == "tool_calls"


def test_fallback_without_a_call_is_an_output_error_that_still_counts_its_tokens():
    tracer = MemoryTracer()
    with FakeOpenAIServer([(200, completion("I think the answer is 42"))]) as srv, \
            pytest.raises(ModelOutputError) as info:
        llm(srv.url, native_tools=False).chat(MSGS, tools=TOOLS, tracer=tracer)
    assert info.value.context["usage"].total_tokens == 14  # the rejected reply's tokens were spent
    [ev] = tracer.of_kind("llm")
    assert ev.error.startswith("ModelOutputError") and ev.usage.total_tokens == 14


def test_text_tool_call_from_a_native_backend_is_parsed():
    with FakeOpenAIServer([(200, completion('```json\n{"name": "grep", "arguments": {"pattern": "x"}}\n```'))]) as srv:
        r = llm(srv.url).chat(MSGS, tools=TOOLS)
    assert [(c.name, c.arguments) for c in r.tool_calls] == [("grep", {"pattern": "x"})]


class Answer(BaseModel):
    answer: str
    confidence: float


def test_structured_retries_then_validates_and_sums_usage():
    with FakeOpenAIServer([(200, completion('{"answer": "x"}')),
                           (200, completion('```json\n{"answer": "x", "confidence": 0.5,}\n```'))]) as srv:
        value, r = llm(srv.url).structured(MSGS, Answer)
        bodies = [q["body"] for q in srv.requests]
    assert value == Answer(answer="x", confidence=0.5)
    assert r.usage.calls == 2 and r.usage.prompt_tokens == 22
    assert bodies[0]["response_format"]["json_schema"]["name"] == "Answer"
    assert "not valid" in bodies[1]["messages"][-1]["content"]


def test_structured_gives_up_with_a_typed_error():
    with FakeOpenAIServer([(200, completion("nope"))]) as srv:
        with pytest.raises(ModelOutputError, match="Answer after 2 attempts"):
            llm(srv.url).structured(MSGS, Answer, retries=1)
        assert len(srv.requests) == 2


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}, ModelAuthError),
        (400, {"error": {"code": 400, "message": "request (5030 tokens) exceeds the available context size (4096 "
                         "tokens), try increasing it", "type": "exceed_context_size_error"}}, ContextOverflowError),
        (404, {"error": {"message": "The model `nope` does not exist", "type": "invalid_request_error"}},
         ModelNotFoundError),
        (200, b'{"choices": [{"message": {"content": "trunc', ModelProtocolError),
        (200, b"<html>not json</html>", ModelProtocolError),
        (200, {"id": "x", "object": "chat.completion", "choices": []}, ModelProtocolError),
    ],
)
def test_error_mapping(status, body, error):
    with FakeOpenAIServer([(status, body)]) as srv:
        with pytest.raises(error) as info:
            llm(srv.url).chat(MSGS)
        assert len(srv.requests) == 1  # none of these is retried
    assert info.value.hint  # every error says what to do


@pytest.mark.parametrize("body", [b"<html><body><h1>Welcome to nginx!</h1>\n</body></html>", b"\x00\xff garbage",
                                  b'{"object": "chat.completion", "choices": []}'])
def test_a_200_that_is_not_a_completion_is_a_server_fault_naming_the_server(body):
    """Not a ModelOutputError (which agents feed back to the model and go on): the server is named, one line."""
    with FakeOpenAIServer([(200, body)]) as srv:
        with pytest.raises(ModelProtocolError) as info:
            llm(srv.url).chat(MSGS)
        with pytest.raises(ModelProtocolError):
            asyncio.run(llm(srv.url).achat(MSGS))
    err = info.value
    assert not isinstance(err, ModelOutputError)
    assert f"the server at {srv.url}" in err.message and "\n" not in err.message
    assert err.context["api_base"] == srv.url and "api_base" in err.hint


def test_transient_errors_are_retried_with_backoff():
    with FakeOpenAIServer([(503, {"error": {"message": "busy"}}), (500, {"error": {"message": "oops"}}),
                           (200, completion("fine"))]) as srv:
        r = llm(srv.url, max_retries=3).chat(MSGS)
        assert len(srv.requests) == 3
    assert r.content == "fine"


def test_transient_errors_give_up_after_max_retries():
    with FakeOpenAIServer([(503, {"error": {"message": "busy"}})]) as srv:
        with pytest.raises(ModelConnectionError):
            llm(srv.url, max_retries=2).chat(MSGS)
        assert len(srv.requests) == 3


def test_unreachable_server_is_a_connection_error():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(ModelConnectionError):
        llm(f"http://127.0.0.1:{port}/v1", max_retries=1, timeout_s=5).chat(MSGS)


def test_unknown_provider_is_model_not_found():
    with pytest.raises(ModelNotFoundError):
        LLM("no-such-provider-xyz/some-model", max_retries=0).chat(MSGS)


def test_cache_is_keyed_by_the_full_request(tmp_path):
    with FakeOpenAIServer([(200, completion("a"))]) as srv:
        m = llm(srv.url, cache=tmp_path / "cache")
        first = m.chat(MSGS, max_tokens=5)
        second = m.chat(MSGS, max_tokens=5)
        m.chat(MSGS, max_tokens=6)
        m.chat(MSGS, max_tokens=5, tools=TOOLS)
        m.chat(MSGS, max_tokens=5, temperature=0.7)  # sampled calls are never cached
        m.chat(MSGS, max_tokens=5, temperature=0.7)
        assert len(srv.requests) == 5
    assert not first.cached and second.cached and second.content == "a"
    assert second.usage == first.usage  # a cached result keeps the usage it was recorded with
    assert len(list((tmp_path / "cache").rglob("*.json"))) == 3


def test_cache_key_is_stable_and_order_free():
    a = ResponseCache.key({"model": "m", "messages": MSGS, "temperature": 0.0})
    b = ResponseCache.key({"temperature": 0.0, "messages": MSGS, "model": "m"})
    c = ResponseCache.key({"model": "m", "messages": [{"role": "user", "content": "hello!"}], "temperature": 0.0})
    assert a == b != c and len(a) == 64


def test_async_calls_respect_the_concurrency_limit():
    with FakeOpenAIServer([(200, completion("x"))], delay_s=0.2) as srv:
        m = llm(srv.url, max_concurrency=2)

        async def run():
            return await asyncio.gather(*(m.achat(MSGS) for _ in range(5)))

        results = asyncio.run(run())
        assert srv.max_in_flight <= 2 and len(srv.requests) == 5
    assert all(r.content == "x" for r in results)


def test_async_error_mapping():
    with FakeOpenAIServer([(401, {"error": {"message": "bad key"}})]) as srv, pytest.raises(ModelAuthError):
        asyncio.run(llm(srv.url).achat(MSGS))


def test_get_model_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("SLEUTH_HOME", str(tmp_path))
    monkeypatch.delenv("SLEUTH_MODEL", raising=False)
    (tmp_path / "config.toml").write_text('[model]\nname = "openai/from-config"\napi_base = "http://h/v1"\n'
                                          "max_concurrency = 7\n")
    m = get_model()
    assert (m.model, m.api_base) == ("openai/from-config", "http://h/v1")
    monkeypatch.setenv("SLEUTH_MODEL", "openai/from-env")
    assert get_model().model == "openai/from-env"
    m = get_model("anthropic/claude-x")
    assert m.model == "anthropic/claude-x" and m.api_base is None  # the config's api_base is for another model
    assert isinstance(get_model("fake", script=["hi"]), ScriptedModel)


def test_bad_config_file_is_a_config_error(tmp_path, monkeypatch):
    from sleuth.errors import ConfigError

    monkeypatch.setenv("SLEUTH_HOME", str(tmp_path))
    (tmp_path / "config.toml").write_text("[model\nname=")
    with pytest.raises(ConfigError):
        get_model()
    (tmp_path / "config.toml").write_text('[model]\nmax_concurrency = "many"\n')
    with pytest.raises(ConfigError):
        get_model()


def test_model_error_is_the_common_base():
    assert issubclass(ModelOutputError, ModelError) and issubclass(ModelConnectionError, ModelError)


def test_invalid_native_tool_call_comes_back_with_a_parse_error():
    call = {"id": "call_9", "type": "function", "function": {"name": "grep", "arguments": "pattern=x, glob="}}
    with FakeOpenAIServer([(200, completion("", tool_calls=[call]))]) as srv:
        r = llm(srv.url).chat(MSGS, tools=TOOLS)
    [c] = r.tool_calls
    assert c.name == "grep" and c.parse_error and c.raw_arguments == "pattern=x, glob="
    # the agent can echo it back: the assistant message keeps the model's raw text
    assert r.assistant_message()["tool_calls"][0]["function"]["arguments"] == "pattern=x, glob="


def test_sync_calls_respect_the_concurrency_limit():
    from concurrent.futures import ThreadPoolExecutor

    with FakeOpenAIServer([(200, completion("x"))], delay_s=0.2) as srv:
        m = llm(srv.url, max_concurrency=1)
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda _: m.chat(MSGS), range(4)))
        assert srv.max_in_flight == 1 and len(srv.requests) == 4


def test_json_text_naming_no_offered_tool_is_not_a_call():
    with FakeOpenAIServer([(200, completion('{"name": "Tokyo", "arguments": {"country": "Japan"}}'))]) as srv:
        r = llm(srv.url).chat(MSGS, tools=TOOLS)
    assert r.tool_calls == [] and "Tokyo" in r.content
