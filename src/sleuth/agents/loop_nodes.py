"""The tool loop's nodes (react, dci, auto's explore): the model turn, the tool calls, the forced final answer.

Same contract as :mod:`sleuth.agents.nodes` (each wrapped by its :func:`~sleuth.agents.nodes.node`). The loop's
system prompt and tools depend on the strategy in the state: ``react`` (``agent_react``, every tool), ``dci``
(``agent_dci``; grep, read, ls and answer only, its tool results cut at the dci cap) and ``auto``'s explore
(``agent_explore``, every tool). The run's policies (:mod:`sleuth.agents.policies`) act here: few-shot
demonstrations in the system prompt, the schemas constrained to seen doc ids and known methods, a search run before
a premature answer, and an unsupported answer sent back once.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sleuth.agents.context import cap_text
from sleuth.agents.dci import DCI_TOOLS, digest
from sleuth.agents.fallback import query_words
from sleuth.agents.nodes import (
    FORCED_SEARCH_NOTE,
    REPEAT_NOTE,
    UNSUPPORTED_NOTE,
    NodeContext,
    _assistant_message,
    _compacted,
    _doc_ids_in,
    _exhausted,
    _fallback_answer,
    _merge_seen,
    _parrots,
    _tool_message,
    cited_update,
)
from sleuth.agents.policies import Policies, constrain_schemas
from sleuth.agents.repair import repair_calls
from sleuth.agents.state import AgentState
from sleuth.agents.sufficiency import check_support, document_texts
from sleuth.errors import ModelOutputError, ToolArgumentError
from sleuth.llm.base import Message, ToolCall
from sleuth.prompts import load
from sleuth.tools.answer import ANSWER_TOOL
from sleuth.tools.base import ERROR_TEMPLATE, error_result

SYSTEM_PROMPTS = {"dci": "agent_dci", "dci-workspace": "agent_dci_workspace", "auto": "agent_explore"}  # else react
FEWSHOT = {"dci": "agent_fewshot_dci", "dci-workspace": "agent_fewshot_dci"}  # others: agent_fewshot_search
DCI_WORKSPACE_TOOLS = ("workspace_grep", "read", "answer")  # dci_workspace: no whole-corpus grep or ls
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
        return tuple(n for n in (DCI_WORKSPACE_TOOLS if cx.config.dci_workspace else DCI_TOOLS) if n in have)
    return None


def offered_schemas(state: AgentState, cx: NodeContext, policies: Policies) -> list[dict[str, Any]]:
    schemas = cx.config.schemas_for(offered_names(state, cx))
    if policies.constrain_args:
        known = [*(state.get("listed") or []), *(state.get("docs_seen") or [])]
        schemas = constrain_schemas(schemas, known, cx.config.search_methods)
    return schemas


def _history(state: AgentState, cx: NodeContext, policies: Policies) -> list[Message]:
    strategy = state.get("strategy") or "react"
    if strategy == "dci" and cx.config.dci_workspace:
        strategy = "dci-workspace"
    return state.get("messages") or initial_messages(
        state["question"], strategy, policies.fewshot
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
        # a text reply cites nothing: no doc ids are attributed to it
        update.update(answer=result.content.strip(), doc_ids=[], answered_by="text", stop_reason="no_tool_call")
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


MAX_REJECTED_ANSWERS = 1  # the sufficiency check sends an answer back once; the next one is taken


def _result_cap(state: AgentState, cx: NodeContext) -> int:
    if state.get("strategy") == "dci":
        return cx.config.dci_context.result_cap() or 10**9
    return cx.config.context.max_result_chars


def _tool_error(cx: NodeContext, call: ToolCall, err: ToolArgumentError) -> Message:
    text = error_result(err).text
    cx.tracer.record("tool", call.name, args={"raw": call.raw_arguments[:500]}, error=text, result_chars=len(text),
                     data={"call_id": call.id})
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
        # a tool of the toolkit this loop does not offer (dci has no search): an observation; a name no tool has is
        # the toolkit's own unknown-tool observation (traced as its call)
        if call.name not in names and call.name in toolkit.names():
            messages.append(_tool_error(cx, call, ToolArgumentError(
                f"unknown tool {call.name!r}; available tools: {', '.join(names)}")))
            continue
        result = toolkit.invoke(call.name, call.arguments, tracer=cx.tracer, call_id=call.id)
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
            update.update(cited_update(cx, cited, seen))
            update.update(answer=answer, answered_by="model", stop_reason="answered")
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
        if call.name == "ls" and not result.is_error and isinstance(result.data, dict):
            listed = [*listed, *[d for d in result.data.get("doc_ids") or [] if isinstance(d, str)]][-200:]
        ids = []
        _doc_ids_in(result.data, ids)
        if call.name in SEARCH_TOOLS and not result.is_error and ids:  # a search that found nothing is no evidence
            searched = True
        seen = _merge_seen(seen, ids)
        digests[call.id] = digest(call.name, call.arguments, result, state["question"])
        messages.append(_tool_message(call, text))
    update.update(messages=messages, docs_seen=seen, digests=digests, searched=searched, rejected_answers=rejected,
                  listed=listed)
    return update


def force_answer(state: AgentState, cx: NodeContext) -> dict[str, Any]:
    """A budget ran out: one last call that may only answer; else no answer, and a note that says why."""
    reason = state.get("exhausted") or "steps"
    update: dict[str, Any] = {"stop_reason": f"budget:{reason}"}
    detail = ""
    if cx.config.budget.final_answer_call:
        toolkit = cx.config.toolkit
        assert toolkit is not None
        policies = policies_of(state, cx)
        messages = [*_history(state, cx, policies)]
        seen = list(state.get("docs_seen") or [])
        if policies.force_search and not state.get("searched"):  # the last answer, too, comes after a search
            _, _, found = forced_search(state, cx, offered_names(state, cx) or tuple(toolkit.names()))
            ids: list[str] = []
            _doc_ids_in(found.data, ids)
            seen = _merge_seen(seen, ids)
            update["docs_seen"] = seen
            text, _ = cap_text(found.text, _result_cap(state, cx))
            messages.append({"role": "user", "content": FORCED_SEARCH_NOTE + "\n" + text})
        tools = cx.config.tool_schemas([ANSWER_TOOL])
        if policies.constrain_args:  # the last answer is held to the ids seen too
            tools = constrain_schemas(tools, [*(state.get("listed") or []), *seen], cx.config.search_methods)
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
            res = toolkit.invoke(ANSWER_TOOL, call.arguments, tracer=cx.tracer, call_id=call.id)
            if res.is_error:
                continue
            if _parrots(res.data["answer"], prompt):
                detail = "the final answer call repeated the instructions instead of answering"
                continue
            cited_ids = cited_update(cx, res.data["doc_ids"], seen)
            return {**update, **cited_ids, "answer": res.data["answer"], "answered_by": "forced"}
        text = result.content.strip() if result is not None else ""
        if text and not calls:
            if not _parrots(text, prompt):  # a text reply cites nothing
                return {**update, "answer": text, "doc_ids": [], "answered_by": "forced_text"}
            detail = "the final answer call repeated the instructions instead of answering"
    update.update(_fallback_answer(state, reason, detail))
    return update
