"""The retriever interface. One module per backend (bm25, sira, dense, hybrid) implements it."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from sleuth.records import Hit


@runtime_checkable
class Retriever(Protocol):
    """``search(query, k)`` returns at most ``k`` hits, best first, each with ``doc_id``, ``score`` and ``source``."""

    name: str

    def search(self, query: str, k: int = 10) -> list[Hit]: ...
