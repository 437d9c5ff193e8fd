"""``auto``: one graph where every strategy is a step, and a plan the agent revises when the evidence is thin.

```
plan_question ─► [decompose] ─► first step ─► answer_from_passages ─► check ─► finish
                                 sira_search | hop ... (decomposed)      │
                                                                         └─► escalate: iter-retgen rounds
                                                                             (retrieve/generate) ─► answer ─► check
                                                                             └─► explore (every tool) ─► answer
```

* ``plan_question``: the router's one cheap call picks the first step (sira, iter-retgen or explore: free use of
  grep/read/ls/df, ``search`` bm25|sira|dense|hybrid, ``rerank``, an ``iter_retgen`` round and ``answer``); the
  plan is that step and the ones after it on the escalation ladder sira -> iter-retgen -> explore. A budget too
  tight for any escalation (``--budget-tokens``/``--budget-seconds``) plans sira alone, without the router call.
* ``decompose`` (policy): one structured call splits a bridge or comparison question into hops; ``hop`` searches
  each (a bridge hop's short answer fills ``#1`` in the next). Nothing usable, or a hop that repeats an earlier
  query, falls back to the plain step and the trace says so.
* ``check``: the sufficiency check on the step's answer (policy ``sufficiency``: lexical or model). Supported:
  done. Not supported: the next step on the plan runs if the budget affords it (``Budget.affords`` with the
  step's estimated cost), else the answer stands with a caveat saying why. Every revision is a ``note`` named
  ``escalate`` and an entry of ``escalations`` in the result.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from sleuth.agents.budget import StepCost
from sleuth.agents.context import passages_text
from sleuth.agents.loop_nodes import initial_messages, policies_of
from sleuth.agents.nodes import NodeContext, _exhausted, _prompt_parts, _usage, choose_strategy
from sleuth.agents.passage_nodes import _retrieve
from sleuth.agents.policies import terms
from sleuth.agents.state import AgentState
from sleuth.agents.sufficiency import check_support
from sleuth.errors import ModelOutputError
from sleuth.tools.answer import AnswerArgs

ROUTER_OPTION = {"explore": "react"}  # the router's option line for a step
FIRST_NODE = {"sira": "sira_search", "iter-retgen": "retrieve", "explore": "start_explore"}
MAX_HOPS = 3


def _spent(state: AgentState) -> dict[str, Any]:
    return {"steps": state.get("steps", 0), "usage": _usage(state), "elapsed_s": state.get("elapsed_s", 0.0)}


def _cost(cx: NodeContext, *names: str) -> StepCost:
    costs = [cx.config.step_costs[n] for n in names]
    return StepCost(sum(c.tokens for c in costs), sum(c.steps for c in costs))


# -- planning -------------------------------------------------------------------------------------------------


def plan_question(state: AgentState, cx: NodeContext) -> dict[str, Any]:
    """The plan: the router's choice and the steps after it; a tight budget plans sira alone (no router call)."""
    steps = cx.config.auto_steps()
    budget = cx.config.budget
    plan: list[str] | None = None
    if "sira" in steps and len(steps) > 1:
        ok, why = budget.affords(_cost(cx, "route", "sira", "iter-retgen"), **_spent(state))
        if not ok:
            plan, reason = ["sira"], f"tight budget ({why}): sira alone, no router call"
    if plan is None and len(steps) == 1:
        plan, reason = steps, f"{steps[0]} is the only step available"
    if plan is None:
        choice, reason = choose_strategy(cx, state["question"], [ROUTER_OPTION.get(s, s) for s in steps])
        first = "explore" if choice == "react" else choice
        plan = steps[steps.index(first):]
    policies = policies_of(state, cx)
    decompose = policies.decompose and plan[0] in ("sira", "iter-retgen")
    if decompose:  # only when the budget also affords the decomposition call and a hop
        decompose, _ = budget.affords(_cost(cx, "decompose", "hop", plan[0]), **_spent(state))
    form = cx.config.auto_iter_retgen_answer
    cx.tracer.record("note", "plan", preview=f"{' -> '.join(plan)}: {reason}",
                     data={"plan": plan, "reason": reason, "available": steps, "decompose": decompose,
                           "budget": budget.model_dump(), "iter_retgen_answer": form})
    # auto's iter-retgen step answers in the form its check needs (a short answer that cites doc ids), set here
    # so that the step's retrieval keeps it (see passage_nodes._iter_retgen_mode)
    return {"strategy": "auto", "plan": plan, "plan_pos": 0, "plan_reason": reason, "route_reason": reason,
            "next_step": "decompose" if decompose else FIRST_NODE[plan[0]], "iter_retgen_answer": form}


# -- decomposition --------------------------------------------------------------------------------------------


