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
import re
import time
from collections.abc import Callable
from typing import Any, Literal, Protocol

from langgraph.runtime import Runtime
from pydantic import BaseModel, Field, create_model

from sleuth.agents.config import AgentConfig
from sleuth.agents.context import CLEARED_MARKER, DROPPED_NOTE, TRUNCATION_NOTE, cap_text, compact
from sleuth.agents.dci import DCI_TOOLS, digest
from sleuth.agents.fallback import query_words
from sleuth.agents.policies import Policies, constrain_schemas
from sleuth.agents.repair import repair_calls
from sleuth.agents.state import AgentState, usage_dump
from sleuth.agents.sufficiency import check_support, document_texts
from sleuth.errors import ModelOutputError, ToolArgumentError
from sleuth.llm.accounting import UsageCounter
from sleuth.llm.base import ChatResult, Message, ToolCall
from sleuth.prompts import load
from sleuth.records import TraceEvent, Usage
from sleuth.tools.answer import ANSWER_TOOL
from sleuth.tools.base import ERROR_TEMPLATE, error_result

NodeFn = Callable[[AgentState, "NodeContext"], dict[str, Any]]

# prefixed to a tool observation when the model repeats a call: an instruction, never evidence or an answer
REPEAT_NOTE = "(You already made this exact call; its result is above. Try something else or call answer.)"


# -- tracing around nodes -------------------------------------------------------------------------------------


class NodeTracer(UsageCounter):
    """The run's tracer for one node: stamps ``node`` on each event and counts the node's LLM calls, tool calls
    and usage (:class:`~sleuth.llm.accounting.UsageCounter`), which the node adds to the run's totals."""

    def __init__(self, base: Any, node: str) -> None:
        super().__init__(base)
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
            tracer.record(
                "error", name, latency_s=time.perf_counter() - t0, error=f"{type(e).__name__}: {e}"[:1000]
            )
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
        tracer.record("node", name, latency_s=dt, data=_summary({k: v for k, v in update.items() if k != "trail"}))
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


# -- react ----------------------------------------------------------------------------------------------------


SYSTEM_PROMPTS = {"dci": "agent_dci", "auto": "agent_explore"}  # others: agent_react
FEWSHOT = {"dci": "agent_fewshot_dci"}  # others: agent_fewshot_search
SEARCH_TOOLS = ("search", "grep", "read", "iter_retgen", "rerank")  # what counts as having searched


def policies_of(state: AgentState, cx: NodeContext) -> Policies:
    """The run's policies (recorded in the state at the first node; the config's for older checkpoints)."""
    recorded = state.get("policies")
    if recorded:
        return Policies.model_validate(recorded)
    return cx.config.resolved_policies(state.get("agent") or state.get("strategy") or "react")


def system_prompt(strategy: str, fewshot: bool) -> str:
    """The loop's system prompt, with the demonstrations at its end when the fewshot policy is on: the same text
    on every turn of every run (the prefix the server's prompt cache reuses)."""
    text = load(SYSTEM_PROMPTS.get(strategy, "agent_react"))
    if fewshot:
        text += "\n\n" + load(FEWSHOT.get(strategy, "agent_fewshot_search"))
    return text


def initial_messages(question: str, strategy: str = "react", fewshot: bool = False) -> list[Message]:
    return [{"role": "system", "content": system_prompt(strategy, fewshot)},
            {"role": "user", "content": f"Question: {question}"}]


def offered_names(state: AgentState, cx: NodeContext) -> tuple[str, ...] | None:
    """The tools this loop may call: grep/read/ls/answer in dci, every tool otherwise (None)."""
    if state.get("strategy") == "dci":
        have = cx.config.toolkit.names() if cx.config.toolkit is not None else []
        return tuple(n for n in DCI_TOOLS if n in have)
    return None


def offered_schemas(state: AgentState, cx: NodeContext, policies: Policies) -> list[dict[str, Any]]:
    schemas = cx.config.schemas_for(offered_names(state, cx))
    if policies.constrain_args:
        known = [*(state.get("listed") or []), *(state.get("docs_seen") or [])]
        schemas = constrain_schemas(schemas, known, cx.config.search_methods)
    return schemas


def _history(state: AgentState, cx: NodeContext, policies: Policies) -> list[Message]:
    return state.get("messages") or initial_messages(
        state["question"], state.get("strategy") or "react", policies.fewshot
    )


