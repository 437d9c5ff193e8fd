"""A tool is a pydantic argument model plus a function; it exports an OpenAI function-calling schema.

``Tool.run`` validates and runs, raising typed errors. ``Tool.invoke`` / ``Toolkit.invoke`` are what agents use:
faults the model caused (:class:`~sleuth.errors.ToolInputError`) come back as an error observation the model can
read and correct; real faults are raised. Every invoke can emit a ``tool`` trace event.

``output_type`` (a pydantic model, or e.g. ``list[Model]``) describes ``ToolResult.data``: ``output_schema()`` is
its JSON schema (the MCP server's ``outputSchema``). A tool made with ``takes_control=True`` is called as
``fn(args, control)`` with the call's :class:`~sleuth.callcontrol.CallControl` (progress out, cancel in).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from sleuth.callcontrol import CallControl
from sleuth.errors import ToolArgumentError, ToolInputError, shown
from sleuth.records import TraceEvent
from sleuth.tracing.tracer import ForwardingTracer, captures_content

A = TypeVar("A", bound=BaseModel)

ERROR_TEMPLATE = "Error ({kind}): {message}\nPlease fix your mistakes and try again."


def _check_text(value: Any) -> Any:
    """Reject what no tool can pass on: NUL characters (argv and file names cannot hold them) and lone surrogates
    (not encodable as UTF-8, so they cannot be written to a trace, a subprocess or a JSON answer)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("contains a NUL character (\\x00), which no tool argument may hold")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise ValueError(f"is not valid Unicode text (a lone surrogate at position {e.start})") from None
    elif isinstance(value, list | tuple):
        for item in value:
            _check_text(item)
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_text(k)
            _check_text(v)
    return value


class ToolArgs(BaseModel):
    """Base for tool argument models: unknown fields are an error the model can see and fix, and no string
    argument may hold a NUL character or a lone surrogate (both are argument errors, never a crash)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul_or_surrogates(cls, value: Any) -> Any:
        return _check_text(value)


class ToolResult(BaseModel):
    """What a tool returns: ``text`` is what a model reads; ``data`` is the structured result (JSON-able).
    ``meta["trace"]`` (a dict), when a tool sets it, is recorded in its trace event's data (e.g. the workspace
    a ``workspace_grep`` searched)."""

    text: str
    data: Any = None
    truncated: bool = False
    is_error: bool = False
    error_type: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)


def _clean_schema(schema: Any) -> Any:
    """Drop pydantic's cosmetic ``title`` keys; keep everything that constrains a value."""
    if isinstance(schema, dict):
        out = {}
        for k, v in schema.items():
            if k == "title" and isinstance(v, str):
                continue
            if k == "properties" and isinstance(v, dict):
                out[k] = {name: _clean_schema(p) for name, p in v.items()}
            else:
                out[k] = _clean_schema(v) if isinstance(v, dict | list) else v
        return out
    if isinstance(schema, list):
        return [_clean_schema(s) for s in schema]
    return schema


def format_validation_error(e: ValidationError) -> str:
    parts = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err.get("loc", ())) or "arguments"
        parts.append(f"{loc}: {err.get('msg')}")
    return "; ".join(parts)


class Tool(Generic[A]):
    def __init__(
        self,
        name: str,
        description: str,
        args_model: type[A],
        fn: Callable[..., ToolResult],
        *,
        tags: Iterable[str] = (),
        output_type: Any = None,
        takes_control: bool = False,
    ) -> None:
        self.name = name
        self.description = description
        self.args_model = args_model
        self.fn = fn
        self.tags = set(tags)
        self.output_type = output_type
        self.takes_control = takes_control
        self._output_schema: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"Tool({self.name!r})"

    def parameters_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = _clean_schema(self.args_model.model_json_schema())
        schema.setdefault("type", "object")
        schema.setdefault("properties", {})
        return schema

    def output_schema(self) -> dict[str, Any] | None:
        """The JSON schema of ``ToolResult.data`` on success (None when the tool declares no ``output_type``)."""
        if self.output_type is None:
            return None
        if self._output_schema is None:
            self._output_schema = _clean_schema(TypeAdapter(self.output_type).json_schema(mode="serialization"))
        return self._output_schema

    def openai_schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters_schema()},
        }

    def parse_args(self, arguments: A | dict[str, Any] | str | None) -> A:
        if isinstance(arguments, self.args_model):
            return arguments
        if arguments is None:
            arguments = {}
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except json.JSONDecodeError as e:
                raise ToolArgumentError(f"arguments for {self.name} are not valid JSON: {e}") from e
        if not isinstance(arguments, dict):
            raise ToolArgumentError(f"arguments for {self.name} must be a JSON object, got {type(arguments).__name__}")
        try:
            return self.args_model.model_validate(arguments)
        except ValidationError as e:
            raise ToolArgumentError(f"bad arguments for {self.name}: {format_validation_error(e)}") from e

    def run(
        self, arguments: A | dict[str, Any] | str | None = None, *, control: CallControl | None = None, **kwargs: Any
    ) -> ToolResult:
        """Validate and run. Raises :class:`ToolInputError` subclasses for bad input."""
        if kwargs:
            arguments = {**(arguments or {}), **kwargs}  # type: ignore[dict-item]
        args = self.parse_args(arguments)
        if self.takes_control:
            return self.fn(args, control if control is not None else CallControl())
        return self.fn(args)

    def invoke(
        self,
        arguments: A | dict[str, Any] | str | None = None,
        *,
        tracer: Any = None,
        call_id: str | None = None,
        control: CallControl | None = None,
    ) -> ToolResult:
        """Run for an agent: input errors become an error observation; real faults propagate. With a tracer the
        call is a span (what the tool does inside nests under it) ending in one ``tool`` event; ``call_id`` is the
        model's id for this call (``gen_ai.tool.call.id``); ``control`` lets the caller cancel or follow it."""
        return self.invoke_in(tool_span(tracer), arguments, call_id=call_id, control=control)

    def invoke_in(
        self, span: Any, arguments: Any = None, *, call_id: str | None = None, control: CallControl | None = None
    ) -> ToolResult:
        """:meth:`invoke` inside an open tool span (a :func:`tool_span`, or None: untraced)."""
        t0 = time.perf_counter()
        error: str | None = None
        try:
            result = self.run(arguments, control=control)
        except ToolInputError as e:
            result = error_result(e)
            error = result.text
        except Exception as e:
            if span is not None:
                fault = f"{type(e).__name__}: {e}"
                span.emit(span.own(_event(self.name, arguments, None, time.perf_counter() - t0, fault, call_id)))
            raise
        if span is not None:
            ev = _event(self.name, arguments, result, time.perf_counter() - t0, error, call_id,
                        content=captures_content(span))
            span.emit(span.own(ev))
        return result