class Decomposition(BaseModel):
    kind: Literal["bridge", "comparison", "single"] = Field(
        description="bridge: one fact leads to the next; comparison: two things compared; single: one fact"
    )
    sub_questions: list[str] = Field(default_factory=list, description="the questions to search, in order")


def _key(text: str) -> str:
    return " ".join(terms(text))


def clean_sub_questions(question: str, raw: list[str]) -> tuple[list[str], list[str]]:
    """``(kept, dropped)``: blank ones, repeats and the question itself are dropped; at most MAX_HOPS kept."""
    kept: list[str] = []
    dropped: list[str] = []
    seen = {_key(question)}
    for sq in raw:
        text = " ".join(str(sq).split())
        key = _key(text)
        if not key or key in seen or len(kept) >= MAX_HOPS:
            dropped.append(text)
            continue
        seen.add(key)
        kept.append(text)
    return kept, dropped


def decompose(state: AgentState, cx: NodeContext) -> dict[str, Any]:
    """One structured call: the question's kind and its hops (``#1`` stands for the first hop's answer)."""
    system, user = _prompt_parts("agent_decompose", question=state["question"])
    first = FIRST_NODE[state["plan"][0]]
    try:
        value, _ = cx.model.structured(
            [{"role": "system", "content": system}, {"role": "user", "content": user}],
            Decomposition, retries=1, max_tokens=cx.config.context.max_step_tokens, tracer=cx.tracer,
            name="decompose",
        )
    except ModelOutputError as e:
        cx.tracer.record("note", "decompose", data={"used": False, "why": f"no decomposition: {e.message[:200]}"})
        return {"question_kind": "single", "sub_questions": [], "next_step": first}
    kind = value.kind
    kept, dropped = clean_sub_questions(state["question"], value.sub_questions)
    used = kind != "single" and len(kept) >= 2
    why = ("" if used else "a single-fact question" if kind == "single"
           else f"{len(kept)} usable sub-question(s) after dropping {len(dropped)} (blank, repeated or the question)")
    cx.tracer.record("note", "decompose", data={"kind": kind, "sub_questions": kept, "dropped": dropped,
                                                "used": used, "why": why})
    if not used:
        return {"question_kind": kind, "sub_questions": [], "next_step": first}
    return {"question_kind": kind, "sub_questions": kept, "hop": 0, "bridges": [], "hop_queries": [],
            "next_step": "hop"}


def _hop_query(sub_question: str, bridge: str, kind: str) -> str:
    if kind == "bridge" and bridge:
        return sub_question.replace("#1", bridge) if "#1" in sub_question else f"{sub_question} {bridge}"
    return " ".join(sub_question.replace("#1", "").split())


def hop(state: AgentState, cx: NodeContext) -> dict[str, Any]:
    """One hop of a decomposed question: search the sub-question (with the previous hop's answer in it), keep
    its passages beside the earlier hops', and for a bridge question read the hop's short answer."""
    subs = state.get("sub_questions") or []
    i = state.get("hop", 0)
    kind = state.get("question_kind", "bridge")
    bridges = list(state.get("bridges") or [])
    exhausted = _exhausted(state, cx)
    if exhausted:
        return {"exhausted": exhausted, "hop": len(subs)}
    query = _hop_query(subs[i], bridges[-1] if bridges else "", kind)
    queries = list(state.get("hop_queries") or [])
    if _key(query) in {_key(q) for q in queries}:  # the decomposition loops: the same search again
        cx.tracer.record("note", "hop", data={"hop": i + 1, "query": query, "skipped": "repeats an earlier hop"})
        return {"hop": i + 1, "bridges": [*bridges, bridges[-1] if bridges else ""]}
    key = cx.config.sira_retriever if state["plan"][0] == "sira" else cx.config.iter_retgen_retriever
    got = _retrieve(state, cx, key, query)
    earlier = (state.get("passages") or []) if i else []
    merged = {p["doc_id"]: p for p in [*earlier, *got["passages"]]}
    update: dict[str, Any] = {"passages": list(merged.values())[: 2 * cx.config.k], "docs_seen": got["docs_seen"],
                              "hop": i + 1, "hop_queries": [*queries, query]}
    if kind == "bridge" and i + 1 < len(subs):
        bridge = _short_answer(cx, query, got["passages"])
        update["bridges"] = [*bridges, bridge]
        cx.tracer.record("note", "hop", data={"hop": i + 1, "query": query, "bridge": bridge})
    else:
        cx.tracer.record("note", "hop", data={"hop": i + 1, "query": query})
    return update


