"""Retrievers the agent uses when the corpus has no index, and one built only when first called.

* :class:`GrepRetriever`: ``search`` over the raw files when there is no BM25 index (and none may be built): one
  ripgrep count per query word (case-insensitive, whole words), documents ranked by the sum over the words they
  hold of ``idf(word) * (1 + log(count))``. The agent says so in the trace (a ``note`` named ``index``).
* :class:`LazyRetriever`: a retriever whose index (dense, hybrid) is opened or built on its first call, so a run
  that never asks for it never pays for it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

from sleuth.agents.policies import terms
from sleuth.errors import ToolArgumentError
from sleuth.records import Hit, SearchResult
from sleuth.retrieval.base import Retriever, RetrieverBase, run_filtered, timed_result, where_filter

MAX_QUERY_WORDS = 8
HIT_CHARS = 4000


def query_words(query: str, n: int = MAX_QUERY_WORDS) -> list[str]:
    """The query's words worth a grep: no stopwords, at least three characters, longest first (ties: in order)."""
    from sleuth.retrieval.stopwords import STOPWORDS_EN

    stop = frozenset(STOPWORDS_EN)
    words = [w for w in dict.fromkeys(terms(query)) if len(w) >= 3 and w not in stop]
    return sorted(words, key=lambda w: -len(w))[:n]


class GrepRetriever(RetrieverBase):
    """Keyword ranking over the raw files with ripgrep (no index). ``name`` is ``grep``."""

    name = "grep"
    filters = True

    def __init__(self, corpus: Any, *, timeout: float = 30.0) -> None:
        self.corpus = corpus
        self.timeout = timeout
        self._n_docs: int | None = None

    def n_docs(self) -> int:
        if self._n_docs is None:
            self._n_docs = max(1, len(self.corpus))
        return self._n_docs

    def run(self, query: str, k: int = 10, *, tracer: Any = None, where: Any = None) -> SearchResult:
        """No model call: ``tracer`` is accepted and unused. ``where``: a metadata filter (every document with a
        match is ranked, so the top ``k`` of the matching ones is exact)."""
        if not isinstance(query, str) or not query.strip():
            raise ToolArgumentError("empty query", hint="pass some words to search for")
        flt = where_filter(where, self.corpus)
        return timed_result(self.name, query, k, lambda: self._search(query, k, flt))

    def _search(self, query: str, k: int, flt: Any = None) -> list[Hit]:
        from sleuth.tools.grep import GrepArgs, grep

        scores: dict[str, float] = {}
        n = self.n_docs()
        for word in query_words(query):
            args = GrepArgs(pattern=word, ignore_case=True, fixed_strings=True, word_regexp=True, count=True)
            counts = grep(self.corpus, args, timeout=self.timeout).counts
            if not counts:
                continue
            idf = math.log(1 + n / len(counts))
            for doc, c in counts.items():
                scores[doc] = scores.get(doc, 0.0) + idf * (1 + math.log(max(c, 1)))
        if flt is not None:
            scores = {d: s for d, s in scores.items() if d in flt.matching}
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
        return [Hit(doc_id=d, score=round(s, 4), text=self._text(d), source=self.name) for d, s in ranked]

    def _text(self, doc_id: str) -> str:
        from sleuth.errors import CorpusError

        try:
            return str(self.corpus.read_text(doc_id))[:HIT_CHARS]
        except CorpusError:  # unreadable (binary, vanished): listed without text
            return ""


class LazyRetriever(RetrieverBase):
    """``build()`` runs on the first call (under a lock); later calls reuse the retriever it returned."""

    def __init__(self, name: str, build: Callable[[], Retriever]) -> None:
        self.name = name
        self._build = build
        self._inner: Retriever | None = None
        self._lock = threading.Lock()

    def inner(self) -> Retriever:
        with self._lock:
            if self._inner is None:
                self._inner = self._build()
            return self._inner

    @property
    def filters(self) -> bool:  # type: ignore[override]
        return bool(getattr(self.inner(), "filters", False))

    def run(self, query: str, k: int = 10, *, tracer: Any = None, where: Any = None) -> SearchResult:
        return run_filtered(self.inner(), query, k, where=where, tracer=tracer)
