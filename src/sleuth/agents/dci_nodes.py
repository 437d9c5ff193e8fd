"""The dci loop's context node: micro-compaction of old tool results and a summary when the window fills
(:mod:`sleuth.agents.dci` holds the mechanisms; truncation happens where each result is added, in ``run_tools``).

``manage_context`` runs after every tool turn, before the next model call. Each thing it does is one ``note``
event named ``context`` (``action``: ``micro_compact`` with the count, ``summarize`` with the prompt estimate
before and after, or ``summary_failed`` with why); the summary's model call is an ``llm`` event named
``summarize``. The window guard of every loop (:func:`sleuth.agents.context.compact`) still applies after it.
"""

from __future__ import annotations

from typing import Any

from sleuth.agents.dci import micro_compact, prompt_tokens, summarize, summary_split
from sleuth.agents.loop_nodes import offered_schemas, policies_of
from sleuth.agents.nodes import NodeContext, _exhausted, _prompt_parts
from sleuth.agents.state import AgentState


def manage_context(state: AgentState, cx: NodeContext) -> dict[str, Any]:
    """Level 3: replace old tool results by one line of what they found; level 4: fold the old turns into one
    summary (one model call) when the prompt passes ``summary_ratio`` of its budget."""
    policy = cx.config.dci_context
    messages = list(state.get("messages") or [])
    if policy.level < 3 or not messages or state.get("answer") is not None:
        return {}
    update: dict[str, Any] = {}
    messages, n = micro_compact(messages, state.get("digests") or {}, policy.keep_turns, policy.compact_min_chars)
    if n:
        update["micro_compacted"] = state.get("micro_compacted", 0) + n
        cx.tracer.record("note", "context", data={"action": "micro_compact", "compacted": n,
                                                  "keep_turns": policy.keep_turns})
    if policy.level >= 4 and not _exhausted(state, cx):
        tools = offered_schemas(state, cx, policies_of(state, cx))
        budget = cx.config.context.prompt_budget(cx.config.context.max_step_tokens)
        before = prompt_tokens(messages, tools, cx.count_tokens)
        if before > policy.summary_ratio * budget and summary_split(messages, policy.keep_turns) is not None:
            folded, error = summarize(messages, state["question"], cx.model, policy, cx.tracer,
                                      _prompt_parts("agent_dci_summary", question="{question}", steps="{steps}"))
            if error is None:
                after = prompt_tokens(folded, tools, cx.count_tokens)
                messages = folded
                update["summaries"] = state.get("summaries", 0) + 1
                cx.tracer.record("note", "context", data={"action": "summarize", "estimated_tokens_before": before,
                                                          "estimated_tokens_after": after, "prompt_budget": budget})
            else:
                cx.tracer.record("note", "context", data={"action": "summary_failed", "why": error,
                                                          "estimated_tokens": before, "prompt_budget": budget})
    if update:
        update["messages"] = messages
    return update