def call_model(state: AgentState, cx: NodeContext) -> dict[str, Any]:
    """One react turn: the model sees the tool schemas and the conversation, and asks for tool calls."""
    exhausted = _exhausted(state, cx)
    if exhausted:
        return {"exhausted": exhausted, "pending": []}
    policies = policies_of(state, cx)
    tools = offered_schemas(state, cx, policies)
    names = offered_names(state, cx) or tuple(cx.config.toolkit.names())  # type: ignore[union-attr]
    history = _history(state, cx, policies)
    messages, cleared = _compacted(state, cx, history, tools, cx.config.context.max_step_tokens)
    update: dict[str, Any] = {"steps": state.get("steps", 0) + 1}
    try:
        result = cx.model.chat(
            messages, tools=tools, max_tokens=cx.config.context.max_step_tokens, tracer=cx.tracer, name="agent"
        )
    except ModelOutputError as e:  # the reply was not a call even after the model layer's repair
        idle = state.get("idle_turns", 0) + 1
        error = ERROR_TEMPLATE.format(kind="ModelOutputError", message=e.message[:300])
        messages = [*messages, {"role": "user", "content": error}]
        return {**update, "messages": messages, "pending": [], "idle_turns": idle,
                "cleared_outputs": state.get("cleared_outputs", 0) + cleared}
    calls, notes = repair_calls(result.tool_calls, result.content, list(names), f"s{update['steps']}")
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
    if idle >= cx.config.max_idle_turns and result.content.strip() and not _parrots(result.content):
        seen = state.get("docs_seen") or []
        update.update(answer=result.content.strip(), doc_ids=seen[-2:], answered_by="text", stop_reason="no_tool_call")
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


# an answer taken back: what the model is told (instructions, never evidence or an answer)
FORCED_SEARCH_NOTE = (
    "(You answered before searching, so the agent searched for the question first. Answer from what it found, "
    "or search further.)"
)
UNSUPPORTED_NOTE = (
    "(That answer is not supported by the documents: {signal}. Search or read to check it, then call answer "
    "again.)"
)
MAX_REJECTED_ANSWERS = 1  # the sufficiency check sends an answer back once; the next one is taken


def _result_cap(state: AgentState, cx: NodeContext) -> int:
    if state.get("strategy") == "dci":
        return cx.config.dci_context.result_cap() or 10**9
    return cx.config.context.max_result_chars


def _tool_error(cx: NodeContext, call: ToolCall, err: ToolArgumentError) -> Message:
    text = error_result(err).text
    cx.tracer.record("tool", call.name, args={"raw": call.raw_arguments[:500]}, error=text, result_chars=len(text))
    return _tool_message(call, text)


def forced_search(state: AgentState, cx: NodeContext, names: tuple[str, ...]) -> tuple[str, dict[str, Any], Any]:
    """The first search the forced-search policy runs for the question: ``search`` when offered, else ``grep``
    for the question's longest words (traced as the tool call it is)."""
    toolkit = cx.config.toolkit
    assert toolkit is not None
    question = state["question"]
    args: dict[str, Any]
    if "search" in names:
        name, args = "search", {"query": question}
    else:
        words = query_words(question, 4) or [question.split()[0]]
        name, args = "grep", {"pattern": "\\b(?:" + "|".join(re.escape(w) for w in words) + ")\\b",
                              "ignore_case": True}
    cx.tracer.record("note", "force_search", data={"tool": name, "args": args})
    return name, args, toolkit.invoke(name, args, tracer=cx.tracer)


def _evidence(state: AgentState, cx: NodeContext, doc_ids: list[str], messages: list[Message]) -> list[tuple[str, str]]:
    """What an answer in a tool loop should rest on: the documents it cites (else the last ones seen) and the
    observations still in the conversation."""
    ids = doc_ids or (state.get("docs_seen") or [])[-10:]
    out = document_texts(cx.config.corpus, ids) if cx.config.corpus is not None else []
    out += [("observation", str(m.get("content") or "")) for m in messages if m.get("role") == "tool"]
    return out


