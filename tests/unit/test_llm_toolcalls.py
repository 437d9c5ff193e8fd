"""Tool-call schema for backends without native tool calls, and the tolerant parser/repair of model-written calls."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, ConfigDict

from sleuth.llm.toolcalls import (
    loads_lenient,
    native_tool_calls,
    parse_tool_calls,
    repair_json,
    tool_call_schema,
    tool_prompt,
)


class Inner(BaseModel):
    a: int


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pattern: str
    inner: Inner | None = None


def spec(name, params):
    return {"type": "function", "function": {"name": name, "description": f"the {name} tool", "parameters": params}}


def test_single_tool_schema_pins_the_name():
    s = tool_call_schema([spec("grep", {"type": "object", "properties": {"pattern": {"type": "string"}}})])
    assert s["properties"]["name"] == {"type": "string", "const": "grep"}
    assert s["required"] == ["name", "arguments"] and s["additionalProperties"] is False


def test_defs_are_hoisted_to_the_root_for_refs():
    params = Args.model_json_schema()
    assert "$defs" in params
    s = tool_call_schema([spec("grep", params), spec("answer", {"type": "object", "properties": {}})])
    assert "Inner" in s["$defs"] and len(s["anyOf"]) == 2
    assert "$defs" not in s["anyOf"][0]["properties"]["arguments"]
    assert '"#/$defs/Inner"' in json.dumps(s)


def test_tool_prompt_lists_tools_and_the_reply_form():
    p = tool_prompt([spec("grep", Args.model_json_schema())])
    assert "- grep(pattern: string, inner?: any): the grep tool" in p
    assert '{"name": "<tool name>", "arguments": {...}}' in p


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "grep", "arguments": {"pattern": "x"}}',
        'Sure!\n```json\n{"name": "grep", "arguments": {"pattern": "x"}}\n```\nDone.',
        '<tool_call>\n{"name": "grep", "arguments": {"pattern": "x"}}\n</tool_call>',
        '{"name": "grep", "arguments": "{\\"pattern\\": \\"x\\"}"}',
        '{"tool": "grep", "parameters": {"pattern": "x"},}',
        "{'name': 'grep', 'arguments': {'pattern': 'x'}}",
        '{"name": "grep", "arguments": {"pattern": "x"',  # cut off by max_tokens
        '{"type": "function", "function": {"name": "grep", "arguments": {"pattern": "x"}}}',
    ],
)
def test_parse_and_repair_variants(text):
    [call] = parse_tool_calls(text)
    assert (call.name, call.arguments, call.parse_error) == ("grep", {"pattern": "x"}, None)
    assert call.id.startswith("call_")


def test_several_calls():
    calls = parse_tool_calls('[{"name": "a", "arguments": {}}, {"name": "b", "arguments": {"k": 1}}]')
    assert [(c.name, c.arguments) for c in calls] == [("a", {}), ("b", {"k": 1})]
    tagged = (
        '<tool_call>{"name": "a", "arguments": {}}</tool_call><tool_call>{"name": "b", "arguments": {}}</tool_call>'
    )
    assert [c.name for c in parse_tool_calls(tagged)] == ["a", "b"]


def test_prose_is_not_a_call():
    assert parse_tool_calls("The answer is 42.") == []
    assert parse_tool_calls('{"answer": 42}') == []
    assert parse_tool_calls("") == []


def test_unparseable_arguments_keep_the_raw_text():
    [call] = parse_tool_calls('{"name": "grep", "arguments": "pattern=x"}')
    assert call.name == "grep" and call.arguments == {} and call.raw_arguments == "pattern=x"
    assert call.parse_error


def test_native_tool_calls_with_broken_arguments():
    calls = native_tool_calls([
        {"id": "1", "function": {"name": "grep", "arguments": '{"pattern": "x",}'}},
        {"id": "2", "function": {"name": "read", "arguments": "not json at all"}},
        {"id": "3", "function": {"name": "ls", "arguments": ""}},
    ])
    assert calls[0].arguments == {"pattern": "x"} and calls[0].parse_error is None
    assert calls[1].parse_error and calls[1].raw_arguments == "not json at all"
    assert calls[2].arguments == {} and calls[2].id == "3"


def test_repair_json():
    assert json.loads(repair_json('noise {"a": [1, 2,], "b": True, "c": None} trailing')) == {
        "a": [1, 2], "b": True, "c": None}
    assert loads_lenient('{"a": "unterminated') == {"a": "unterminated"}
    with pytest.raises(ValueError):
        loads_lenient("no json here")


# -- repairs never rewrite a string's contents (issue #16: "True North" came back as "true North") ---------------


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ('{"name": "grep", "arguments": {"pattern": "True North"}', {"pattern": "True North"}),  # cut off
        ('{"name": "answer", "arguments": {"answer": "None of the True Falsehoods", "doc_ids": [],}}',
         {"answer": "None of the True Falsehoods", "doc_ids": []}),
        ('```json\n{"name": "grep", "arguments": {"pattern": "\\\\d{2,}", "ignore_case": True}}\n```',
         {"pattern": "\\d{2,}", "ignore_case": True}),  # a regex: its ",}" is no trailing comma
        ("{'name': 'answer', 'arguments': {'answer': \"it's null, False\", 'doc_ids': ['a.md']}}",
         {"answer": "it's null, False", "doc_ids": ["a.md"]}),
        ('```json\n{"name": "answer", "arguments": {"answer": "fence it: ```x```", "doc_ids": []}}\n```',
         {"answer": "fence it: ```x```", "doc_ids": []}),  # a code fence inside a string does not end the block
    ],
)
def test_text_calls_keep_their_strings(text, want):
    [call] = parse_tool_calls(text)
    assert call.parse_error is None and call.arguments == want


def test_native_call_arguments_keep_their_strings():
    [call] = native_tool_calls([{"id": "1", "function": {"name": "grep", "arguments": '{"pattern": "True North",}'}}])
    assert call.arguments == {"pattern": "True North"} and call.parse_error is None


def test_two_calls_written_one_after_the_other():
    text = 'First {"name": "grep", "arguments": {"pattern": "a"}} then\n{"name": "ls", "arguments": {}}'
    assert [(c.name, c.arguments) for c in parse_tool_calls(text)] == [("grep", {"pattern": "a"}), ("ls", {})]


def test_the_model_client_keeps_argument_strings():
    """The path every model reply takes: an OpenAI-compatible server's native tool call with broken arguments."""
    from sleuth.llm.client import LLM
    from tests.unit.llm_fake_server import FakeOpenAIServer, completion

    tools = [spec("grep", {"type": "object", "properties": {"pattern": {"type": "string"}}})]
    broken = '{"pattern": "True North", "ignore_case": True}'  # a Python True: the old repair lowercased "True North"
    call = {"id": "c1", "type": "function", "function": {"name": "grep", "arguments": broken}}
    with FakeOpenAIServer([(200, completion("", tool_calls=[call]))]) as srv:
        result = LLM("openai/test", api_base=srv.url, api_key="sk-test", backoff_s=0.01).chat(
            [{"role": "user", "content": "q"}], tools=tools
        )
    assert [(c.name, c.arguments, c.parse_error) for c in result.tool_calls] == [
        ("grep", {"pattern": "True North", "ignore_case": True}, None)
    ]
