"""The agent's graph nodes: one named function per node, each ``(state, runtime) -> state update``.

Everything a node needs comes from ``runtime.context`` (an :class:`~sleuth.agents.config.AgentConfig`): the
model, the toolkit, the retrievers, the tracer, the budget. Nodes never build any of them.

Every node is wrapped by :func:`node`, which

* hands the node a tracer that stamps the node's name on each event it emits (LLM calls, tool calls) and sums
  the usage of every ``kind="llm"`` event, so the run's usage is exactly the sum of its traced calls;
* records one ``kind="node"`` event per node (latency, a summary of the update) or ``kind="error"`` when it
  raises, and adds the node's wall time to ``elapsed_s`` (kept in the checkpoint, so budgets survive a resume).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, Literal

from langgraph.runtime import Runtime
from pydantic import BaseModel, Field, create_model

from sleuth.agents.config import AgentConfig
from sleuth.agents.context import cap_text, compact
from sleuth.agents.repair import repair_calls
from sleuth.agents.runtrace import active
from sleuth.agents.state import AgentState, usage_dump
from sleuth.errors import ModelOutputError, ToolArgumentError
from sleuth.llm.base import ChatResult, Message, ToolCall
from sleuth.prompts import load
from sleuth.records import TraceEvent, Usage
from sleuth.tools.answer import ANSWER_TOOL
from sleuth.tools.base import ERROR_TEMPLATE, error_result

NodeFn = Callable[[AgentState, "NodeContext"], dict[str, Any]]


# -- tracing around nodes -------------------------------------------------------------------------------------


class NodeTracer:
    """Wraps the run's tracer for one node: stamps ``node`` on events and sums the usage of LLM events."""

    def __init__(self, base: Any, node: str) -> None:
        self.base = base
        self.node = node
        self.run_id = base.run_id
        self.usage = Usage()
        self.llm_calls = 0

    def emit(self, event: TraceEvent) -> TraceEvent:
        if not event.node:
            event = event.model_copy(update={"node": self.node})
        if event.kind == "llm":
            self.llm_calls += 1
            if event.usage is not None:
                self.usage = self.usage + event.usage
        return self.base.emit(event)

    def record(self, kind: str, name: str = "", **fields: Any) -> TraceEvent:
        return self.emit(TraceEvent(kind=kind, name=name, **fields))  # type: ignore[arg-type]


class NodeContext:
    """What a node function receives: the run's config and its node tracer."""

    def __init__(self, config: AgentConfig, tracer: NodeTracer) -> None:
        self.config = config
        self.tracer = tracer
        self.model = config.model

    def count_tokens(self, text: str) -> int:
        cache = self.config.__dict__.setdefault("_token_cache", {})
        n = cache.get(text)
        if n is None:
            n = self.model.count_tokens(text)
            if len(cache) > 4096:
                cache.clear()
            cache[text] = n
        return n