def run_tools(state: AgentState, cx: NodeContext) -> dict[str, Any]:
    """Run the pending tool calls; errors the model caused come back as observations; `answer` ends the run
    (unless a policy sends it back: no search yet, or evidence that does not support it)."""
    toolkit = cx.config.toolkit
    assert toolkit is not None
    policies = policies_of(state, cx)
    offered = offered_names(state, cx)
    names = offered or tuple(toolkit.names())
    cap = _result_cap(state, cx)
    messages = list(state.get("messages") or [])
    seen = list(state.get("docs_seen") or [])
    digests = dict(state.get("digests") or {})
    searched = bool(state.get("searched"))
    rejected = state.get("rejected_answers", 0)
    listed = list(state.get("listed") or [])
    earlier = _previous_calls(messages)
    update: dict[str, Any] = {"pending": []}
    for raw in state.get("pending") or []:  # each call is one `tool` event: the node counts them (see `node`)
        call = ToolCall.model_validate(raw)
        if call.parse_error:
            messages.append(_tool_error(cx, call, ToolArgumentError(
                f"arguments for {call.name} are not valid JSON: {call.parse_error}")))
            continue
        if call.name not in names:  # a tool this loop does not offer (dci has no search): an observation
            messages.append(_tool_error(cx, call, ToolArgumentError(
                f"unknown tool {call.name!r}; available tools: {', '.join(names)}")))
            continue
        result = toolkit.invoke(call.name, call.arguments, tracer=cx.tracer)
        if call.name == ANSWER_TOOL and not result.is_error:
            answer, cited = result.data["answer"], result.data["doc_ids"]
            if _parrots(answer):
                err = ToolArgumentError(
                    "that answer repeats the instructions you were given", hint="answer the question in a few words"
                )
                messages.append(_tool_message(call, error_result(err).text))
                continue
            if policies.force_search and not searched:
                name, args, found = forced_search(state, cx, names)
                searched = True
                ids: list[str] = []
                _doc_ids_in(found.data, ids)
                seen = _merge_seen(seen, ids)
                text, _ = cap_text(found.text, cap)
                digests[call.id] = digest(name, args, found, state["question"])
                messages.append(_tool_message(call, FORCED_SEARCH_NOTE + "\n" + text))
                continue
            if policies.sufficiency != "off" and rejected < MAX_REJECTED_ANSWERS:
                ok, signal = check_support(cx, policies.sufficiency, state["question"], answer,
                                           _evidence(state, cx, cited, messages))
                cx.tracer.record("note", "sufficiency", data={
                    "answer": answer, "supported": ok, "signal": signal, "sent_back": ok is False})
                if ok is False:
                    rejected += 1
                    messages.append(_tool_message(call, UNSUPPORTED_NOTE.format(signal=signal)))
                    continue
            update.update(answer=answer, doc_ids=cited, answered_by="model", stop_reason="answered")
            messages.append(_tool_message(call, result.text))
            break
        text, _ = cap_text(result.text, cap)
        key = f"{call.name}:{json.dumps(call.arguments)}"
        repeats = earlier.get(key, 0) + 1
        limit = cx.config.max_repeats
        if limit is not None and repeats >= limit:  # a looping model (greedy decoding repeats itself): answer now
            update["exhausted"] = "repeats"
            cx.tracer.record("budget", "repeats", data={"budget": "repeats", "call": key[:300], "times": repeats})
        if repeats > 1:
            text = REPEAT_NOTE + "\n" + text
        if call.name in SEARCH_TOOLS and not result.is_error:
            searched = True
        if call.name == "ls" and not result.is_error and isinstance(result.data, dict):
            listed = [*listed, *[d for d in result.data.get("doc_ids") or [] if isinstance(d, str)]][-200:]
        ids = []
        _doc_ids_in(result.data, ids)
        seen = _merge_seen(seen, ids)
        digests[call.id] = digest(call.name, call.arguments, result, state["question"])
        messages.append(_tool_message(call, text))
    update.update(messages=messages, docs_seen=seen, digests=digests, searched=searched, rejected_answers=rejected,
                  listed=listed)
    return update


NO_ANSWER_NOTES = {
    "steps": "the step budget ran out before the model answered",
    "tokens": "the token budget ran out before the model answered",
    "seconds": "the time budget ran out before the model answered",
    "cost": "the cost budget ran out before the model answered",
    "repeats": "the model made the same tool call again and again (a loop), so the search was stopped",
    "answer": "the model's answer could not be read (its output did not fit the answer format)",
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


def force_answer(state: AgentState, cx: NodeContext) -> dict[str, Any]:
    """A budget ran out: one last call that may only answer; else no answer, and a note that says why."""
    reason = state.get("exhausted") or "steps"
    update: dict[str, Any] = {"stop_reason": f"budget:{reason}"}
    detail = ""
    if cx.config.budget.final_answer_call:
        toolkit = cx.config.toolkit
        assert toolkit is not None
        tools = cx.config.tool_schemas([ANSWER_TOOL])
        messages = [*_history(state, cx, policies_of(state, cx))]
        prompt = load("agent_force_answer").format(budget=reason, question=state["question"])
        messages.append({"role": "user", "content": prompt})
        messages, _ = _compacted(state, cx, messages, tools, cx.config.context.max_answer_tokens)
        try:
            result = cx.model.chat(
                messages, tools=tools, max_tokens=cx.config.context.max_answer_tokens, tracer=cx.tracer,
                name="force_answer",
            )
            calls, _ = repair_calls(result.tool_calls, result.content, [ANSWER_TOOL], "final")
        except ModelOutputError:
            calls = []
            result = None
        detail = "the final answer call gave no usable answer"
        for call in calls:
            if call.name != ANSWER_TOOL or call.parse_error:
                continue
            res = toolkit.invoke(ANSWER_TOOL, call.arguments, tracer=cx.tracer)
            if res.is_error:
                continue
            if _parrots(res.data["answer"], prompt):
                detail = "the final answer call repeated the instructions instead of answering"
                continue
            return {**update, "answer": res.data["answer"], "doc_ids": res.data["doc_ids"], "answered_by": "forced"}
        text = result.content.strip() if result is not None else ""
        if text and not calls:
            if not _parrots(text, prompt):
                seen = state.get("docs_seen") or []
                return {**update, "answer": text, "doc_ids": seen[-2:], "answered_by": "forced_text"}
            detail = "the final answer call repeated the instructions instead of answering"
    update.update(_fallback_answer(state, reason, detail))
    return update


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
            "strategy": state.get("strategy", ""),
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
