"""The retriever interface. One module per backend (bm25, sira, dense, hybrid) implements it.

Every retriever has the same two methods, and says in its signature what it takes:

* ``run(query, k=10, *, tracer=None) -> SearchResult``: the one method a backend writes. The result record holds
  the hits and what the method decided (SIRA's proposed, kept and rejected phrases, hybrid's per-list results),
  with the usage of the model calls this call made. Nothing about a call is kept on the retriever, so one
  retriever serves concurrent callers.
* ``search(query, k=10, *, tracer=None) -> list[Hit]``: ``run(...).hits``, from :class:`RetrieverBase`.

``tracer`` receives the events of this call (a model-based retriever's ``llm`` calls, SIRA's ``sira`` event); when
``None`` the retriever's own tracer (given to its constructor, if any) gets them. Retrievers without model calls
accept it and emit nothing.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from sleuth.records import Hit, SearchResult

if TYPE_CHECKING:
    from sleuth.tracing import Tracer

__all__ = ["Retriever", "RetrieverBase", "SearchResult", "run_filtered", "timed_result", "where_filter"]


@runtime_checkable
class Retriever(Protocol):
    """``run`` returns a :class:`SearchResult` with at most ``k`` hits, best first, each with ``doc_id``,
    ``score`` and ``source``; ``search`` returns just the hits."""

    name: str

    def run(self, query: str, k: int = 10, *, tracer: Tracer | None = None) -> SearchResult: ...

    def search(self, query: str, k: int = 10, *, tracer: Tracer | None = None) -> list[Hit]: ...


class RetrieverBase(ABC):
    """What every retriever subclasses: write :meth:`run`; :meth:`search` is its hits.

    A retriever that can filter by metadata sets ``filters = True`` and takes ``where`` in :meth:`run`
    (``run(query, k, *, tracer=None, where=None)``: a :class:`~sleuth.filters.DocFilter`, or conditions it
    resolves against its corpus), returning the best ``k`` of the matching documents; :func:`run_filtered` is
    how callers pass one."""

    name: str = ""
    filters: ClassVar[bool] = False

    @abstractmethod
    def run(self, query: str, k: int = 10, *, tracer: Tracer | None = None) -> SearchResult:
        """One retrieval: the hits and what the method decided (see the module docstring)."""

    def search(self, query: str, k: int = 10, *, tracer: Tracer | None = None, where: Any = None) -> list[Hit]:
        """The hits of :meth:`run`, best first (``where``: a metadata filter, see :func:`run_filtered`)."""
        return run_filtered(self, query, k, where=where, tracer=tracer).hits


def run_filtered(retriever: Any, query: str, k: int = 10, *, where: Any = None, tracer: Tracer | None = None
                 ) -> SearchResult:
    """``retriever.run(query, k)``, filtered by ``where`` (:mod:`sleuth.filters`) when one is given: the best
    ``k`` among the matching documents. A retriever that cannot filter raises :class:`ToolArgumentError`."""
    if where is None:
        return retriever.run(query, k, tracer=tracer)
    if not getattr(retriever, "filters", False):
        from sleuth.errors import ToolArgumentError

        raise ToolArgumentError(f"search method {getattr(retriever, 'name', '') or type(retriever).__name__!r} cannot "
                          "filter by metadata", hint="filter with bm25, sira, dense or hybrid")
    result: SearchResult = retriever.run(query, k, tracer=tracer, where=where)
    return result


def where_filter(where: Any, corpus: Any) -> Any:
    """``where`` as a :class:`~sleuth.filters.DocFilter` over ``corpus`` (None: no filter)."""
    from sleuth.filters import DocFilter, resolve

    if where is None or isinstance(where, DocFilter):
        return where
    if corpus is None:
        from sleuth.errors import ConfigError

        raise ConfigError("this retriever's index has no corpus to read metadata from",
                          hint="pass corpus.filter(where) instead of the conditions")
    return resolve(where, corpus)


def timed_result(method: str, query: str, k: int, search: Callable[[], list[Hit]]) -> SearchResult:
    """The :class:`SearchResult` of a retriever that makes no model call and decides nothing: ``search()``'s hits,
    timed."""
    t0 = time.perf_counter()
    hits = search()
    return SearchResult(query=query, method=method, k=k, hits=hits, latency_s=time.perf_counter() - t0)
