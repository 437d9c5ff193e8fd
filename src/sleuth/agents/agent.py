"""The Python API: :class:`Agent` (run, resume, stream; sync and async) and :func:`ask`.

An Agent holds an :class:`~sleuth.agents.config.AgentConfig` (model, toolkit, retrievers, budgets) and an
optional checkpoint database. Each run gets its own id (the LangGraph thread id) and its own tracer; with a
checkpoint database, a run that was interrupted (a crash, a dead model server, Ctrl-C) resumes from the last
node that finished: ``agent.resume(run_id)``.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

from langchain_core.runnables import RunnableConfig

from sleuth.agents.budget import Budget
from sleuth.agents.config import AgentConfig
from sleuth.agents.context import ContextPolicy
from sleuth.agents.graphs import compile_graph
from sleuth.agents.state import AGENTS, AgentResult, AgentState, StepEvent
from sleuth.errors import ConfigError
from sleuth.llm.base import ChatModel
from sleuth.tracing.tracer import JSONLTracer, MemoryTracer, Tracer

TraceArg = str | Path | Tracer | None


def _new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def _node_summary(node: str, update: dict[str, Any]) -> str:
    if not isinstance(update, dict):
        return ""
    if node == "route_question":
        return f"strategy={update.get('strategy')}: {update.get('route_reason', '')}"
    if node == "plan_question":
        return f"plan {' -> '.join(update.get('plan') or [])}: {update.get('plan_reason', '')}"
    if node == "check":
        esc = (update.get("escalations") or [])[-1:] or [{}]
        if update.get("next_step") not in (None, "finish"):
            return f"escalate {esc[0].get('from')} -> {esc[0].get('to')}: {esc[0].get('reason', '')}"
        drafts = update.get("drafts") or [{}]
        return f"answer stands ({drafts[-1].get('signal', '')})" + (f"; {update['caveat']}" if update.get("caveat")
                                                                     else "")
    if node == "decompose":
        subs = update.get("sub_questions") or []
        return ("hops: " + " / ".join(subs)) if subs else f"not decomposed ({update.get('question_kind', '')})"
    if node == "manage_context":
        return (f"context: {update.get('micro_compacted', 0)} outputs compacted, {update.get('summaries', 0)} "
                "summaries" if update else "")
    if node == "call_model":
        if update.get("exhausted"):
            return f"budget '{update['exhausted']}' ran out"
        calls = update.get("pending") or []
        if not calls:
            return "no tool call"
        return "calls " + ", ".join(f"{c['name']}({c.get('raw_arguments', '')[:80]})" for c in calls)
    if node == "run_tools":
        msgs = [m for m in update.get("messages") or [] if m.get("role") == "tool"]
        return (msgs[-1]["content"][:160] if msgs else "") if update.get("answer") is None else "answered"
    if node in ("sira_search", "retrieve", "hop"):
        return "passages " + ", ".join(p["doc_id"] for p in update.get("passages") or [])
    if node == "generate":
        gens = update.get("generations") or []
        return gens[-1][:160] if gens else f"budget '{update.get('exhausted')}' ran out"
    if update.get("answer") is not None:
        return f"answer: {update['answer'][:160]}"
    if update.get("note"):
        return f"no answer: {update['note'][:160]}"
    return ""


def _done_summary(result: AgentResult) -> str:
    if result.answer is not None:
        return result.answer[:200]
    return f"no answer ({result.stop_reason}): {result.note}"[:200]


class Agent:
    """A search agent over one configuration. ``agent`` is router | auto | dci | react | sira | iter-retgen."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        agent: str = "router",
        checkpoint: str | Path | Any | None = None,
    ) -> None:
        if agent not in AGENTS:
            raise ConfigError(f"unknown agent {agent!r}", hint=f"use one of: {', '.join(AGENTS)}")
        config.require(agent)
        self.config = config
        self.agent = agent
        self._checkpoint_path: Path | None = None
        self._saver: Any = None
        if isinstance(checkpoint, str | Path):
            self._checkpoint_path = Path(checkpoint)
            self._checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
            from langgraph.checkpoint.sqlite import SqliteSaver

            conn = sqlite3.connect(str(self._checkpoint_path), check_same_thread=False)
            self._saver = SqliteSaver(conn)
        elif checkpoint is not None:
            self._saver = checkpoint
        strategies = config.available_strategies() if agent == "router" else None
        self.graph = compile_graph(agent, checkpointer=self._saver, strategies=strategies)

    # -- construction ------------------------------------------------------------------------------------------
    @classmethod
    def for_corpus(
        cls,
        corpus: Any,
        *,
        model: ChatModel | str | None = None,
        agent: str = "router",
        budget: Budget | None = None,
        context: ContextPolicy | None = None,
        checkpoint: str | Path | Any | None = None,
        **config_kwargs: Any,
    ) -> Agent:
        """An agent over a corpus folder with sleuth's default tools and retrievers (see ``defaults``)."""
        from sleuth.agents.defaults import default_config

        config = default_config(corpus, model=model, budget=budget, context=context, agent=agent, **config_kwargs)
        return cls(config, agent=agent, checkpoint=checkpoint)

    def close(self) -> None:
        """Close the checkpoint database this agent opened and release a model it built (``for_corpus``)."""
        conn = getattr(self._saver, "conn", None)
        if self._checkpoint_path is not None and conn is not None:
            conn.close()
        if self.config.owns_model and hasattr(self.config.model, "close"):
            self.config.model.close()

    def __enter__(self) -> Agent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- runs --------------------------------------------------------------------------------------------------
    def _tracer(self, trace: TraceArg, run_id: str) -> tuple[Tracer, str | None]:
        if trace is None:
            return MemoryTracer(run_id), None
        if isinstance(trace, str | Path):
            return JSONLTracer(trace, run_id=run_id), str(trace)
        return trace, str(getattr(trace, "path", "")) or None

    def _graph_config(self, run_id: str) -> RunnableConfig:
        max_steps = self.config.budget.max_steps
        # auto may run every step once (plan, hops, a pipeline, rounds, checks, then a tool loop); dci adds one
        # context node per turn
        limit = 6 * max_steps + 6 * self.config.iter_retgen_steps + 40
        return RunnableConfig(configurable={"thread_id": run_id}, recursion_limit=limit)

    def _start(self, question: str, run_id: str | None) -> tuple[str, AgentState]:
        if not isinstance(question, str) or not question.strip():
            raise ConfigError("the question is empty", hint='pass a question, e.g. sleuth ask "Who wrote X?"')
        run_id = run_id or _new_run_id()
        if self._saver is not None and self.graph.get_state(self._graph_config(run_id)).values:
            raise ConfigError(f"run {run_id!r} already exists in the checkpoint", hint="resume it or use a new run id")
        policies = self.config.resolved_policies(self.agent)
        state: AgentState = {"question": question.strip(), "agent": self.agent, "usage": {},
                             "policies": policies.model_dump()}
        if self.agent != "router":
            state["strategy"] = self.agent
        return run_id, state

    def _record_start(self, tracer: Tracer, question: str) -> None:
        """The run's first events: what was asked, with which agent, policies and budget, and set-up facts (an
        index that is missing, so search falls back to grep)."""
        policies = self.config.resolved_policies(self.agent)
        tracer.record("run", "start", args={"question": question, "agent": self.agent},
                      data={"policies": policies.model_dump(), "active_policies": policies.active(),
                            "budget": self.config.budget.model_dump(),
                            **({"context": self.config.dci_context.model_dump()} if self.agent == "dci" else {})})
        for note in self.config.setup_notes:
            tracer.record("note", str(note.get("name", "setup")), preview=str(note.get("message", ""))[:300],
                          data=note)

    def stream(self, question: str, *, run_id: str | None = None, trace: TraceArg = None) -> Iterator[StepEvent]:
        """Run and yield a :class:`StepEvent` after every node, then one ``kind="done"`` event with the result."""
        run_id, state = self._start(question, run_id)
        yield from self._stream(state, run_id, trace)

    def _stream(self, state: AgentState | None, run_id: str, trace: TraceArg) -> Iterator[StepEvent]:
        tracer, trace_path = self._tracer(trace, run_id)
        config = dataclasses.replace(self.config, tracer=tracer)
        t0 = time.perf_counter()
        final: dict[str, Any] = dict(state or {})
        if state is not None:
            self._record_start(tracer, state["question"])
        else:
            tracer.record("run", "resume", args={"run_id": run_id})
            final = dict(self.graph.get_state(self._graph_config(run_id)).values)
        try:
            for chunk in self.graph.stream(
                state, self._graph_config(run_id), context=config, stream_mode=["updates", "values"]
            ):
                mode, payload = cast(tuple[str, Any], chunk)
                if mode == "values":
                    final = dict(payload)
                    continue
                for node_name, update in payload.items():
                    yield StepEvent(
                        kind="node",
                        node=node_name,
                        run_id=run_id,
                        summary=_node_summary(node_name, update or {}),
                        update=update or {},
                    )
            result = AgentResult.from_state(run_id, final, time.perf_counter() - t0, trace_path)
            tracer.record("run", "end", latency_s=result.seconds, data={"stop_reason": result.stop_reason})
            yield StepEvent(kind="done", run_id=run_id, summary=_done_summary(result), result=result)
        finally:
            if trace_path is not None and hasattr(tracer, "close") and not isinstance(trace, Tracer):
                tracer.close()

    def run(self, question: str, *, run_id: str | None = None, trace: TraceArg = None) -> AgentResult:
        """Answer ``question``. ``trace`` is a JSONL path, a Tracer, or None (kept in memory)."""
        return self._last(self.stream(question, run_id=run_id, trace=trace))

    def resume(self, run_id: str, *, trace: TraceArg = None) -> AgentResult:
        """Continue an interrupted run from its last finished node (needs a checkpoint database)."""
        if self._saver is None:
            raise ConfigError("resume needs a checkpoint database", hint="create the Agent with checkpoint=PATH")
        snapshot = self.graph.get_state(self._graph_config(run_id))
        if not snapshot.values:
            raise ConfigError(f"no run {run_id!r} in the checkpoint", hint="check the run id (printed by sleuth ask)")
        if snapshot.values.get("agent") not in (None, self.agent):
            raise ConfigError(
                f"run {run_id!r} was started with agent {snapshot.values['agent']!r}, not {self.agent!r}",
                hint=f"resume it with --agent {snapshot.values['agent']}",
            )
        if not snapshot.next:  # it had finished: return its result
            return AgentResult.from_state(run_id, dict(snapshot.values), 0.0, str(trace) if trace else None)
        return self._last(self._stream(None, run_id, trace))

    @staticmethod
    def _last(events: Iterator[StepEvent]) -> AgentResult:
        result = None
        for ev in events:
            if ev.kind == "done":
                result = ev.result
        assert result is not None
        return result

    # -- async -------------------------------------------------------------------------------------------------
    @asynccontextmanager
    async def _async_graph(self) -> AsyncIterator[Any]:
        if self._checkpoint_path is None:
            if self._saver is not None and not hasattr(self._saver, "aget_tuple"):
                raise ConfigError("this checkpointer has no async methods", hint="pass a path or an async saver")
            yield self.graph
            return
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        async with AsyncSqliteSaver.from_conn_string(str(self._checkpoint_path)) as saver:
            strategies = self.config.available_strategies() if self.agent == "router" else None
            yield compile_graph(self.agent, checkpointer=saver, strategies=strategies)

    async def astream(
        self, question: str, *, run_id: str | None = None, trace: TraceArg = None
    ) -> AsyncIterator[StepEvent]:
        """Async :meth:`stream` (nodes run in worker threads; the checkpoint goes through aiosqlite)."""
        run_id, state = self._start(question, run_id)
        tracer, trace_path = self._tracer(trace, run_id)
        config = dataclasses.replace(self.config, tracer=tracer)
        t0 = time.perf_counter()
        final: dict[str, Any] = dict(state)
        self._record_start(tracer, state["question"])
        try:
            async with self._async_graph() as graph:
                async for mode, payload in graph.astream(
                    state, self._graph_config(run_id), context=config, stream_mode=["updates", "values"]
                ):
                    if mode == "values":
                        final = dict(payload)
                        continue
                    for node_name, update in payload.items():
                        yield StepEvent(
                            kind="node",
                            node=node_name,
                            run_id=run_id,
                            summary=_node_summary(node_name, update or {}),
                            update=update or {},
                        )
            result = AgentResult.from_state(run_id, final, time.perf_counter() - t0, trace_path)
            tracer.record("run", "end", latency_s=result.seconds, data={"stop_reason": result.stop_reason})
            yield StepEvent(kind="done", run_id=run_id, summary=_done_summary(result), result=result)
        finally:
            if trace_path is not None and hasattr(tracer, "close") and not isinstance(trace, Tracer):
                tracer.close()

    async def arun(self, question: str, *, run_id: str | None = None, trace: TraceArg = None) -> AgentResult:
        result = None
        async for ev in self.astream(question, run_id=run_id, trace=trace):
            if ev.kind == "done":
                result = ev.result
        assert result is not None
        return result


def ask(
    question: str,
    corpus: Any,
    *,
    agent: str = "router",
    model: ChatModel | str | None = None,
    trace: TraceArg = None,
    budget: Budget | None = None,
    checkpoint: str | Path | None = None,
    run_id: str | None = None,
    **config_kwargs: Any,
) -> AgentResult:
    """Answer ``question`` from the documents in ``corpus`` (a folder or a :class:`~sleuth.corpus.Corpus`)."""
    with Agent.for_corpus(corpus, model=model, agent=agent, budget=budget, checkpoint=checkpoint, **config_kwargs) as a:
        return a.run(question, run_id=run_id, trace=trace)
