"""Tool calls for models without native tool calling: a JSON schema that constrains the output to one call, and
a tolerant parser that turns model text into :class:`~sleuth.llm.base.ToolCall` records (the JSON itself is read
by :func:`sleuth.llm.jsonparse.loads_lenient`, re-exported here with ``repair_json``).

The constrained form is ``{"name": <one of the tool names>, "arguments": {...}}``; with several tools the schema
is an ``anyOf`` with one branch per tool, so each name is tied to its own parameter schema.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from typing import Any

from sleuth.llm.base import ToolCall
from sleuth.llm.jsonparse import json_spans, loads_lenient, repair_json

__all__ = [
    "loads_lenient",
    "native_tool_calls",
    "parse_tool_calls",
    "repair_json",
    "tool_call_schema",
    "tool_names",
    "tool_prompt",
]

_TAGGED = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)


def tool_names(tools: list[dict[str, Any]]) -> list[str]:
    return [_fn(t)["name"] for t in tools]


def _fn(tool: dict[str, Any]) -> dict[str, Any]:
    return tool.get("function", tool)


def tool_call_schema(tools: list[dict[str, Any]]) -> dict[str, Any]:
    """JSON schema of one call to one of ``tools`` (OpenAI function specs). ``$defs`` are hoisted to the root."""
    defs: dict[str, Any] = {}
    branches = []
    for tool in tools:
        fn = _fn(tool)
        params = copy.deepcopy(fn.get("parameters") or {"type": "object", "properties": {}})
        defs.update(params.pop("$defs", {}) or {})
        params.pop("title", None)
        branches.append(
            {
                "type": "object",
                "properties": {"name": {"type": "string", "const": fn["name"]}, "arguments": params},
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }
        )
    schema: dict[str, Any] = branches[0] if len(branches) == 1 else {"anyOf": branches}
    if defs:
        schema = {**schema, "$defs": defs}
    return schema


def tool_prompt(tools: list[dict[str, Any]]) -> str:
    """The instruction that tells a model without native tool calls how to call one."""
    from sleuth.prompts import load

    lines = []
    for tool in tools:
        fn = _fn(tool)
        params = fn.get("parameters") or {}
        props = params.get("properties", {})
        req = set(params.get("required", []))
        args = ", ".join(
            f"{k}{'' if k in req else '?'}: {v.get('type', 'any')}"
            + (f" ({v['description']})" if v.get("description") else "")
            for k, v in props.items()
        )
        lines.append(f"- {fn['name']}({args}): {fn.get('description', '').strip()}")
    return load("tool_call_fallback").format(tools="\n".join(lines))


# -- parsing -----------------------------------------------------------------------------------------------------


def _new_id() -> str:
    return "call_" + uuid.uuid4().hex[:12]


def _to_call(obj: Any) -> ToolCall | None:
    if not isinstance(obj, dict):
        return None
    if "function" in obj and isinstance(obj["function"], dict):  # an OpenAI-style tool_calls item
        obj = obj["function"]
    name = obj.get("name") or obj.get("tool") or obj.get("tool_name") or obj.get("function")
    if not isinstance(name, str) or not name:
        return None
    args = obj.get("arguments", obj.get("parameters", obj.get("args", obj.get("input", {}))))
    if isinstance(args, str):
        raw = args
        try:
            parsed = loads_lenient(args) if args.strip() else {}
        except ValueError as e:
            return ToolCall(id=_new_id(), name=name, raw_arguments=raw, parse_error=str(e))
        args = parsed
    else:
        raw = json.dumps(args)
    if not isinstance(args, dict):
        return ToolCall(id=_new_id(), name=name, raw_arguments=raw, parse_error="arguments must be a JSON object")
    return ToolCall(id=_new_id(), name=name, arguments=args, raw_arguments=raw)


def parse_tool_calls(text: str) -> list[ToolCall]:
    """Tool calls written as text: ``{"name":..,"arguments":..}`` (bare, fenced, in ``<tool_call>`` tags, or a
    list of those). Returns ``[]`` when the text holds no call-shaped JSON."""
    if not text or not text.strip():
        return []
    chunks = _TAGGED.findall(text) or json_spans(text)
    calls: list[ToolCall] = []
    for chunk in chunks:
        try:
            obj = loads_lenient(chunk)
        except ValueError:
            continue
        items = obj if isinstance(obj, list) else [obj]
        if isinstance(obj, dict) and isinstance(obj.get("tool_calls"), list):
            items = obj["tool_calls"]
        for item in items:
            call = _to_call(item)
            if call is not None:
                calls.append(call)
    return calls


def native_tool_calls(raw_calls: list[Any]) -> list[ToolCall]:
    """Convert a provider's native ``tool_calls`` (OpenAI objects or dicts) into ToolCall records."""
    out: list[ToolCall] = []
    for c in raw_calls or []:
        d = c if isinstance(c, dict) else (c.model_dump() if hasattr(c, "model_dump") else dict(c))
        fn = d.get("function") or {}
        raw = fn.get("arguments") or ""
        name = fn.get("name") or ""
        cid = d.get("id") or _new_id()
        if isinstance(raw, dict):
            out.append(ToolCall(id=cid, name=name, arguments=raw, raw_arguments=json.dumps(raw)))
            continue
        try:
            args = loads_lenient(raw) if raw.strip() else {}
            if not isinstance(args, dict):
                raise ValueError("arguments must be a JSON object")
            out.append(ToolCall(id=cid, name=name, arguments=args, raw_arguments=raw))
        except ValueError as e:
            out.append(ToolCall(id=cid, name=name, raw_arguments=raw, parse_error=str(e)))
    return out
