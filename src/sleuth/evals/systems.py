"""Systems under test. A system is any callable ``(EvalQuestion) -> SystemOutput``; the runner knows nothing
else about it. Adapters here wrap the other parts of sleuth through their public interfaces only:

* :class:`RetrievalSystem`: a :class:`~sleuth.retrieval.base.Retriever` (``sleuth.retrieval.get_retriever``),
  optionally followed by a :class:`~sleuth.rerank.base.Reranker` (``sleuth.rerank.get_reranker``).
* :class:`AgentSystem`: an agent object with ``run(question, ...)`` returning a result with an answer, the
  doc ids it cites, usage and trace events (``sleuth.agents``).

Doc ids in a :class:`SystemOutput` are *original* ids (BEIR ``_id``, HotpotQA title, tool id), so metrics compare
them with the data's qrels directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from sleuth.evals.datasets.base import EvalQuestion
from sleuth.records import Hit, TraceEvent, Usage
from sleuth.retrieval.base import search_traced
from sleuth.tracing.tracer import MemoryTracer


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
    """``retriever.search(question, k)``, then optionally rerank the top ``rerank_depth`` hits.

    Usage (tokens, LLM calls) of a model-based reranker is taken from the ``llm`` trace events it emits when
    its ``rerank`` accepts a ``tracer``; otherwise it is recorded as zero calls.
    """

    def __init__(
        self,
        retriever: Any,
        corpus: Any,
        *,
        k: int = 100,
        reranker: Any = None,
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
                try:
                    h = h.model_copy(update={"text": self.corpus.read_text(h.doc_id)})
                except Exception:
                    pass
            out.append(h)
        return out

    def __call__(self, q: EvalQuestion) -> SystemOutput:
        tracer = MemoryTracer()
        # a model-based retriever (SIRA) gets this question's tracer, so its model calls count here
        hits = search_traced(self.retriever, q.question, self.k, tracer)
        if self.reranker is not None and hits:
            head, tail = self._fill_text(hits[: self.rerank_depth]), hits[self.rerank_depth :]
            try:
                reranked = self.reranker.rerank(q.question, head, tracer=tracer)
            except TypeError:
                reranked = self.reranker.rerank(q.question, head)
            hits = list(reranked) + tail
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


class AgentSystem:
    """Adapter for an agent: ``agent.run(question, trace=tracer)`` (or ``tracer=``, or ``agent(question)``).

    The result is read by duck typing: ``answer`` (or ``text``), ``doc_ids`` (or ``citations``/``sources``),
    ``usage``, and ``events``/``trace``; events the agent emitted into the tracer we pass are used when the
    result carries none. ``make_agent`` builds one agent per question when agents keep per-run state.
    """

    def __init__(self, agent: Any = None, corpus: Any = None, *, make_agent: Callable[[], Any] | None = None) -> None:
        if agent is None and make_agent is None:
            raise ValueError("pass an agent or make_agent")
        self.agent = agent
        self.make_agent = make_agent
        self.corpus = corpus

    def __call__(self, q: EvalQuestion) -> SystemOutput:
        agent = self.make_agent() if self.make_agent is not None else self.agent
        tracer = MemoryTracer()
        run = getattr(agent, "run", None) or agent
        result = _call_with_tracer(run, q.question, tracer)
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
            extra={k: v for k in ("strategy", "stop_reason", "steps") if isinstance(v := _get(result, k), str | int)},
            answer=answer,
            cited=_dedup([_original(self.corpus, d) for d in doc_ids]),
            ranking=ranking,
            usage=usage,
            events=events,
        )


def _call_with_tracer(run: Callable[..., Any], question: str, tracer: MemoryTracer) -> Any:
    """``run(question, trace=tracer)`` (sleuth's Agent), else ``tracer=``, else ``run(question)``."""
    import inspect

    try:
        params = inspect.signature(run).parameters
    except (TypeError, ValueError):
        params = {}
    for kw in ("trace", "tracer"):
        if kw in params:
            return run(question, **{kw: tracer})
    return run(question)


def _doc_args(e: TraceEvent) -> list[str]:
    from sleuth.evals.metrics import _arg_doc_ids

    return _arg_doc_ids(e.args) if e.name in ("read", "read_document", "open") else []


def timed(system: System, q: EvalQuestion) -> tuple[SystemOutput, float]:
    t0 = time.perf_counter()
    out = system(q)
    return out, time.perf_counter() - t0
