"""Any sleuth retriever as a LlamaIndex retriever (``llamaindex`` extra: ``llama-index-core``).

``to_llamaindex_retriever(retriever, k=10)`` wraps anything with sleuth's retriever protocol
(``run(query, k, *, tracer) -> SearchResult``) as a ``llama_index.core`` ``BaseRetriever``: ``retrieve`` and
``aretrieve`` return ``NodeWithScore`` items whose ``TextNode`` has the doc id as ``id_``, the hit's text, and
metadata ``doc_id`` plus the hit's own (``line`` for grep hits); the score is the hit's (None for a rank-only
method). It composes with LlamaIndex's own retrievers (``QueryFusionRetriever``,
tests/integration/test_framework_retrievers.py). sleuth's errors propagate with their hint.
"""

from __future__ import annotations

from typing import Any

from sleuth.errors import MissingExtraError

_CLASS: type | None = None


def _node_metadata(hit: Any) -> dict[str, Any]:
    """What identifies the document, nothing about this call: LlamaIndex's fusion merges nodes by their hash (text
    plus metadata), so the same document found by two retrievers must give the same node. The score is the
    ``NodeWithScore``'s, the rank its position, the method the retriever's ``name``."""
    meta: dict[str, Any] = {**hit.metadata, "doc_id": hit.doc_id}
    if hit.line is not None:
        meta["line"] = hit.line
    return meta


def _retriever_class() -> type:
    global _CLASS
    if _CLASS is not None:
        return _CLASS
    try:
        from llama_index.core.retrievers import BaseRetriever
        from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
    except ImportError as e:
        raise MissingExtraError("llamaindex", "llama-index-core", "the LlamaIndex retriever") from e

    class SleuthLlamaRetriever(BaseRetriever):
        """A LlamaIndex retriever that runs a sleuth retriever."""

        def __init__(self, retriever: Any, *, k: int = 10, tracer: Any = None, where: Any = None, **kwargs: Any
                     ) -> None:
            if not isinstance(k, int) or k < 1:
                from sleuth.errors import ConfigError

                raise ConfigError(f"k must be a positive integer, got {k!r}")
            self.sleuth_retriever = retriever
            self.k = k
            self.tracer = tracer
            self.where = where
            super().__init__(**kwargs)

        def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
            from sleuth.retrieval.base import run_filtered

            res = run_filtered(self.sleuth_retriever, query_bundle.query_str, self.k, where=self.where,
                               tracer=self.tracer)
            return [NodeWithScore(node=TextNode(id_=h.doc_id, text=h.text, metadata=_node_metadata(h)), score=h.score)
                    for h in res.hits]

    _CLASS = SleuthLlamaRetriever
    return SleuthLlamaRetriever


def to_llamaindex_retriever(retriever: Any, *, k: int = 10, tracer: Any = None, where: Any = None, **kwargs: Any
                            ) -> Any:
    """``retriever`` (a sleuth retriever) as a LlamaIndex ``BaseRetriever`` returning ``k`` nodes a call, filtered
    by ``where`` (metadata conditions); ``kwargs`` are LlamaIndex's own (``callback_manager``, ``verbose``)."""
    return _retriever_class()(retriever, k=k, tracer=tracer, where=where, **kwargs)
