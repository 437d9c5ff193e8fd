"""The reranker interface. One module per backend (listwise, first, icr) implements it.

Every reranker has the same two methods, and says in its signature what it takes:

* ``run(query, hits, k=None, *, tracer=None) -> RerankResult``: the one method a backend writes. The result
  record holds the reranked hits, the permutation of the input, whether ``Hit.score`` is the reranker's own score
  (``has_scores``), the usage of this call's model calls and the backend's counters. Nothing about a call is kept
  on the reranker, so one reranker serves concurrent callers.
* ``rerank(query, hits, k=None, *, tracer=None) -> list[Hit]``: ``run(...).hits``, from :class:`RerankerBase`.

``tracer`` receives this call's events (``llm`` calls, one ``kind="rerank"`` event); when ``None`` the reranker's
own tracer (given to its constructor, if any) gets them. Errors are never retried here: a reranker that raises
raises once, with its own exception type.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from sleuth.records import Hit, RerankResult

if TYPE_CHECKING:
    from sleuth.tracing import Tracer

__all__ = ["RerankResult", "Reranker", "RerankerBase"]


@runtime_checkable
class Reranker(Protocol):
    """``run`` reorders ``hits`` best first (at most ``k`` when given) into a :class:`RerankResult`; ``rerank``
    returns just the hits.

    Hits carry the text to judge in ``Hit.text``; a reranker never drops a hit it was not asked to cut, and
    returns each input document at most once."""

    name: str

    def run(
        self, query: str, hits: list[Hit], k: int | None = None, *, tracer: Tracer | None = None
    ) -> RerankResult: ...

    def rerank(
        self, query: str, hits: list[Hit], k: int | None = None, *, tracer: Tracer | None = None
    ) -> list[Hit]: ...


class RerankerBase(ABC):
    """What every reranker subclasses: write :meth:`run`; :meth:`rerank` is its hits."""

    name: str = ""

    @abstractmethod
    def run(
        self, query: str, hits: list[Hit], k: int | None = None, *, tracer: Tracer | None = None
    ) -> RerankResult:
        """One rerank (see the module docstring)."""

    def rerank(self, query: str, hits: list[Hit], k: int | None = None, *, tracer: Tracer | None = None) -> list[Hit]:
        """The hits of :meth:`run`, best first."""
        return self.run(query, hits, k, tracer=tracer).hits