def _summary(update: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in update.items():
        if k in ("messages", "passages", "pending", "usage", "docs_seen"):
            out[k] = len(v) if isinstance(v, list) else v
        elif isinstance(v, str):
            out[k] = v[:200]
        elif isinstance(v, list):
            out[k] = v[:10]
        else:
            out[k] = v
    return out


def node(fn: NodeFn) -> Callable[[AgentState, Runtime[AgentConfig]], dict[str, Any]]:
    name = fn.__name__

    def run(state: AgentState, runtime: Runtime[AgentConfig]) -> dict[str, Any]:
        config = runtime.context
        tracer = NodeTracer(config.tracer, name)
        t0 = time.perf_counter()
        try:
            with active(tracer):
                update = fn(state, NodeContext(config, tracer)) or {}
        except Exception as e:
            tracer.record(
                "error", name, latency_s=time.perf_counter() - t0, error=f"{type(e).__name__}: {e}"[:1000]
            )
            raise
        dt = time.perf_counter() - t0
        if tracer.llm_calls:
            update["usage"] = usage_dump(tracer.usage)
            update["llm_calls"] = state.get("llm_calls", 0) + tracer.llm_calls
        update["elapsed_s"] = state.get("elapsed_s", 0.0) + dt
        tracer.record("node", name, latency_s=dt, data=_summary(update))
        return update

    run.__name__ = name
    run.__qualname__ = name
    run.__doc__ = fn.__doc__
    return run


# -- helpers --------------------------------------------------------------------------------------------------


def _usage(state: AgentState) -> Usage:
    return Usage.model_validate(state.get("usage") or {})


def _exhausted(state: AgentState, cx: NodeContext) -> str | None:
    name = cx.config.budget.exhausted(
        steps=state.get("steps", 0), usage=_usage(state), elapsed_s=state.get("elapsed_s", 0.0)
    )
    if name:
        cx.tracer.record(
            "budget",
            name,
            data={
                "budget": name,
                "limits": cx.config.budget.model_dump(),
                "remaining": cx.config.budget.remaining(
                    steps=state.get("steps", 0), usage=_usage(state), elapsed_s=state.get("elapsed_s", 0.0)
                ),
            },
        )
    return name


def _prompt_parts(name: str, **fields: Any) -> tuple[str, str]:
    text = load(name)
    system, _, user = text.partition("=== user ===")
    return system.strip().format(**fields), user.strip().format(**fields)


def _doc_ids_in(data: Any, out: list[str], depth: int = 0) -> None:
    """Doc ids in a tool's structured result (hits, read results, ls listings), in order."""
    if depth > 4:
        return
    if isinstance(data, dict):
        d = data.get("doc_id")
        if isinstance(d, str):
            out.append(d)
        for v in data.values():
            if isinstance(v, dict | list):
                _doc_ids_in(v, out, depth + 1)
    elif isinstance(data, list):
        for v in data[:200]:
            _doc_ids_in(v, out, depth + 1)


def _merge_seen(seen: list[str], new: list[str]) -> list[str]:
    return list(dict.fromkeys([*seen, *new]))


def _tool_message(call: ToolCall, text: str) -> Message:
    return {"role": "tool", "tool_call_id": call.id, "name": call.name, "content": text}


def _assistant_message(result: ChatResult, calls: list[ToolCall]) -> Message:
    msg: Message = {"role": "assistant", "content": result.content or ""}
    if calls:
        msg["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.arguments) if not c.parse_error else c.raw_arguments},
            }
            for c in calls
        ]
    return msg


def _react_tools(cx: NodeContext) -> list[dict[str, Any]]:
    schemas = cx.config.__dict__.get("_schemas")
    if schemas is None:  # computed once per run: the same bytes every turn keep the server's prompt cache warm
        schemas = cx.config.__dict__["_schemas"] = cx.config.tool_schemas()
    return schemas


def _compacted(state: AgentState, cx: NodeContext, messages: list[Message], tools: list[dict[str, Any]] | None, gen: int):
    budget = cx.config.context.prompt_budget(gen)
    out, cleared, estimate = compact(messages, tools, cx.count_tokens, budget)
    if cleared:
        cx.tracer.record(
            "note",
            "context",
            data={"cleared_outputs": cleared, "estimated_prompt_tokens": estimate, "prompt_budget": budget},
        )
    return out, cleared


# -- router ---------------------------------------------------------------------------------------------------


def route_schema(options: list[str]) -> type[BaseModel]:
    return create_model(
        "RouteChoice",
        strategy=(Literal[tuple(options)], Field(description="the search strategy")),  # type: ignore[valid-type]
        reason=(str, Field(description="one short sentence")),
    )


def route_question(state: AgentState, cx: NodeContext) -> dict[str, Any]:
    """The router: the model picks a strategy for the question (choice and reason are traced)."""
    options = cx.config.available_strategies()
    lines = [ln for ln in load("agent_router_options").splitlines() if ln.split(":")[0].lstrip("- ") in options]
    system, user = _prompt_parts("agent_router", options="\n".join(lines), question=state["question"])
    schema = route_schema(options)
    router = cx.config.router_model or cx.model
    try:
        choice, _ = router.structured(
            [{"role": "system", "content": system}, {"role": "user", "content": user}],
            schema,
            retries=1,
            max_tokens=96,
            tracer=cx.tracer,
            name="route",
        )
        strategy, reason = choice.strategy, choice.reason.strip()  # type: ignore[attr-defined]
    except ModelOutputError as e:
        default = cx.config.default_strategy if cx.config.default_strategy in options else options[0]
        strategy, reason = default, f"router output invalid ({e.message[:120]}); used the default {default}"
    cx.tracer.record("note", "route", preview=f"{strategy}: {reason}", data={"strategy": strategy, "reason": reason})
    return {"strategy": strategy, "route_reason": reason}


