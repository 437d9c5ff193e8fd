"""The reranker interface. One module per backend (listwise, first, icr) implements it."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from sleuth.records import Hit


@runtime_checkable
class Reranker(Protocol):
    """``rerank(query, hits, k)`` returns the hits reordered best first (at most ``k`` when given).

    Hits carry the text to judge in ``Hit.text``; a reranker never drops a hit it was not asked to cut, and
    returns each input document at most once."""

    name: str

    def rerank(self, query: str, hits: list[Hit], k: int | None = None) -> list[Hit]: ...