def _short_answer(cx: NodeContext, question: str, passages: list[dict[str, Any]]) -> str:
    """A hop's answer (the bridge entity), from its passages; "" when the model gives none."""
    system, user = _prompt_parts(
        "agent_answer", passages=passages_text(passages, cx.config.context.max_passage_chars), notes="",
        question=question,
    )
    try:
        value, _ = cx.model.structured(
            [{"role": "system", "content": system}, {"role": "user", "content": user}], AnswerArgs, retries=1,
            max_tokens=cx.config.context.max_answer_tokens, tracer=cx.tracer, name="bridge",
        )
    except ModelOutputError:
        return ""
    return " ".join(value.answer.split())[:120]


def after_hop(state: AgentState) -> str:
    if state.get("exhausted") or state.get("hop", 0) >= len(state.get("sub_questions") or []):
        return "answer_from_passages"
    return "hop"


# -- the check and the escalation -----------------------------------------------------------------------------


def check(state: AgentState, cx: NodeContext) -> dict[str, Any]:
    """Does the evidence support the step's answer? If not, the next step of the plan (when the budget affords
    it), else the answer stands with a caveat; every decision is traced."""
    plan = state.get("plan") or []
    pos = state.get("plan_pos", 0)
    step = plan[pos] if pos < len(plan) else "?"
    answer = state.get("answer")
    policies = policies_of(state, cx)
    texts = [(p["doc_id"], str(p.get("text") or "")) for p in state.get("passages") or []]
    ok: bool | None
    if answer is None:
        ok, signal = False, "the step gave no answer"
    else:
        ok, signal = check_support(cx, policies.sufficiency, state["question"], answer, texts)
    draft = {"step": step, "answer": answer, "doc_ids": list(state.get("doc_ids") or []), "supported": ok,
             "signal": signal}
    update: dict[str, Any] = {"drafts": [*(state.get("drafts") or []), draft], "next_step": "finish"}
    cx.tracer.record("note", "check", data=draft)
    if ok is not False:
        return update
    if state.get("exhausted"):
        if answer is not None:
            update["caveat"] = (f"the evidence does not support the answer ({signal}); the {state['exhausted']} "
                                "budget ran out, so this is the answer from what was found")
        return update
    escalations = list(state.get("escalations") or [])
    nxt = plan[pos + 1] if pos + 1 < len(plan) else None
    if nxt is None:
        update["caveat"] = f"the evidence does not support the answer ({signal}); no step of the plan was left"
        return update
    affordable, why = cx.config.budget.affords(cx.config.step_costs[nxt], **_spent(state))
    if not affordable:
        escalations.append({"from": step, "to": None, "reason": signal, "stopped_by": why})
        cx.tracer.record("note", "escalate", data=escalations[-1])
        update.update(escalations=escalations,
                      caveat=f"the evidence does not support the answer ({signal}); escalating to {nxt} was "
                      f"stopped by the budget ({why}), so this is the answer from what was found")
        if answer is not None:
            update["stop_reason"] = "budget:" + why.split(":")[0]
        return update
    escalations.append({"from": step, "to": nxt, "reason": signal})
    cx.tracer.record("note", "escalate", preview=f"{step} -> {nxt}: {signal}", data=escalations[-1])
    update.update(escalations=escalations, plan_pos=pos + 1, next_step=FIRST_NODE[nxt], answer=None, doc_ids=[],
                  answered_by="", stop_reason="", note="", caveat="")
    if nxt == "iter-retgen":  # Iter-RetGen's first retrieval: the question with the unsupported answer as draft
        update.update(iteration=0, last_retrieval=False, generations=[answer] if answer else [])
    return update


def start_explore(state: AgentState, cx: NodeContext) -> dict[str, Any]:
    """The explore step's conversation: the stable system prompt, the question, and what earlier steps found."""
    policies = policies_of(state, cx)
    messages = initial_messages(state["question"], "auto", policies.fewshot)
    lines = []
    drafts = state.get("drafts") or []
    if drafts:
        last = drafts[-1]
        said = f"answered {last['answer']!r}" if last.get("answer") else "gave no answer"
        lines.append(f"Earlier steps ({', '.join(d['step'] for d in drafts)}) {said}: {last['signal']}.")
    found = [p["doc_id"] for p in state.get("passages") or []]
    if found:
        lines.append("Documents they found: " + ", ".join(found[:8]) + ".")
    if state.get("sub_questions"):
        lines.append("The question in steps: " + " / ".join(state["sub_questions"]))
    if lines:
        lines.append("Search further (grep for exact names, search, read), then call answer.")
        messages.append({"role": "user", "content": "\n".join(lines)})
    return {"messages": messages, "pending": [], "idle_turns": 0, "searched": bool(found)}


def next_step(state: AgentState) -> str:
    return state.get("next_step") or "finish"