# -- react ----------------------------------------------------------------------------------------------------


def initial_messages(question: str) -> list[Message]:
    return [{"role": "system", "content": load("agent_react")}, {"role": "user", "content": f"Question: {question}"}]


def call_model(state: AgentState, cx: NodeContext) -> dict[str, Any]:
    """One react turn: the model sees the tool schemas and the conversation, and asks for tool calls."""
    exhausted = _exhausted(state, cx)
    if exhausted:
        return {"exhausted": exhausted, "pending": []}
    tools = _react_tools(cx)
    messages, cleared = _compacted(
        state, cx, state.get("messages") or initial_messages(state["question"]), tools, cx.config.context.max_step_tokens
    )
    update: dict[str, Any] = {"steps": state.get("steps", 0) + 1}
    try:
        result = cx.model.chat(
            messages, tools=tools, max_tokens=cx.config.context.max_step_tokens, tracer=cx.tracer, name="agent"
        )
    except ModelOutputError as e:  # the reply was not a call even after the model layer's repair
        idle = state.get("idle_turns", 0) + 1
        messages = [*messages, {"role": "user", "content": ERROR_TEMPLATE.format(kind="ModelOutputError", message=e.message[:300])}]
        return {**update, "messages": messages, "pending": [], "idle_turns": idle,
                "cleared_outputs": state.get("cleared_outputs", 0) + cleared}
    calls, notes = repair_calls(result.tool_calls, result.content, cx.config.toolkit.names(), f"s{update['steps']}")  # type: ignore[union-attr]
    if notes:
        cx.tracer.record("note", "repair", data={"repairs": notes})
    messages = [*messages, _assistant_message(result, calls)]
    update.update(
        messages=messages,
        pending=[c.model_dump() for c in calls],
        repairs=state.get("repairs", 0) + len(notes),
        cleared_outputs=state.get("cleared_outputs", 0) + cleared,
    )
    if calls:
        update["idle_turns"] = 0
        return update
    idle = state.get("idle_turns", 0) + 1
    update["idle_turns"] = idle
    if idle >= cx.config.max_idle_turns and result.content.strip():
        seen = state.get("docs_seen") or []
        update.update(
            answer=result.content.strip(), doc_ids=seen[-2:], answered_by="text", stop_reason="no_tool_call"
        )
        cx.tracer.record("note", "no_tool_call", data={"idle_turns": idle, "taken_as_answer": True})
    else:
        messages.append({"role": "user", "content": load("agent_nudge")})
    return update


def _previous_calls(messages: list[Message]) -> dict[str, int]:
    """How often each call (name + arguments) was made before the current turn."""
    out: dict[str, int] = {}
    for m in messages[:-1]:  # the last assistant message holds the calls being run now
        for c in m.get("tool_calls") or ():
            fn = c.get("function", {})
            key = f"{fn.get('name')}:{fn.get('arguments')}"
            out[key] = out.get(key, 0) + 1
    return out


def run_tools(state: AgentState, cx: NodeContext) -> dict[str, Any]:
    """Run the pending tool calls; errors the model caused come back as observations; `answer` ends the run."""
    toolkit = cx.config.toolkit
    assert toolkit is not None
    messages = list(state.get("messages") or [])
    seen = list(state.get("docs_seen") or [])
    earlier = _previous_calls(messages)
    n_calls = state.get("tool_calls", 0)
    update: dict[str, Any] = {"pending": []}
    for raw in state.get("pending") or []:
        call = ToolCall.model_validate(raw)
        n_calls += 1
        if call.parse_error:
            err = ToolArgumentError(f"arguments for {call.name} are not valid JSON: {call.parse_error}")
            text = error_result(err).text
            cx.tracer.record("tool", call.name, args={"raw": call.raw_arguments[:500]}, error=text, result_chars=len(text))
            messages.append(_tool_message(call, text))
            continue
        result = toolkit.invoke(call.name, call.arguments, tracer=cx.tracer)
        if call.name == ANSWER_TOOL and not result.is_error:
            update.update(
                answer=result.data["answer"], doc_ids=result.data["doc_ids"], answered_by="model", stop_reason="answered"
            )
            messages.append(_tool_message(call, result.text))
            break
        text, truncated = cap_text(result.text, cx.config.context.max_result_chars)
        key = f"{call.name}:{json.dumps(call.arguments)}"
        repeats = earlier.get(key, 0) + 1
        limit = cx.config.max_repeats
        if limit is not None and repeats >= limit:  # a looping model (greedy decoding repeats itself): answer now
            update["exhausted"] = "repeats"
            cx.tracer.record("budget", "repeats", data={"budget": "repeats", "call": key[:300], "times": repeats})
        if repeats > 1:
            text = "(You already made this exact call; its result is above. Try something else or call answer.)\n" + text
        ids: list[str] = []
        _doc_ids_in(result.data, ids)
        seen = _merge_seen(seen, ids)
        messages.append(_tool_message(call, text))
    update.update(messages=messages, docs_seen=seen, tool_calls=n_calls)
    return update


