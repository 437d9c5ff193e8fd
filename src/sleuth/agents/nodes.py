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
from typing import Any, Literal, Protocol

from langgraph.runtime import Runtime
from pydantic import BaseModel, Field, create_model

from sleuth.agents.config import AgentConfig
from sleuth.agents.context import CLEARED_MARKER, DROPPED_NOTE, TRUNCATION_NOTE, compact
from sleuth.agents.state import AgentState, usage_dump
from sleuth.errors import ModelOutputError
from sleuth.llm.accounting import UsageCounter
from sleuth.llm.base import ChatResult, Message, ToolCall
from sleuth.prompts import load
from sleuth.records import TraceEvent, Usage
from sleuth.tools.base import ERROR_TEMPLATE

NodeFn = Callable[[AgentState, "NodeContext"], dict[str, Any]]

# prefixed to a tool observation when the model repeats a call: an instruction, never evidence or an answer
REPEAT_NOTE = "(You already made this exact call; its result is above. Try something else or call answer.)"


# -- tracing around nodes -------------------------------------------------------------------------------------


class NodeTracer(UsageCounter):
    """The run's tracer for one node: stamps ``node`` on each event and counts the node's LLM calls, tool calls
    and usage (:class:`~sleuth.llm.accounting.UsageCounter`), which the node adds to the run's totals."""

    def __init__(self, base: Any, node: str) -> None:
        super().__init__(base, span=True)  # the node's span: its model and tool calls nest under it
        self.node = node

    def emit(self, event: TraceEvent) -> TraceEvent:
        if not event.node:
            event = event.model_copy(update={"node": self.node})
        return super().emit(event)


class NodeContext:
    """What a node function receives: the run's config and its node tracer."""

    def __init__(self, config: AgentConfig, tracer: NodeTracer) -> None:
        self.config = config
        self.tracer = tracer
        self.model = config.model

    def count_tokens(self, text: str) -> int:
        return self.config.count_tokens(text)


def _summary(update: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in update.items():
        if k in ("messages", "passages", "pending", "usage", "docs_seen", "digests"):
            out[k] = len(v) if isinstance(v, list) else v
        elif isinstance(v, str):
            out[k] = v[:200]
        elif isinstance(v, list):
            out[k] = v[:10]
        else:
            out[k] = v
    return out


class GraphNode(Protocol):
    """A node as LangGraph calls it: the state, and the runtime whose ``context`` is the run's AgentConfig."""

    __name__: str

    def __call__(self, state: AgentState, *, runtime: Runtime[AgentConfig]) -> dict[str, Any]: ...


def node(fn: NodeFn) -> GraphNode:
    name = fn.__name__

    def run(state: AgentState, *, runtime: Runtime[AgentConfig]) -> dict[str, Any]:
        config = runtime.context
        tracer = NodeTracer(config.tracer, name)
        t0 = time.perf_counter()
        try:
            update = fn(state, NodeContext(config, tracer)) or {}
        except Exception as e:
            tracer.emit(tracer.own(TraceEvent(
                kind="error", name=name, latency_s=time.perf_counter() - t0, error=f"{type(e).__name__}: {e}"[:1000]
            )))
            raise
        dt = time.perf_counter() - t0
        if tracer.llm_calls:  # the run's totals are the tally of its traced calls (what `trace show` counts)
            update["usage"] = usage_dump(tracer.usage)
            update["llm_calls"] = state.get("llm_calls", 0) + tracer.llm_calls
        if tracer.tool_calls:
            update["tool_calls"] = state.get("tool_calls", 0) + tracer.tool_calls
        update["elapsed_s"] = state.get("elapsed_s", 0.0) + dt
        # what this step cost (the run's --json and the answer event list every step that ran)
        update["trail"] = [{"node": name, "seconds": round(dt, 3), "tokens": tracer.usage.total_tokens,
                            "llm_calls": tracer.llm_calls, "tool_calls": tracer.tool_calls}]
        summary = _summary({k: v for k, v in update.items() if k != "trail"})
        tracer.emit(tracer.own(TraceEvent(kind="node", name=name, latency_s=dt, data=summary)))
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


def cited_update(cx: NodeContext, model_ids: list[str], shown: list[str]) -> dict[str, Any]:
    """``doc_ids``: the ids the model cited among those it was ``shown``; ``dropped_doc_ids``: the ones it was never
    shown (dropped, and noted in the trace). When the model cites nothing, nothing is cited: there is no default
    citation, so supporting-paragraph recall counts the model's own citations only."""
    known = set(shown)
    wanted = list(dict.fromkeys(model_ids))
    cited = [d for d in wanted if d in known]
    dropped = [d for d in wanted if d not in known][:50]
    if dropped or not cited:
        cx.tracer.record("note", "doc_ids", data={"model_cited": wanted[:50], "kept": cited, "dropped_unseen": dropped})
    return {"doc_ids": cited, "dropped_doc_ids": dropped}


def _tool_message(call: ToolCall, text: str) -> Message:
    return {"role": "tool", "tool_call_id": call.id, "name": call.name, "content": text}


def _assistant_message(result: ChatResult, calls: list[ToolCall]) -> Message:
    msg: Message = {"role": "assistant", "content": result.content or ""}
    if calls:
        msg["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {
                    "name": c.name,
                    "arguments": json.dumps(c.arguments) if not c.parse_error else c.raw_arguments,
                },
            }
            for c in calls
        ]
    return msg


def _compacted(
    state: AgentState, cx: NodeContext, messages: list[Message], tools: list[dict[str, Any]] | None, gen: int
) -> tuple[list[Message], int]:
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
        strategy=(Literal[tuple(options)], Field(description="the search strategy")),  # type: ignore[arg-type]
        reason=(str, Field(description="one short sentence")),
    )


