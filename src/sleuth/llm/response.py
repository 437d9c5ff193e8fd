"""From litellm's completion objects to sleuth's records, and the request shapes the client sends: one
:class:`~sleuth.llm.base.ChatResult` per response (:func:`chat_result`), the messages for a backend without tool
calling (:func:`fallback_messages`), a pydantic ``response_format`` as the JSON-schema dict servers take."""

from __future__ import annotations

import json
import time
from typing import Any

from pydantic import BaseModel

from sleuth.errors import ModelOutputError
from sleuth.llm import accounting
from sleuth.llm.base import ChatResult, Message, TokenLogprob
from sleuth.llm.errmap import protocol_error
from sleuth.llm.toolcalls import native_tool_calls, parse_tool_calls, tool_names


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def response_format_dict(response_format: dict[str, Any] | type[BaseModel] | None) -> dict[str, Any] | None:
    if response_format is None or isinstance(response_format, dict):
        return response_format
    if isinstance(response_format, type) and issubclass(response_format, BaseModel):
        return {
            "type": "json_schema",
            "json_schema": {"name": response_format.__name__, "schema": response_format.model_json_schema()},
        }
    raise TypeError(f"response_format must be a dict or a pydantic model class, not {response_format!r}")


def chat_result(
    resp: Any,
    req: dict[str, Any],
    *,
    model: str,
    litellm_model: str,
    priced_model: str | None,
    fallback: bool,
    t0: float,
    tools: list[dict[str, Any]] | None,
    where: str | None = None,
) -> ChatResult:
    """A litellm completion as a :class:`ChatResult`: content, tool calls (native, or written as text by a backend
    without them; ``fallback``: the call was asked for through the prompt, so a reply without one is an error that
    carries the tokens spent), usage priced for ``priced_model`` (None: unpriced), logprobs, response ids."""
    choices = getattr(resp, "choices", None)
    if not choices:
        raise protocol_error(model, where, f"the response has no choices: {str(resp)[:300]}")
    choice = choices[0]
    msg = choice.message
    content = getattr(msg, "content", None) or ""
    calls = native_tool_calls(getattr(msg, "tool_calls", None) or [])
    usage = accounting.usage_from_response(
        litellm_model,
        getattr(resp, "usage", None),
        req["messages"],
        content,
        priced_model=priced_model,
    )
    if not calls and tools:
        # a backend that wrote its call as text; only names of offered tools count (a JSON answer with a
        # "name" field is not a call)
        names = set(tool_names(tools))
        calls = [c for c in parse_tool_calls(content) if c.name in names]
        if fallback and not calls:  # the reply is rejected, but its tokens were spent: the error carries them
            raise ModelOutputError(f"{model}: expected a tool call, got: {content[:300]!r}", usage=usage)
    return ChatResult(
        content="" if fallback else content,
        tool_calls=calls,
        usage=usage,
        latency_s=time.perf_counter() - t0,
        model=model,
        finish_reason="tool_calls" if calls else getattr(choice, "finish_reason", None),
        logprobs=_logprobs(getattr(choice, "logprobs", None)),
        response_model=_text_or_none(getattr(resp, "model", None)),
        response_id=_text_or_none(getattr(resp, "id", None)),
    )


def fallback_messages(messages: list[Message], instruction: str) -> list[Message]:
    """Messages for a backend without tool calling: the tool instruction joins the system message; earlier tool
    calls become JSON text and tool results become user messages."""
    out: list[Message] = []
    for m in messages:
        role = m.get("role")
        if role == "assistant" and m.get("tool_calls"):
            calls = [
                {"name": c["function"]["name"], "arguments": _maybe_json(c["function"].get("arguments", "{}"))}
                for c in m["tool_calls"]
            ]
            text = json.dumps(calls[0] if len(calls) == 1 else calls)
            out.append({"role": "assistant", "content": ((m.get("content") or "") + "\n" + text).strip()})
        elif role == "tool":
            label = m.get("name") or "the tool"
            out.append({"role": "user", "content": f"Result of {label}:\n{m.get('content', '')}"})
        else:
            out.append({k: v for k, v in m.items() if k in ("role", "content")})
    if out and out[0].get("role") == "system":
        out[0] = {"role": "system", "content": f"{out[0].get('content', '')}\n\n{instruction}".strip()}
    else:
        out.insert(0, {"role": "system", "content": instruction})
    return out


def _maybe_json(s: Any) -> Any:
    if not isinstance(s, str):
        return s
    try:
        return json.loads(s)
    except json.JSONDecodeError:
        return s


def _logprobs(lp: Any) -> list[TokenLogprob] | None:
    if lp is None:
        return None
    field = accounting.field_of
    content = field(lp, "content")
    if not content:
        return None
    out = []
    for item in content:
        top = {field(alt, "token"): float(field(alt, "logprob")) for alt in field(item, "top_logprobs") or []}
        out.append(TokenLogprob(token=field(item, "token") or "", logprob=float(field(item, "logprob")), top=top))
    return out