def _fallback_answer(state: AgentState, reason: str) -> dict[str, Any]:
    last = ""
    for m in reversed(state.get("messages") or []):
        if m.get("role") == "tool" and m.get("content"):
            last = str(m["content"])
            break
    if not last and state.get("passages"):
        last = str(state["passages"][0].get("text", ""))
    evidence = " ".join(last.split())[:300]
    answer = f"No answer: the {reason} budget ran out." + (f" Last evidence seen: {evidence}" if evidence else "")
    seen = state.get("docs_seen") or []
    return {"answer": answer, "doc_ids": seen[-2:], "answered_by": "fallback"}


def _parrots(answer: str, prompt: str) -> bool:
    """A small model sometimes answers with the instruction it was given: that is no answer."""
    a = " ".join(answer.lower().split())
    return len(a) >= 20 and a[:20] in " ".join(prompt.lower().split())


def force_answer(state: AgentState, cx: NodeContext) -> dict[str, Any]:
    """A budget ran out: one last call that may only answer, else an answer from the last observations."""
    reason = state.get("exhausted") or "steps"
    update: dict[str, Any] = {"stop_reason": f"budget:{reason}"}
    if cx.config.budget.final_answer_call:
        toolkit = cx.config.toolkit
        assert toolkit is not None
        tools = cx.config.tool_schemas([ANSWER_TOOL])
        messages = [*(state.get("messages") or initial_messages(state["question"]))]
        prompt = load("agent_force_answer").format(budget=reason, question=state["question"])
        messages.append({"role": "user", "content": prompt})
        messages, _ = _compacted(state, cx, messages, tools, cx.config.context.max_answer_tokens)
        try:
            result = cx.model.chat(
                messages, tools=tools, max_tokens=cx.config.context.max_answer_tokens, tracer=cx.tracer, name="force_answer"
            )
            calls, _ = repair_calls(result.tool_calls, result.content, [ANSWER_TOOL], "final")
        except ModelOutputError:
            calls = []
            result = None
        for call in calls:
            if call.name != ANSWER_TOOL or call.parse_error:
                continue
            res = toolkit.invoke(ANSWER_TOOL, call.arguments, tracer=cx.tracer)
            if not res.is_error and not _parrots(res.data["answer"], prompt):
                return {**update, "answer": res.data["answer"], "doc_ids": res.data["doc_ids"], "answered_by": "forced"}
        if result is not None and result.content.strip() and not calls:
            seen = state.get("docs_seen") or []
            return {**update, "answer": result.content.strip(), "doc_ids": seen[-2:], "answered_by": "forced_text"}
    update.update(_fallback_answer(state, reason))
    return update


# -- end ------------------------------------------------------------------------------------------------------


def finish(state: AgentState, cx: NodeContext) -> dict[str, Any]:
    """Record the answer (with the run's totals) as the last event of the run."""
    usage = _usage(state)
    cx.tracer.record(
        "answer",
        state.get("answered_by", "model"),
        preview=(state.get("answer") or "")[:300],
        data={
            "answer": state.get("answer") or "",
            "doc_ids": state.get("doc_ids") or [],
            "strategy": state.get("strategy", ""),
            "stop_reason": state.get("stop_reason", "answered"),
            "budget_exhausted": state.get("exhausted"),
            "steps": state.get("steps", 0),
            "llm_calls": state.get("llm_calls", 0),
            "tool_calls": state.get("tool_calls", 0),
            "usage_total": usage.model_dump(mode="json"),
            "elapsed_s": round(state.get("elapsed_s", 0.0), 3),
        },
    )
    return {"stop_reason": state.get("stop_reason") or "answered"}
