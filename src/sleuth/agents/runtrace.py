"""Shared components whose model calls land in the trace of the call that uses them, with no global.

The default react toolkit holds components built once per agent and used by every run: a SIRA retriever inside
``search``, an LLM reranker inside ``rerank``. Their model calls must be traced (and counted) in the run that
made them. ``Toolkit.invoke(name, args, tracer=...)`` already carries the calling run's tracer to the tool; a
:class:`PerCallTool` builds the tool for that tracer on each call, over thin adapters that hand the tracer to the
shared component per call (:func:`~sleuth.retrieval.base.search_traced`, ``Reranker.rerank(..., tracer=)``).
Building a tool is a few closures; the retriever and the reranker themselves are shared, never copied.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from sleuth.records import Hit
from sleuth.retrieval.base import Retriever, search_traced
from sleuth.tools.base import Tool, ToolResult


class PerCallTool(Tool[Any]):
    """A tool that ``build(tracer)`` makes for each call, so what it does inside joins the caller's trace.

    ``run`` (no tracer) and the schema use ``build(None)``."""

    def __init__(self, build: Callable[[Any], Tool[Any]]) -> None:
        proto = build(None)
        super().__init__(proto.name, proto.description, proto.args_model, proto.fn, tags=proto.tags)
        self._build = build

    def invoke(self, arguments: Any = None, *, tracer: Any = None) -> ToolResult:
        if tracer is None:
            return super().invoke(arguments)
        return self._build(tracer).invoke(arguments, tracer=tracer)


class CallRetriever:
    """``inner`` searched with ``tracer`` for its model calls (SIRA); a plain retriever is searched as it is."""

    def __init__(self, inner: Retriever, tracer: Any) -> None:
        self.inner = inner
        self.tracer = tracer
        self.name = getattr(inner, "name", "")

    def search(self, query: str, k: int = 10) -> list[Hit]:
        return search_traced(self.inner, query, k, self.tracer)

    @property
    def last_result(self) -> Any:  # what the search tool reports of a SIRA expansion
        return getattr(self.inner, "last_result", None)


def call_retrievers(retrievers: Mapping[str, Retriever], tracer: Any) -> dict[str, Retriever]:
    return {k: CallRetriever(r, tracer) if tracer is not None else r for k, r in retrievers.items()}


class CallReranker:
    """``inner.rerank(..., tracer=tracer)``: the reranker's model calls go to ``tracer``."""

    def __init__(self, inner: Any, tracer: Any) -> None:
        self.inner = inner
        self.tracer = tracer
        self.name = getattr(inner, "name", "")

    def rerank(self, query: str, hits: list[Hit], k: int | None = None) -> list[Hit]:
        if self.tracer is not None and "tracer" in inspect.signature(self.inner.rerank).parameters:
            return list(self.inner.rerank(query, hits, k, tracer=self.tracer))
        return list(self.inner.rerank(query, hits, k))