def choose_strategy(cx: NodeContext, question: str, options: list[str]) -> tuple[str, str]:
    """One cheap call: the model picks one of ``options`` (react | sira | iter-retgen) and says why; an output
    that cannot be read gives the default strategy, and the reason says so."""
    lines = [ln for ln in load("agent_router_options").splitlines() if ln.split(":")[0].lstrip("- ") in options]
    system, user = _prompt_parts("agent_router", options="\n".join(lines), question=question)
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
        return choice.strategy, choice.reason.strip()  # type: ignore[attr-defined]
    except ModelOutputError as e:
        default = cx.config.default_strategy if cx.config.default_strategy in options else options[0]
        return default, f"router output invalid ({e.message[:120]}); used the default {default}"


def route_question(state: AgentState, cx: NodeContext) -> dict[str, Any]:
    """The router: the model picks a strategy for the question (choice and reason are traced)."""
    strategy, reason = choose_strategy(cx, state["question"], cx.config.available_strategies())
    cx.tracer.record("note", "route", preview=f"{strategy}: {reason}", data={"strategy": strategy, "reason": reason})
    return {"strategy": strategy, "route_reason": reason}


# an answer taken back: what the model is told (instructions, never evidence or an answer)
FORCED_SEARCH_NOTE = (
    "(You answered before searching, so the agent searched for the question first. Answer from what it found, "
    "or search further.)"
)
UNSUPPORTED_NOTE = (
    "(That answer is not supported by the documents: {signal}. Search or read to check it, then call answer "
    "again.)"
)
NO_ANSWER_NOTES = {
    "steps": "the step budget ran out before the model answered",
    "tokens": "the token budget ran out before the model answered",
    "seconds": "the time budget ran out before the model answered",
    "cost": "the cost budget ran out before the model answered",
    "repeats": "the model made the same tool call again and again (a loop), so the search was stopped",
    "answer": "the model's answer could not be read (its output did not fit the answer format)",
    "empty_generation": "the model's last generation was empty",
    "parroted": "the model's last generation repeated the instructions instead of answering",
}


def no_answer_note(reason: str, state: AgentState, detail: str = "") -> str:
    """Why a run ends without an answer, for a person: the reason, what was tried, what was seen."""
    note = NO_ANSWER_NOTES.get(reason, f"the run stopped ({reason}) before the model answered")
    seen = state.get("docs_seen") or []
    parts = [note[0].upper() + note[1:]]
    if detail:
        parts.append(detail)
    if seen:
        shown = ", ".join(seen[-3:])
        parts.append(f"{len(seen)} documents seen, the last: {shown}" if len(seen) > 3 else f"documents seen: {shown}")
    return "; ".join(parts) + "."


def _fallback_answer(state: AgentState, reason: str, detail: str = "") -> dict[str, Any]:
    """No answer: ``answer`` stays None and the ``note`` says why (no observation or prompt text is passed off as
    an answer)."""
    return {"answer": None, "doc_ids": [], "answered_by": "none", "note": no_answer_note(reason, state, detail)}


def _prompt_texts(*extra: str) -> list[str]:
    """Instructions the agent shows the model: a reply that repeats one of them is no answer."""
    return [
        load("agent_react"),
        load("agent_dci"),
        load("agent_explore"),
        load("agent_nudge"),
        REPEAT_NOTE,
        FORCED_SEARCH_NOTE,
        UNSUPPORTED_NOTE,
        CLEARED_MARKER,
        DROPPED_NOTE,
        TRUNCATION_NOTE,
        ERROR_TEMPLATE,
        *extra,
    ]


def _parrots(answer: str, *prompts: str) -> bool:
    """A small model sometimes answers with the instruction it was given: that is no answer."""
    a = " ".join(answer.lower().split())
    if len(a) < 20:
        return False
    return any(a[:20] in " ".join(p.lower().split()) for p in _prompt_texts(*prompts))


# -- end ------------------------------------------------------------------------------------------------------


def finish(state: AgentState, cx: NodeContext) -> dict[str, Any]:
    """Record the answer, or that there is none and why (with the run's totals), as the last event of the run."""
    usage = _usage(state)
    answer = state.get("answer") or None
    stop = state.get("stop_reason") or "answered"
    if answer is None and stop == "answered":
        stop = "no_answer"
    note = "" if answer is not None else state.get("note") or no_answer_note(stop.removeprefix("budget:"), state)
    cx.tracer.record(
        "answer",
        state.get("answered_by", "model") if answer is not None else "none",
        preview=(answer if answer is not None else f"no answer: {note}")[:300],
        data={
            "answer": answer,
            "note": note,
            "doc_ids": (state.get("doc_ids") or []) if answer is not None else [],
            "dropped_doc_ids": state.get("dropped_doc_ids") or [],
            "strategy": state.get("strategy", ""),
            **({"iter_retgen_answer": state["iter_retgen_answer"]} if state.get("iter_retgen_answer") else {}),
            "stop_reason": stop,
            "budget_exhausted": state.get("exhausted"),
            "steps": state.get("steps", 0),
            "llm_calls": state.get("llm_calls", 0),
            "tool_calls": state.get("tool_calls", 0),
            "usage_total": usage.model_dump(mode="json"),
            "elapsed_s": round(state.get("elapsed_s", 0.0), 3),
            "caveat": state.get("caveat", "") if answer is not None else "",
            "plan": state.get("plan") or [],
            "escalations": state.get("escalations") or [],
            "policies": state.get("policies") or {},
            "steps_run": [t["node"] for t in state.get("trail") or []],
        },
    )
    out: dict[str, Any] = {"stop_reason": stop}
    if answer is None:
        out.update(answer=None, note=note, answered_by="none", doc_ids=[])
    return out
