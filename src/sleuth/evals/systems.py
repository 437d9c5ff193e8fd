"""Systems under test. A system is any callable ``(EvalQuestion) -> SystemOutput``; the runner knows nothing
else about it. Adapters here wrap the other parts of sleuth through their public interfaces only:

* :class:`RetrievalSystem`: a :class:`~sleuth.retrieval.base.Retriever` (``sleuth.retrieval.get_retriever``),
  optionally followed by a :class:`~sleuth.rerank.base.Reranker` (``sleuth.rerank.get_reranker``).
* :class:`AgentSystem`: an agent with ``run(question, *, trace=tracer)`` (:class:`AgentLike`, what
  ``sleuth.agents.Agent`` has) returning a result with an answer, the doc ids it cites, usage and trace events.

Each question gets its own tracer, passed to every call through the interfaces' ``tracer``/``trace`` argument, so
its model calls count for that question. Nothing is retried here: an error raised by a retriever, a reranker or
an agent surfaces once, with its own type (the runner records it in the question's row).

Doc ids in a :class:`SystemOutput` are *original* ids (BEIR ``_id``, HotpotQA title, tool id), so metrics compare
them with the data's qrels directly.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, Field

from sleuth.errors import ConfigError, CorpusError
from sleuth.evals.datasets.base import EvalQuestion
from sleuth.records import Hit, TraceEvent, Usage
from sleuth.rerank.base import Reranker
from sleuth.retrieval.base import Retriever
from sleuth.tracing.tracer import MemoryTracer, Tracer


class SystemOutput(BaseModel):
    answer: str | None = None
    ranking: list[str] = Field(default_factory=list)  # original doc ids, best first
    cited: list[str] = Field(default_factory=list)  # original doc ids the system gives as its support
    usage: Usage = Field(default_factory=Usage)
    events: list[TraceEvent] = Field(default_factory=list)
    llm_calls: int | None = None
    tool_calls: int | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    def count_llm_calls(self) -> int:
        if self.llm_calls is not None:
            return self.llm_calls
        from_events = sum(1 for e in self.events if e.kind == "llm")
        return max(from_events, self.usage.calls)

    def count_tool_calls(self) -> int:
        if self.tool_calls is not None:
            return self.tool_calls
        return sum(1 for e in self.events if e.kind == "tool")


System = Callable[[EvalQuestion], SystemOutput]


def _original(corpus: Any, doc_id: str) -> str:
    try:
        return corpus.original_id(doc_id)
    except Exception:  # not an imported corpus, or an id outside it: keep the id as given
        return doc_id


def _dedup(ids: list[str]) -> list[str]:
    return list(dict.fromkeys(ids))


class RetrievalSystem:
    """``retriever.search(question, k, tracer=t)``, then optionally ``reranker.rerank(question, top, tracer=t)`` on
    the top ``rerank_depth`` hits. Usage (tokens, LLM calls) is the sum of the ``llm`` events in ``t``: the model
    calls of a model-based retriever (SIRA) and of the reranker.
    """

    def __init__(
        self,
        retriever: Retriever,
        corpus: Any,
        *,
        k: int = 100,
        reranker: Reranker | None = None,
        rerank_depth: int = 20,
        query_field: str = "question",
    ) -> None:
        self.retriever = retriever
        self.corpus = corpus
        self.k = k
        self.reranker = reranker
        self.rerank_depth = rerank_depth
        self.query_field = query_field

    def _fill_text(self, hits: list[Hit]) -> list[Hit]:
        out = []
        for h in hits:
            if not h.text:
                with contextlib.suppress(CorpusError):  # removed or unreadable: judged by its doc id
                    h = h.model_copy(update={"text": self.corpus.read_text(h.doc_id)})
            out.append(h)
        return out

    def __call__(self, q: EvalQuestion) -> SystemOutput:
        tracer = MemoryTracer()
        hits = self.retriever.search(q.question, self.k, tracer=tracer)
        if self.reranker is not None and hits:
            head, tail = self._fill_text(hits[: self.rerank_depth]), hits[self.rerank_depth :]
            hits = self.reranker.rerank(q.question, head, tracer=tracer) + tail
        usage = Usage()
        for e in tracer.events:
            if e.kind == "llm" and e.usage is not None:
                usage = usage + e.usage
        ranking = _dedup([_original(self.corpus, h.doc_id) for h in hits])
        return SystemOutput(ranking=ranking, usage=usage, events=tracer.events, tool_calls=0)


def _get(obj: Any, *names: str, default: Any = None) -> Any:
    for n in names:
        if isinstance(obj, dict) and n in obj:
            return obj[n]
        if hasattr(obj, n):
            return getattr(obj, n)
    return default


@runtime_checkable
class AgentLike(Protocol):
    """What :class:`AgentSystem` calls: ``run(question, *, trace=tracer)`` (``sleuth.agents.Agent.run``)."""

    def run(self, question: str, *, trace: Tracer | None = None) -> Any: ...


class AgentSystem:
    """Adapter for an agent: ``agent.run(question, trace=tracer)`` (an :class:`AgentLike`).

    The result is read by duck typing: ``answer`` (or ``text``), ``doc_ids`` (or ``citations``/``sources``),
    ``usage``, and ``events``/``trace``; events the agent emitted into the tracer we pass are used when the
    result carries none. ``make_agent`` builds one agent per question when agents keep per-run state.
    """

    def __init__(
        self, agent: AgentLike | None = None, corpus: Any = None, *, make_agent: Callable[[], AgentLike] | None = None
    ) -> None:
        if agent is None and make_agent is None:
            raise ConfigError("AgentSystem needs an agent or make_agent", hint="pass AgentSystem(agent, corpus)")
        if agent is not None and not isinstance(agent, AgentLike):
            raise ConfigError(
                f"{type(agent).__name__} has no run(question, *, trace=...) method",
                hint="pass a sleuth Agent, or write the system as a function (EvalQuestion) -> SystemOutput",
            )
        self.agent = agent
        self.make_agent = make_agent
        self.corpus = corpus

    def __call__(self, q: EvalQuestion) -> SystemOutput:
        agent = self.make_agent() if self.make_agent is not None else self.agent
        assert agent is not None  # the constructor requires an agent or make_agent
        tracer = MemoryTracer()
        result = agent.run(q.question, trace=tracer)
        answer = _get(result, "answer", "text", "content")
        if answer is None:  # an agent that gave no answer is scored as a wrong answer, not as a retrieval system
            answer = ""
        if not isinstance(answer, str):
            answer = _get(answer, "text", "answer", default=str(answer))
        doc_ids = _get(result, "doc_ids", "citations", "sources", default=[]) or []
        doc_ids = [d if isinstance(d, str) else str(_get(d, "doc_id", "id", default=d)) for d in doc_ids]
        events = list(_get(result, "events", "trace", default=[]) or []) or tracer.events
        events = [e if isinstance(e, TraceEvent) else TraceEvent.model_validate(e) for e in events]
        usage = _get(result, "usage", default=None)
        if not isinstance(usage, Usage):
            usage = Usage()
            for e in events:
                if e.kind == "llm" and e.usage is not None:
                    usage = usage + e.usage
        read = [e for e in events if e.kind == "tool"]
        ranking = _dedup(
            [_original(self.corpus, d) for e in read for d in _doc_args(e)]
        )
        llm_calls = _get(result, "llm_calls", default=None)
        tool_calls = _get(result, "tool_calls", default=None)
        return SystemOutput(
            llm_calls=llm_calls if isinstance(llm_calls, int) else None,
            tool_calls=tool_calls if isinstance(tool_calls, int) else None,
            extra=_agent_extra(result),
            answer=answer,
            cited=_dedup([_original(self.corpus, d) for d in doc_ids]),
            ranking=ranking,
            usage=usage,
            events=events,
        )


def _agent_extra(result: Any) -> dict[str, Any]:
    """Per-question facts of an agent run for the results row: strategy, why it stopped, steps, and (auto) the
    plan, its escalations and any caveat; the steps that ran with their tokens and seconds (``trail``)."""
    out: dict[str, Any] = {
        k: v for k in ("strategy", "stop_reason", "steps", "caveat")
        if isinstance(v := _get(result, k), str | int) and v != ""
    }
    plan = _get(result, "plan", default=None)
    if isinstance(plan, list) and plan:
        out["plan"] = " -> ".join(map(str, plan))
        out["escalations"] = len(_get(result, "escalations", default=[]) or [])
    trail = _get(result, "trail", default=None)
    if isinstance(trail, list) and trail:
        out["trail"] = [t for t in trail if isinstance(t, dict)]
    return out


def _doc_args(e: TraceEvent) -> list[str]:
    from sleuth.evals.metrics import _arg_doc_ids

    return _arg_doc_ids(e.args) if e.name in ("read", "read_document", "open") else []


def timed(system: System, q: EvalQuestion) -> tuple[SystemOutput, float]:
    t0 = time.perf_counter()
    out = system(q)
    return out, time.perf_counter() - t0
