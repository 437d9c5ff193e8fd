"""The ``kind="llm"`` trace event of one model call, built once for every client (``LLM``, ``ScriptedModel``).

What the event holds is what an OpenTelemetry exporter needs for the GenAI semantic conventions
(``sleuth.tracing.spans``): ``args`` = the request (model, ``provider`` as ``gen_ai.provider.name`` names it,
``server``, message and tool counts, temperature, max_tokens), ``data`` = the response (finish reason, response
model and id, the ids and names of the tool calls it asked for, cached or not). Prompts and completions are content:
only when the tracer asks for it (``capture_content``, see :func:`sleuth.tracing.tracer.captures_content`) does
``data["content"]`` hold the messages sent and the assistant message received, in full.
"""

from __future__ import annotations

import json
from typing import Any

from sleuth.llm.base import ChatResult, Message
from sleuth.records import TraceEvent, Usage
from sleuth.tracing.genai import LOCAL_PROVIDER, provider_name
from sleuth.tracing.tracer import captures_content

__all__ = ["LOCAL_PROVIDER", "call_event", "failed_call_event", "messages_request", "provider_name"]

REQUEST_PARAMS = ("temperature", "max_tokens", "top_p", "seed", "stop")


def _request_args(model: str, provider: str, server: str | None, req: dict[str, Any], n_tools: int) -> dict[str, Any]:
    args: dict[str, Any] = {"model": model, "provider": provider, "messages": len(req["messages"]), "tools": n_tools}
    if server:
        args["server"] = server
    args.update({k: req[k] for k in REQUEST_PARAMS if req.get(k) is not None})
    return args


def call_event(
    name: str, *, model: str, provider: str, server: str | None, req: dict[str, Any], result: ChatResult,
    n_tools: int, tracer: Any,
) -> TraceEvent:
    """The event of a call that returned ``result`` (``req``: what was sent, ``messages`` at least)."""
    data: dict[str, Any] = {"finish_reason": result.finish_reason, "cached": result.cached}
    if result.response_model:
        data["response_model"] = result.response_model
    if result.response_id:
        data["response_id"] = result.response_id
    if result.tool_calls:
        data["tool_calls"] = [{"id": c.id, "name": c.name} for c in result.tool_calls]
    if captures_content(tracer):
        data["content"] = {"input": list(req["messages"]), "output": result.assistant_message()}
    return TraceEvent(
        kind="llm",
        name=name,
        args=_request_args(model, provider, server, req, n_tools),
        result_chars=len(result.content) + sum(len(c.raw_arguments) for c in result.tool_calls),
        preview=(
            result.content or json.dumps([c.model_dump(include={"name", "arguments"}) for c in result.tool_calls])
        )[:200],
        usage=result.usage,
        latency_s=result.latency_s,
        data=data,
    )


def failed_call_event(
    name: str, *, model: str, provider: str, server: str | None, req: dict[str, Any], error: str,
    usage: Usage | None, latency_s: float, n_tools: int, tracer: Any,
) -> TraceEvent:
    """The event of a call that raised (``usage``: a rejected reply's tokens, which still count)."""
    data: dict[str, Any] = {}
    if captures_content(tracer):
        data["content"] = {"input": list(req["messages"])}
    return TraceEvent(
        kind="llm", name=name, args=_request_args(model, provider, server, req, n_tools), latency_s=latency_s,
        usage=usage, error=error, data=data,
    )


def messages_request(messages: list[Message], **params: Any) -> dict[str, Any]:
    """A request dict for clients that send no litellm request (the scripted model)."""
    return {"messages": messages, **{k: v for k, v in params.items() if v is not None}}