def tool_span(tracer: Any) -> ForwardingTracer | None:
    """The span of one tool call under ``tracer`` (None without a tracer)."""
    return ForwardingTracer(tracer, span=True) if tracer is not None else None


def error_result(e: ToolInputError) -> ToolResult:
    message = e.message + (f" (hint: {e.hint})" if e.hint else "")
    return ToolResult(
        text=ERROR_TEMPLATE.format(kind=type(e).__name__, message=message),
        data=e.to_dict(),
        is_error=True,
        error_type=type(e).__name__,
    )


def _event(
    name: str, arguments: Any, result: ToolResult | None, latency: float, error: str | None,
    call_id: str | None = None, *, content: bool = False,
) -> TraceEvent:
    if isinstance(arguments, BaseModel):
        args = arguments.model_dump()
    elif isinstance(arguments, dict):
        args = arguments
    else:
        args = {"raw": arguments}
    return TraceEvent(
        kind="tool",
        name=name,
        args=args,
        result_chars=len(result.text) if result else None,
        preview=(result.text[:300] if result else ""),
        latency_s=latency,
        error=error,
        data=_event_data(result, call_id, content),
    )


def _event_data(result: ToolResult | None, call_id: str | None, content: bool) -> dict[str, Any]:
    data: dict[str, Any] = {"call_id": call_id} if call_id else {}
    if result is None:
        return data
    data["truncated"] = result.truncated
    extra = result.meta.get("trace")
    if isinstance(extra, dict):
        for key, value in extra.items():
            data.setdefault(key, value)
    if content:  # opt-in (capture_content): the observation in full, as the model read it
        data["content"] = {"result": result.text}
    if not result.is_error:
        ids = result_doc_ids(result.data)
        if ids:
            data["doc_ids"] = ids  # what the observation showed, for exact evidence metrics (sleuth.evals.metrics)
    return data


MAX_EVENT_DOC_IDS = 1000


def result_doc_ids(data: Any) -> list[str]:
    """Doc ids in a tool's structured result (``doc_id`` fields of hits, grep matches, read results, and
    ``doc_ids`` lists), first seen first, deduplicated, at most ``MAX_EVENT_DOC_IDS``."""
    seen: dict[str, None] = {}

    def walk(x: Any, depth: int) -> None:
        if depth > 4 or len(seen) >= MAX_EVENT_DOC_IDS:
            return
        if isinstance(x, dict):
            d = x.get("doc_id")
            if isinstance(d, str):
                seen.setdefault(d, None)
            for v in x.values():
                if isinstance(v, dict | list):
                    walk(v, depth + 1)
            ids = x.get("doc_ids")
            if isinstance(ids, list):
                for v in ids:
                    if isinstance(v, str):
                        seen.setdefault(v, None)
        elif isinstance(x, list):
            for v in x[:MAX_EVENT_DOC_IDS]:
                walk(v, depth + 1)

    walk(data, 0)
    return list(seen)[:MAX_EVENT_DOC_IDS]


class Toolkit:
    """A named set of tools with one dispatcher. Unknown tools come back as error observations."""

    def __init__(self, tools: Iterable[Tool[Any]]) -> None:
        self.tools: dict[str, Tool[Any]] = {}
        for t in tools:
            if t.name in self.tools:
                raise ValueError(f"duplicate tool name {t.name!r}")
            self.tools[t.name] = t

    def __contains__(self, name: str) -> bool:
        return name in self.tools

    def __getitem__(self, name: str) -> Tool[Any]:
        return self.tools[name]

    def __iter__(self) -> Iterator[Tool[Any]]:
        return iter(self.tools.values())

    def names(self) -> list[str]:
        return list(self.tools)

    def subset(self, names: Iterable[str]) -> Toolkit:
        names = list(names)
        missing = [n for n in names if n not in self.tools]
        if missing:
            raise KeyError(f"unknown tools {missing}; available: {self.names()}")
        return Toolkit(self.tools[n] for n in names)

    def openai_schemas(self) -> list[dict[str, Any]]:
        return [t.openai_schema() for t in self.tools.values()]

    def invoke(
        self, name: str, arguments: Any = None, *, tracer: Any = None, call_id: str | None = None,
        control: CallControl | None = None,
    ) -> ToolResult:
        tool = self.tools.get(name)
        if tool is None:
            err = ToolArgumentError(f"unknown tool {shown(name, 80)}; available tools: {', '.join(self.tools)}")
            result = error_result(err)
            if tracer is not None:
                ev = _event(name, arguments, result, 0.0, result.text, call_id, content=captures_content(tracer))
                tracer.emit(ev)
            return result
        return tool.invoke(arguments, tracer=tracer, call_id=call_id, control=control)
