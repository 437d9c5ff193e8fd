"""The typed state of an agent run, and the records a run returns.

The state is a ``TypedDict`` of JSON-able values, so that LangGraph's SQLite checkpointer stores it as it is
and a resumed run continues from the last finished node. Usage is merged with a reducer: each node returns
the usage of the calls it made, never a running total it would have to read first.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypedDict

from pydantic import BaseModel, Field

from sleuth.records import Usage

Strategy = Literal["react", "sira", "iter-retgen"]
STRATEGIES: tuple[str, ...] = ("react", "sira", "iter-retgen")  # what the router chooses among
# the agents a user can ask for: the router, the one graph where every strategy is a step (auto), the index-free
# direct-corpus-interaction loop (dci), and the fixed strategies
AGENTS: tuple[str, ...] = ("router", "auto", "dci", *STRATEGIES)


def add_usage(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    """Reducer: the sum of two :class:`Usage` dumps."""
    total = Usage.model_validate(left or {}) + Usage.model_validate(right or {})
    return usage_dump(total)


def add_list(left: list[Any] | None, right: list[Any] | None) -> list[Any]:
    """Reducer: ``left + right`` (each node appends its own entries, never the whole list)."""
    return [*(left or []), *(right or [])]


def usage_dump(usage: Usage) -> dict[str, Any]:
    fields = {"prompt_tokens", "completion_tokens", "calls", "cost_usd", "unpriced_calls", "token_source"}
    return usage.model_dump(include=fields)


class AgentState(TypedDict, total=False):
    question: str
    agent: str  # what the user asked for: router | react | sira | iter-retgen
    strategy: str  # what runs (the router's choice when agent == "router")
    route_reason: str
    messages: list[dict[str, Any]]  # the react conversation (OpenAI-style messages)
    pending: list[dict[str, Any]]  # ToolCall dumps the model asked for, not run yet
    steps: int  # model turns in the search loop
    llm_calls: int
    tool_calls: int
    usage: Annotated[dict[str, Any], add_usage]
    elapsed_s: float  # wall time spent in nodes (kept across resumes)
    passages: list[dict[str, Any]]  # Hit dumps from the last retrieval (sira, iter-retgen)
    generations: list[str]  # iter-retgen generations, in order (the last is the answer in the paper's form)
    iteration: int  # iter-retgen retrievals done
    iter_retgen_answer: str  # the run's iter-retgen form: last-generation | separate-call (set at the first retrieval)
    iter_retgen_steps: int  # the run's T (set at the first retrieval)
    last_retrieval: bool  # iter-retgen separate-call: T retrievals done, answer call next
    final_generation: bool  # iter-retgen last-generation: T generations done, the last is the answer
    docs_seen: list[str]  # doc ids that appeared in observations or passages, first seen first
    idle_turns: int  # consecutive model turns without a usable tool call
    cleared_outputs: int  # tool outputs replaced by the context marker
    repairs: int  # tool calls repaired
    exhausted: str | None  # the budget that ran out
    answer: str | None  # the model's answer; None when it gave none (``note`` says why)
    note: str  # why there is no answer (set with answer=None)
    doc_ids: list[str]  # the doc ids the model cited (only ones it was shown; never a default)
    dropped_doc_ids: list[str]  # doc ids the model cited but was never shown (dropped from doc_ids, noted)
    answered_by: str  # model | forced | forced_text | text | none
    stop_reason: str  # answered | budget:<name> | no_tool_call | model_output_error | no_answer
    caveat: str  # an answer given with a reservation (evidence did not support it, a budget stopped escalation)
    trail: Annotated[list[dict[str, Any]], add_list]  # one entry per node that ran: tokens, seconds, calls
    policies: dict[str, Any]  # the small-model policies of this run (what was switched on)
    # auto: the plan (steps in order) the router's choice became, where it is, and every revision
    plan: list[str]
    plan_pos: int
    plan_reason: str
    escalations: list[dict[str, Any]]  # {"from", "to", "reason"}; "to" is None when the budget stopped it
    drafts: list[dict[str, Any]]  # answers of earlier steps: {"step", "answer", "doc_ids", "supported", "signal"}
    sub_questions: list[str]  # decomposition (auto): the hops, "#1" standing for the previous hop's answer
    question_kind: str  # bridge | comparison | single
    hop: int  # sub-questions searched so far
    hop_queries: list[str]  # the queries the hops ran (a repeated one is skipped: a decomposition that loops)
    next_step: str  # auto: the node a planning/checking node chose to run next
    bridges: list[str]  # each hop's short answer
    # react / dci / explore loops
    digests: dict[str, str]  # tool call id -> one line of what its output found (what micro-compaction keeps)
    micro_compacted: int  # tool outputs replaced by their digest (dci)
    summaries: int  # times old turns were folded into one summary (dci)
    searched: bool  # a search or grep ran in this run (the forced-first-search policy)
    listed: list[str]  # doc ids ls showed (names only, not content): readable under constrain_args too
    rejected_answers: int  # answers sent back by the sufficiency check


class StepEvent(BaseModel):
    """One streamed step: a graph node finished (``kind="node"``) or the run ended (``kind="done"``)."""

    kind: Literal["node", "done"]
    node: str = ""
    run_id: str = ""
    summary: str = ""
    update: dict[str, Any] = Field(default_factory=dict)
    result: AgentResult | None = None


class AgentResult(BaseModel):
    """What a run returns (and what ``sleuth ask --json`` prints).

    The result contract: ``answer`` is the model's answer, or None when it gave none; then ``stop_reason`` says
    how the run ended (``budget:<name>``, ``model_output_error``, ...) and ``note`` says why, for a person, and
    ``doc_ids`` is empty. ``doc_ids`` are the ids the model cited among those it was shown, never a default (the
    paper's iter-retgen cites none); ``dropped_doc_ids`` are ids it cited without having been shown them. No
    prompt or observation text is ever put in ``answer``. ``llm_calls``/``tool_calls``
    count the run's traced calls, as ``sleuth trace show`` counts them."""

    run_id: str
    question: str
    answer: str | None = None
    note: str = ""
    doc_ids: list[str] = Field(default_factory=list)
    dropped_doc_ids: list[str] = Field(default_factory=list)
    agent: str
    strategy: str
    route_reason: str = ""
    answered_by: str = "model"
    stop_reason: str = "answered"
    budget_exhausted: str | None = None
    usage: Usage = Field(default_factory=Usage)
    steps: int = 0
    llm_calls: int = 0
    tool_calls: int = 0
    docs_seen: list[str] = Field(default_factory=list)
    seconds: float = 0.0
    trace_path: str | None = None
    caveat: str = ""  # set when the answer stands with a reservation (see AgentState.caveat)
    plan: list[str] = Field(default_factory=list)  # auto: the steps planned, in order
    escalations: list[dict[str, Any]] = Field(default_factory=list)  # auto: each revision of the plan and why
    trail: list[dict[str, Any]] = Field(default_factory=list)  # every step that ran: node, tokens, seconds, calls
    policies: dict[str, Any] = Field(default_factory=dict)

    @property
    def answered(self) -> bool:
        return self.answer is not None

    @classmethod
    def from_state(cls, run_id: str, state: dict[str, Any], seconds: float, trace_path: str | None) -> AgentResult:
        answer = state.get("answer") or None
        note = state.get("note") or ""
        if state.get("answered_by") == "fallback":  # a checkpoint written before the result contract
            answer, note = None, note or str(state.get("answer") or "")
        if answer is None and not note:
            note = f"the run ended ({state.get('stop_reason') or 'unfinished'}) without an answer"
        return cls(
            run_id=run_id,
            question=state.get("question", ""),
            answer=answer,
            note=note,
            doc_ids=list(state.get("doc_ids") or []) if answer is not None else [],
            dropped_doc_ids=list(state.get("dropped_doc_ids") or []),
            agent=state.get("agent", ""),
            strategy=state.get("strategy", ""),
            route_reason=state.get("route_reason", ""),
            answered_by=state.get("answered_by", "model") if answer is not None else "none",
            stop_reason=state.get("stop_reason", "answered"),
            budget_exhausted=state.get("exhausted"),
            usage=Usage.model_validate(state.get("usage") or {}),
            steps=state.get("steps", 0),
            llm_calls=state.get("llm_calls", 0),
            tool_calls=state.get("tool_calls", 0),
            docs_seen=list(state.get("docs_seen") or []),
            seconds=round(seconds, 3),
            trace_path=trace_path,
            caveat=state.get("caveat", "") if answer is not None else "",
            plan=list(state.get("plan") or []),
            escalations=list(state.get("escalations") or []),
            trail=list(state.get("trail") or []),
            policies=dict(state.get("policies") or {}),
        )


StepEvent.model_rebuild()
