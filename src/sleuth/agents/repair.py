"""Repair of tool calls that come back broken from small models.

The model layer already returns native tool calls or schema-constrained JSON. What can still arrive:

* a :class:`ToolCall` whose ``parse_error`` is set (arguments that were not JSON): code fences, single quotes,
  Python literals, trailing commas, a missing closing brace;
* no tool call but text that contains one (``{"name": "grep", "arguments": {...}}``, possibly fenced, or the
  ``{"tool": ..., "args": ...}`` / ``{"function": {...}}`` shapes);
* a tool name with a ``functions.`` prefix or the wrong case.

Whatever cannot be repaired stays a call with ``parse_error`` set; the graph turns it into an observation. The JSON
is read by :func:`sleuth.llm.jsonparse.loads_lenient` (re-exported here), the parser the model layer uses too.
"""

from __future__ import annotations

import json
from typing import Any

from sleuth.llm.base import ToolCall
from sleuth.llm.jsonparse import json_spans, loads_lenient

__all__ = ["calls_from_text", "loads_lenient", "normalize_name", "repair_calls"]


def normalize_name(name: str, tool_names: list[str]) -> str:
    """``functions.grep`` -> ``grep``; ``Grep`` -> ``grep``; unknown names are returned unchanged."""
    n = name.strip().strip("`'\"")
    for prefix in ("functions.", "function.", "tools.", "tool."):
        if n.startswith(prefix):
            n = n[len(prefix) :]
    if n in tool_names:
        return n
    lower = {t.lower(): t for t in tool_names}
    return lower.get(n.lower(), n)


def _call_from_obj(obj: Any, tool_names: list[str], cid: str) -> ToolCall | None:
    if not isinstance(obj, dict):
        return None
    if isinstance(obj.get("function"), dict):
        obj = obj["function"]
    name = obj.get("name") or obj.get("tool") or obj.get("tool_name")
    if name is None and "answer" in obj and "answer" in tool_names:  # the answer's arguments, written bare
        name, obj = "answer", {"name": "answer", "arguments": obj}
    if not isinstance(name, str):
        return None
    args: Any = None
    for key in ("arguments", "args", "parameters", "input"):
        if key in obj:
            args = obj[key]
            break
    if args is None:  # {"name": "grep", "pattern": "x"}: the arguments inline
        args = {k: v for k, v in obj.items() if k not in ("name", "tool", "tool_name", "type", "id")}
    raw = args if isinstance(args, str) else json.dumps(args)
    if isinstance(args, str):
        try:
            args = loads_lenient(args) if args.strip() else {}
        except ValueError as e:
            return ToolCall(id=cid, name=normalize_name(name, tool_names), raw_arguments=raw, parse_error=str(e))
    if not isinstance(args, dict):
        return ToolCall(
            id=cid, name=normalize_name(name, tool_names), raw_arguments=raw, parse_error="arguments must be an object"
        )
    return ToolCall(id=cid, name=normalize_name(name, tool_names), arguments=args, raw_arguments=raw)


def calls_from_text(text: str, tool_names: list[str], id_prefix: str = "repaired") -> list[ToolCall]:
    """Tool calls written into the content of a reply (fenced or bare JSON objects)."""
    if "{" not in text:
        return []
    calls: list[ToolCall] = []
    for n, chunk in enumerate(json_spans(text)):
        try:
            obj = loads_lenient(chunk)
        except ValueError:
            continue
        items = obj if isinstance(obj, list) else [obj]
        for item in items:
            call = _call_from_obj(item, tool_names, f"{id_prefix}_{n}_{len(calls)}")
            if call is not None:
                calls.append(call)
    return calls


def repair_calls(
    calls: list[ToolCall], content: str, tool_names: list[str], id_prefix: str = "repaired"
) -> tuple[list[ToolCall], list[str]]:
    """Return usable calls and a note per repair made (for the trace)."""
    notes: list[str] = []
    fixed: list[ToolCall] = []
    for c in calls:
        name = normalize_name(c.name, tool_names)
        if name != c.name:
            notes.append(f"tool name {c.name!r} -> {name!r}")
        if c.parse_error:
            try:
                args = loads_lenient(c.raw_arguments) if c.raw_arguments.strip() else {}
            except ValueError:
                fixed.append(c.model_copy(update={"name": name}))
                notes.append(f"arguments of {name} unrepairable: {c.parse_error}")
                continue
            if isinstance(args, dict) and isinstance(args.get("arguments"), dict) and len(args) <= 2:
                args = args["arguments"]  # the model wrapped its arguments in the whole call object
            if not isinstance(args, dict):
                fixed.append(c.model_copy(update={"name": name, "parse_error": "arguments must be an object"}))
                continue
            notes.append(f"arguments of {name} repaired")
            fixed.append(c.model_copy(update={"name": name, "arguments": args, "parse_error": None}))
        else:
            fixed.append(c if name == c.name else c.model_copy(update={"name": name}))
    if not fixed and content:
        found = calls_from_text(content, tool_names, id_prefix)
        if found:
            notes.append(f"{len(found)} tool call(s) parsed from the reply text")
            fixed = found
    return fixed, notes
