"""The retriever interface. One module per backend (bm25, sira, dense, hybrid) implements it."""

from __future__ import annotations

import inspect
from typing import Any, Protocol, runtime_checkable

from sleuth.records import Hit


@runtime_checkable
class Retriever(Protocol):
    """``search(query, k)`` returns at most ``k`` hits, best first, each with ``doc_id``, ``score`` and ``source``."""

    name: str

    def search(self, query: str, k: int = 10) -> list[Hit]: ...


def search_traced(retriever: Retriever, query: str, k: int, tracer: Any = None) -> list[Hit]:
    """``retriever.search(query, k)``; a model-based retriever whose ``search`` takes ``tracer`` (SIRA) gets
    ``tracer`` for this call, so its model calls land in the caller's trace. ``tracer=None``: a plain call."""
    if tracer is not None and _takes_tracer(retriever.search):
        return retriever.search(query, k=k, tracer=tracer)  # type: ignore[call-arg]
    return retriever.search(query, k=k)


def _takes_tracer(fn: Any) -> bool:
    try:
        return "tracer" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
