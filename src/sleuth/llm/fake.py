"""A scripted fake chat model for testing control flow (graphs, retries, budgets). Not a model of anything.

Each call pops the next item of the script:

* ``str``: the assistant's text content.
* ``{"tool": NAME, "arguments": {...}}`` or a list of those: tool calls (``arguments`` may be a raw string, to
  test broken JSON from a model).
* a pydantic model instance, a dict or a JSON string: a structured output (for :meth:`structured`).
* an ``Exception`` instance: raised from the call (to test a server that dies mid-run).
* a callable ``f(messages, tools) -> item``: computed from what the model is shown.

It implements the same :class:`~sleuth.llm.base.ChatModel` interface as the real client, including usage
records (whitespace token counts, ``token_source="local_tokenizer"``, cost unmeasured) and trace events.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel, ValidationError

from sleuth.errors import ModelError, ModelOutputError
from sleuth.llm.base import ChatResult, Message, T, TokenLogprob, ToolCall
from sleuth.llm.events import call_event, messages_request
from sleuth.records import Usage

ScriptItem = Any
SCRIPTED_PROVIDER = "sleuth.scripted"  # gen_ai.provider.name of the fake (a custom value)


class ScriptExhaustedError(ModelError):
    """The scripted model was called more times than its script has items."""


class ScriptedModel:
    supports_logprobs = True
    supports_prefill = True  # the script decides what a "continuation" of a trailing assistant message is

    def __init__(self, script: Iterable[ScriptItem] = (), *, model: str = "scripted", default: ScriptItem = None):
        self.model = model
        self.script: list[ScriptItem] = list(script)
        self.default = default
        self.calls: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    # -- helpers ------------------------------------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def _next(self, messages: list[Message], tools: list[dict[str, Any]] | None) -> ScriptItem:
        if self.script:
            item = self.script.pop(0)
        elif self.default is not None:
            item = self.default
        else:
            raise ScriptExhaustedError(f"scripted model called {len(self.calls)} times; script is empty")
        if callable(item) and not isinstance(item, type | BaseModel):
            item = item(messages, tools)
        if isinstance(item, BaseException):
            raise item
        return item

    def _usage(self, messages: list[Message], out: str) -> Usage:
        prompt = sum(self.count_tokens(str(m.get("content") or "")) for m in messages)
        return Usage.one_call(prompt, self.count_tokens(out), None, "local_tokenizer")

    def _to_result(self, item: ScriptItem, messages: list[Message]) -> ChatResult:
        content, calls = "", []
        if isinstance(item, str):
            content = item
        elif isinstance(item, BaseModel):
            content = item.model_dump_json()
        elif isinstance(item, dict) and "tool" in item:
            calls = [self._call(item)]
        elif isinstance(item, list) and all(isinstance(i, dict) and "tool" in i for i in item):
            calls = [self._call(i) for i in item]
        elif isinstance(item, dict):
            content = json.dumps(item)
        else:
            raise TypeError(f"unsupported script item: {item!r}")
        out = content + "".join(c.raw_arguments for c in calls)
        return ChatResult(
            content=content,
            tool_calls=calls,
            usage=self._usage(messages, out),
            model=self.model,
            finish_reason="tool_calls" if calls else "stop",
            logprobs=[TokenLogprob(token=t, logprob=0.0) for t in content.split()[:1]] or None,
        )

    def _call(self, item: dict[str, Any]) -> ToolCall:
        args = item.get("arguments", {})
        cid = f"call_{next(self._ids)}"
        if isinstance(args, str):
            try:
                parsed = json.loads(args)
                return ToolCall(id=cid, name=item["tool"], arguments=parsed, raw_arguments=args)
            except json.JSONDecodeError as e:
                return ToolCall(id=cid, name=item["tool"], raw_arguments=args, parse_error=str(e))
        return ToolCall(id=cid, name=item["tool"], arguments=args, raw_arguments=json.dumps(args))

    def _trace(
        self, tracer: Any, name: str, result: ChatResult, messages: list[Message], t0: float,
        tools: list[dict[str, Any]] | None = None, **params: Any,
    ) -> None:
        if tracer is not None:
            timed = result.model_copy(update={"latency_s": time.perf_counter() - t0})
            tracer.emit(call_event(
                name, model=self.model, provider=SCRIPTED_PROVIDER, server=None,
                req=messages_request(messages, **params), result=timed, n_tools=len(tools or []), tracer=tracer,
            ))

    # -- ChatModel ----------------------------------------------------------------------------------------------
    def chat(
        self,
        messages: list[Message],
        *,
        tools: list[dict[str, Any]] | None = None,
        response_format: dict[str, Any] | type[BaseModel] | None = None,
        temperature: float = 0.0,
        max_tokens: int | None = None,
        logprobs: bool = False,
        top_logprobs: int | None = None,
        stop: list[str] | None = None,
        tracer: Any = None,
        name: str = "chat",
    ) -> ChatResult:
        t0 = time.perf_counter()
        self.calls.append(
            {"messages": [dict(m) for m in messages], "tools": tools, "name": name, "max_tokens": max_tokens}
        )
        result = self._to_result(self._next(messages, tools), messages)
        result.latency_s = time.perf_counter() - t0
        self._trace(tracer, name, result, messages, t0, tools, temperature=temperature, max_tokens=max_tokens)
        return result

    async def achat(self, messages: list[Message], **kwargs: Any) -> ChatResult:
        return self.chat(messages, **kwargs)

    def structured(
        self,
        messages: list[Message],
        schema: type[T],
        *,
        retries: int = 2,
        max_tokens: int | None = None,
        tracer: Any = None,
        name: str = "structured",
    ) -> tuple[T, ChatResult]:
        total = Usage()
        last_error = ""
        for _attempt in range(retries + 1):
            t0 = time.perf_counter()
            self.calls.append({"messages": [dict(m) for m in messages], "schema": schema.__name__, "name": name})
            item = self._next(messages, None)
            if isinstance(item, schema):
                result = self._to_result(item, messages)
                self._trace(tracer, name, result, messages, t0, max_tokens=max_tokens)
                return item, result.model_copy(update={"usage": total + result.usage})
            result = self._to_result(item, messages) if not isinstance(item, str) else ChatResult(
                content=item, usage=self._usage(messages, item), model=self.model
            )
            total = total + result.usage
            self._trace(tracer, name, result, messages, t0, max_tokens=max_tokens)
            try:
                raw = item if isinstance(item, str) else json.dumps(item)
                value = schema.model_validate_json(raw)
                return value, result.model_copy(update={"usage": total})
            except (ValidationError, ValueError) as e:
                last_error = str(e)
        raise ModelOutputError(
            f"scripted output did not validate as {schema.__name__} after {retries + 1} attempts: {last_error[:300]}"
        )


def tool(name: str, **arguments: Any) -> dict[str, Any]:
    """Script helper: ``tool("grep", pattern="x")`` is a tool-call item."""
    return {"tool": name, "arguments": arguments}


ScriptFn = Callable[[list[Message], list[dict[str, Any]] | None], ScriptItem]
