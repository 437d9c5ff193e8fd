"""An LLM call's trace event says how many tools the model was offered, also when a backend without native tool
calls gets them through the prompt and a JSON schema (the embedded model): the trace page showed "tools: 0" on
every tool-call turn (issue #20)."""

from __future__ import annotations

from sleuth.llm.client import LLM
from sleuth.tracing import MemoryTracer
from tests.unit.llm_fake_server import FakeOpenAIServer, completion

TOOLS = [
    {"type": "function", "function": {"name": n, "description": n, "parameters": {
        "type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}}
    for n in ("grep", "answer")
]


def test_tools_offered_are_counted_natively_and_in_the_schema_fallback():
    reply = completion('{"name": "grep", "arguments": {"q": "a"}}')
    for native in (True, False):
        with FakeOpenAIServer([(200, reply)]) as srv:
            tracer = MemoryTracer()
            llm = LLM("openai/sleuth-test-model", api_base=srv.url, api_key="sk-test", native_tools=native)
            llm.chat([{"role": "user", "content": "hi"}], tools=TOOLS, tracer=tracer)
        [ev] = tracer.of_kind("llm")
        assert ev.args["tools"] == 2, native
