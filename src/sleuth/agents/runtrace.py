"""Shared components whose model calls land in the trace of the call that uses them, with no global.

The default react toolkit holds components built once per agent and used by every run: a SIRA retriever inside
``search``, an LLM reranker inside ``rerank``. Their model calls must be traced (and counted) in the run that
made them. ``Toolkit.invoke(name, args, tracer=...)`` already carries the calling run's tracer to the tool; a
:class:`PerCallTool` builds the tool for that tracer on each call, over thin adapters that hand the tracer to the
shared component per call (``Retriever.run(..., tracer=)``, ``Reranker.run(..., tracer=)``).
Building a tool is a few closures; the retriever and the reranker themselves are shared, never copied.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sleuth.callcontrol import CallControl
from sleuth.records import Hit, RerankResult, SearchResult
from sleuth.rerank.base import Reranker, RerankerBase
from sleuth.retrieval.base import Retriever, RetrieverBase, run_filtered
from sleuth.tools.base import Tool, ToolResult, tool_span


class PerCallTool(Tool[Any]):
    """A tool that ``build(tracer)`` makes for each call, so what it does inside joins the caller's trace.

    ``run`` (no tracer) and the schema use ``build(None)``."""

    def __init__(self, build: Callable[[Any], Tool[Any]]) -> None:
        proto = build(None)
        super().__init__(proto.name, proto.description, proto.args_model, proto.fn, tags=proto.tags,
                         output_type=proto.output_type, takes_control=proto.takes_control)
        self._build = build

    def invoke(
        self, arguments: Any = None, *, tracer: Any = None, call_id: str | None = None,
        control: CallControl | None = None,
    ) -> ToolResult:
        if tracer is None:
            return super().invoke(arguments, call_id=call_id, control=control)
        span = tool_span(tracer)  # the tool call's span: the component's model calls nest under it
        return self._build(span).invoke_in(span, arguments, call_id=call_id, control=control)


class CallRetriever(RetrieverBase):
    """``inner`` run with ``tracer`` for its model calls (SIRA): the protocol's per-call tracer, bound."""

    def __init__(self, inner: Retriever, tracer: Any) -> None:
        self.inner = inner
        self.tracer = tracer
        self.name = getattr(inner, "name", "")

    @property
    def filters(self) -> bool:  # type: ignore[override]
        return bool(getattr(self.inner, "filters", False))

    def run(self, query: str, k: int = 10, *, tracer: Any = None, where: Any = None) -> SearchResult:
        return run_filtered(self.inner, query, k, where=where, tracer=tracer if tracer is not None else self.tracer)


def call_retrievers(retrievers: Mapping[str, Retriever], tracer: Any) -> dict[str, Retriever]:
    return {k: CallRetriever(r, tracer) if tracer is not None else r for k, r in retrievers.items()}


class CallReranker(RerankerBase):
    """``inner`` run with ``tracer``: the reranker's model calls go to the calling run's trace."""

    def __init__(self, inner: Reranker, tracer: Any) -> None:
        self.inner = inner
        self.tracer = tracer
        self.name = getattr(inner, "name", "")

    def run(self, query: str, hits: list[Hit], k: int | None = None, *, tracer: Any = None) -> RerankResult:
        return self.inner.run(query, hits, k, tracer=tracer if tracer is not None else self.tracer)
