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
    tagged = '<tool_call>{"name": "a", "arguments": {}}</tool_call><tool_call>{"name": "b", "arguments": {}}</tool_call>'
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
