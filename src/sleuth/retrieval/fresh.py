"""Retrievers that stay true to a corpus folder in long-running hosts (the MCP server, the OpenAI and LangChain
toolsets, a Python program that keeps a :class:`~sleuth.corpus.Corpus`).

:class:`FreshRetrievers` is a read-only mapping ``method -> Retriever``. Before each lookup (at most every
``interval_s`` seconds; default 0: every search) it compares the corpus's fingerprint (one scandir with a stat per
file, and the conversion of new or changed PDF/DOCX/... files) with the one its BM25 index was built at. When
they differ it opens every retriever again through the same ``open_all`` function: the BM25 index is updated
incrementally (:func:`sleuth.retrieval.bm25_build.update_corpus`: only added and changed documents are read,
scores exact), a dense index is rebuilt under its lock when building is allowed. A method that cannot be opened
again (a stale dense index that may not be rebuilt) raises its error when asked for, never a stale answer.
Searches in flight keep the retrievers they started with (the swap is one assignment), so concurrent calls are
safe. :class:`FreshDocFrequency` is the ``df`` side, over the same current BM25 index.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from sleuth.errors import SleuthError

if TYPE_CHECKING:
    from sleuth.corpus import Corpus
    from sleuth.retrieval.base import Retriever
    from sleuth.retrieval.bm25 import BM25Index
    from sleuth.retrieval.df import DocFreq

Opened = tuple[dict[str, "Retriever"], dict[str, "SleuthError | str"]]


def bm25_index_of(retriever: Any) -> BM25Index | None:
    """The BM25 index a retriever searches (bm25, bm25+enrichment, sira; hybrid's bm25 part), or None."""
    from sleuth.retrieval.bm25 import BM25Index

    for cand in (getattr(retriever, "index", None), getattr(getattr(retriever, "bm25", None), "index", None)):
        if isinstance(cand, BM25Index):
            return cand
    for part in getattr(retriever, "retrievers", None) or ():
        found = bm25_index_of(part)
        if found is not None:
            return found
    return None


class FreshRetrievers(Mapping[str, "Retriever"]):
    """See the module docstring. ``open_all()`` returns (retrievers by method, methods that failed -> why)."""

    def __init__(self, corpus: Corpus, open_all: Callable[[], Opened], *, interval_s: float = 0.0) -> None:
        self.corpus = corpus
        self.interval_s = interval_s
        self._open_all = open_all
        self._lock = threading.Lock()
        self._retrievers, self.failed = open_all()
        self.methods = list(self._retrievers)  # what is offered: fixed at start
        self._fingerprint = self._built_at()
        self._checked = time.monotonic()
        self.status = self._index_status()
        self.refreshes = 0

    @classmethod
    def open(cls, corpus: Corpus, methods: Iterable[str] = ("bm25",), *, model: Any = None,
             interval_s: float = 0.0, **opts: Any) -> FreshRetrievers:
        """Fresh retrievers for ``methods`` (names of :func:`sleuth.retrieval.get_retriever`, same options; the
        BM25 index is built when missing and updated when the corpus changes)."""
        from sleuth.retrieval import get_retriever

        names = list(methods)

        def open_all() -> Opened:
            out: dict[str, Retriever] = {}
            for m in names:
                o = {"rebuild": True, **opts} if m in ("bm25", "sira") else dict(opts)
                out[m] = get_retriever(m, corpus, model=model, **o)
            return out, {}

        return cls(corpus, open_all, interval_s=interval_s)

    # -- the check ----------------------------------------------------------------------------------------------
    def _built_at(self) -> str | None:
        index = self.bm25_index_or_none()
        return index.meta.get("fingerprint") if index is not None else None

    def _index_status(self) -> str:
        index = self.bm25_index_or_none()
        return index.status if index is not None else "opened"

    def refresh(self) -> str | None:
        """Open the retrievers again if the corpus changed; returns the new index status then, else None."""
        now = time.monotonic()
        if self.interval_s and now - self._checked < self.interval_s:
            return None
        fingerprint = self.corpus.fingerprint()
        self._checked = now
        if fingerprint == self._fingerprint:
            return None
        with self._lock:
            if self.corpus.fingerprint() == self._fingerprint:  # another thread did it while this one waited
                return None
            retrievers, failed = self._open_all()
            self._retrievers, self.failed = retrievers, failed
            self._fingerprint = self._built_at()
            self.status = self._index_status()
            self.refreshes += 1
            return self.status

    def lookup(self, method: str) -> tuple[Retriever | None, str | None]:
        """(the current retriever for ``method`` or None when it is not offered, the refresh's status or None)."""
        note = self.refresh()
        current, failed = self._retrievers, self.failed
        if method in self.methods and method not in current and method in failed:
            why = failed[method]
            if isinstance(why, SleuthError):
                raise why
            raise SleuthError(f"search method {method!r} is not available since the corpus changed: {why}")
        return current.get(method), note

    def bm25_index_or_none(self) -> BM25Index | None:
        for r in self._retrievers.values():
            found = bm25_index_of(r)
            if found is not None:
                return found
        return None

    def bm25_index(self) -> BM25Index:
        """The current BM25 index (after a refresh), opened on its own when no retriever holds one."""
        self.refresh()
        index = self.bm25_index_or_none()
        if index is None:
            from sleuth.retrieval.bm25 import BM25Index

            index = BM25Index.open(self.corpus, rebuild=True)
        return index

    # -- the mapping --------------------------------------------------------------------------------------------
    def __getitem__(self, method: str) -> Retriever:
        retriever, _ = self.lookup(method)
        if retriever is None:
            raise KeyError(method)
        return retriever

    def __iter__(self) -> Iterator[str]:
        return iter(self.methods)

    def __len__(self) -> int:
        return len(self.methods)


class FreshDocFrequency:
    """:class:`~sleuth.retrieval.df.DocFrequency` over the current BM25 index of a :class:`FreshRetrievers`."""

    def __init__(self, fresh: FreshRetrievers) -> None:
        self.fresh = fresh

    def _current(self) -> Any:
        from sleuth.retrieval.df import DocFrequency

        return DocFrequency(self.fresh.bm25_index())

    @property
    def n_docs(self) -> int:
        return int(self._current().n_docs)

    def df(self, term: str) -> DocFreq:
        return self._current().df(term)

    def many(self, terms: Iterable[str]) -> list[DocFreq]:
        return self._current().many(terms)
