"""Any sleuth retriever as a LangChain ``BaseRetriever`` (``langchain`` extra).

``to_langchain_retriever(retriever, k=10)`` wraps anything with sleuth's retriever protocol
(``run(query, k, *, tracer) -> SearchResult``: bm25, sira, dense, hybrid, a reranked pipeline of your own). Each
hit becomes a ``Document`` whose ``id`` is the doc id, ``page_content`` the hit's text, and ``metadata`` holds
``doc_id``, ``score`` (None for a rank-only method), ``rank``, ``source`` (the method) and the hit's own metadata.
``invoke(query, k=3)`` overrides the number of documents for one call. sleuth's errors propagate (an empty query
is a ``ToolArgumentError``, a stale index a ``StaleIndexError``), with their hint. Checked with LangChain's own
standard tests (``langchain_tests``' ``RetrieversIntegrationTests``, tests/integration/test_framework_retrievers.py).
"""

from __future__ import annotations

from typing import Any

from sleuth.errors import MissingExtraError
from sleuth.records import Hit

_CLASS: type | None = None


def hit_metadata(hit: Hit, rank: int) -> dict[str, Any]:
    """The metadata a framework document of ``hit`` carries (shared with the LlamaIndex retriever)."""
    meta: dict[str, Any] = {"doc_id": hit.doc_id, "score": hit.score, "rank": rank, "source": hit.source}
    if hit.line is not None:
        meta["line"] = hit.line
    return {**hit.metadata, **meta}


def _retriever_class() -> type:
    """Build the ``BaseRetriever`` subclass once, on first use (keeps langchain out of ``import sleuth``)."""
    global _CLASS
    if _CLASS is not None:
        return _CLASS
    try:
        from langchain_core.callbacks import CallbackManagerForRetrieverRun
        from langchain_core.documents import Document
        from langchain_core.retrievers import BaseRetriever
    except ImportError as e:  # pragma: no cover - only without the extra
        raise MissingExtraError("langchain", "langchain-core", "the LangChain retriever") from e
    from pydantic import ConfigDict, Field

    class SleuthRetriever(BaseRetriever):
        """A LangChain retriever that runs a sleuth retriever (``sleuth_retriever.run(query, k, tracer=...)``)."""

        model_config = ConfigDict(arbitrary_types_allowed=True)

        sleuth_retriever: Any
        k: int = Field(10, ge=1)
        tracer: Any = None
        where: Any = None  # a metadata filter (sleuth.filters): conditions or a DocFilter

        def _get_relevant_documents(
            self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None
        ) -> list[Document]:
            from sleuth.retrieval.base import run_filtered

            res = run_filtered(self.sleuth_retriever, query, self.k if k is None else k, where=self.where,
                               tracer=self.tracer)
            return [Document(id=h.doc_id, page_content=h.text, metadata=hit_metadata(h, rank))
                    for rank, h in enumerate(res.hits, 1)]

    _CLASS = SleuthRetriever
    return SleuthRetriever


def to_langchain_retriever(retriever: Any, *, k: int = 10, tracer: Any = None, where: Any = None, **fields: Any
                           ) -> Any:
    """``retriever`` (a sleuth retriever) as a LangChain ``BaseRetriever`` returning ``k`` documents a call,
    filtered by ``where`` (metadata conditions, :mod:`sleuth.filters`). ``fields`` are LangChain's own (``tags``,
    ``metadata``)."""
    return _retriever_class()(sleuth_retriever=retriever, k=k, tracer=tracer, where=where, **fields)


def langchain_retriever_class() -> type:
    """The ``BaseRetriever`` subclass (for code that constructs it itself, like LangChain's standard tests)."""
    return _retriever_class()
