"""In-memory retrievers over a tool catalog's texts, each a :class:`~sleuth.retrieval.base.Retriever`
(``search(query, k) -> list[Hit]``, ``doc_id`` = tool name), so the shared
:class:`~sleuth.retrieval.hybrid.HybridRetriever` fuses them like any other pair.

* :class:`ToolBM25`: the shared :class:`~sleuth.retrieval.bm25.Analyzer` (lowercase, ``\\w\\w+``, English
  stopwords, English stemmer: the corpus index's analysis) and bm25s's in-memory "lucene" BM25 with its default
  k1 = 1.5, b = 0.75 (a catalog is a few thousand short texts: no on-disk index). Tools scoring 0 are dropped.
* :class:`ToolDense`: the embedder's vectors, exact inner-product search; ``query_vectors`` lets a batch of
  requests be embedded in one call before the per-request searches.
* :func:`interleave`: round-robin merge of ranked lists (``llm-query``), duplicates dropped.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sleuth.records import Hit, SearchResult
from sleuth.retrieval.base import RetrieverBase, timed_result
from sleuth.retrieval.bm25 import Analyzer, BM25Params

if TYPE_CHECKING:
    from sleuth.tracing import Tracer

TOOL_BM25 = BM25Params(k1=1.5, b=0.75, stemmer="english", stopwords="en", store_chars=0)


class ToolBM25(RetrieverBase):
    name = "bm25"

    def __init__(self, names: Sequence[str], texts: Sequence[str], params: BM25Params = TOOL_BM25) -> None:
        import bm25s

        self.names = list(names)
        self.texts = list(texts)
        self.analyzer = Analyzer(params)
        self._bm25 = bm25s.BM25(k1=params.k1, b=params.b)
        tokens = [self.analyzer.tokens(t) for t in self.texts]
        self._bm25.index(tokens, show_progress=False)
        self._df = Counter(t for toks in tokens for t in set(toks))

    def doc_freqs(self, query: str) -> tuple[int, list[tuple[str, int]]]:
        """``(number of tools, [(token, df), ...])`` for the request's analyzed tokens (as ``BM25Retriever``)."""
        return len(self.names), [(t, self._df.get(t, 0)) for t in self.analyzer.tokens(query)]

    def scores(self, query: str) -> np.ndarray:
        tokens = self.analyzer.tokens(query)
        ids = self._bm25.get_tokens_ids(tokens)
        if not ids:
            return np.zeros(len(self.names), np.float32)
        return np.asarray(self._bm25.get_scores_from_ids(ids))

    def rank(self, query: str, k: int) -> list[tuple[int, float]]:
        """``(tool position, score)`` best first; ties keep catalog order."""
        s = self.scores(query)
        order = np.argsort(-s, kind="stable")[:k]
        return [(int(i), float(s[i])) for i in order if s[i] > 0]

    def run(self, query: str, k: int = 10, *, tracer: Tracer | None = None) -> SearchResult:
        return timed_result(self.name, query, k, lambda: self._hits(query, k))

    def _hits(self, query: str, k: int) -> list[Hit]:
        return [Hit(doc_id=self.names[i], score=s, text=self.texts[i], source=self.name)
                for i, s in self.rank(query, k)]


class ToolDense(RetrieverBase):
    name = "dense"

    def __init__(
        self,
        names: Sequence[str],
        texts: Sequence[str],
        vectors: np.ndarray,
        embedder: Any,
        query_vectors: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        self.names, self.texts, self.vectors, self.embedder = list(names), list(texts), vectors, embedder
        self.query_vectors = dict(query_vectors or {})

    def rank_vectors(self, q: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        from sleuth.retrieval.vector_index import ExactIndex

        scores, rows = ExactIndex(self.vectors).search(q, k)
        return [list(zip(r.tolist(), s.tolist(), strict=True)) for r, s in zip(rows, scores, strict=True)]

    def rank(self, query: str, k: int) -> list[tuple[int, float]]:
        q = self.query_vectors.get(query)
        vec = q[None, :] if q is not None else self.embedder.embed([query])
        return self.rank_vectors(vec, k)[0]

    def run(self, query: str, k: int = 10, *, tracer: Tracer | None = None) -> SearchResult:
        return timed_result(self.name, query, k, lambda: self._hits(query, k))

    def _hits(self, query: str, k: int) -> list[Hit]:
        return [Hit(doc_id=self.names[i], score=s, text=self.texts[i], source=self.name)
                for i, s in self.rank(query, k)]


def interleave(lists: Sequence[Sequence[tuple[int, float]]], depth: int) -> list[tuple[int, float]]:
    """Round-robin over ranked ``(position, score)`` lists (the first list's item first at each rank), duplicates
    dropped; the score becomes ``1 / rank``."""
    merged: list[tuple[int, float]] = []
    seen: set[int] = set()
    for rank in range(max((len(x) for x in lists), default=0)):
        for lst in lists:
            if rank < len(lst) and lst[rank][0] not in seen:
                seen.add(lst[rank][0])
                merged.append((lst[rank][0], 1.0 / (rank + 1)))
    return merged[:depth]
