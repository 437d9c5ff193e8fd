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
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from sleuth.records import Hit, SearchResult

if TYPE_CHECKING:
    from sleuth.tracing import Tracer

__all__ = ["Retriever", "RetrieverBase", "SearchResult", "timed_result"]


@runtime_checkable
class Retriever(Protocol):
    """``run`` returns a :class:`SearchResult` with at most ``k`` hits, best first, each with ``doc_id``,
    ``score`` and ``source``; ``search`` returns just the hits."""

    name: str

    def run(self, query: str, k: int = 10, *, tracer: Tracer | None = None) -> SearchResult: ...

    def search(self, query: str, k: int = 10, *, tracer: Tracer | None = None) -> list[Hit]: ...


class RetrieverBase(ABC):
    """What every retriever subclasses: write :meth:`run`; :meth:`search` is its hits."""

    name: str = ""

    @abstractmethod
    def run(self, query: str, k: int = 10, *, tracer: Tracer | None = None) -> SearchResult:
        """One retrieval: the hits and what the method decided (see the module docstring)."""

    def search(self, query: str, k: int = 10, *, tracer: Tracer | None = None) -> list[Hit]:
        """The hits of :meth:`run`, best first."""
        return self.run(query, k, tracer=tracer).hits


def timed_result(method: str, query: str, k: int, search: Callable[[], list[Hit]]) -> SearchResult:
    """The :class:`SearchResult` of a retriever that makes no model call and decides nothing: ``search()``'s hits,
    timed."""
    t0 = time.perf_counter()
    hits = search()
    return SearchResult(query=query, method=method, k=k, hits=hits, latency_s=time.perf_counter() - t0)
