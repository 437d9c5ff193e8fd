"""Document frequency of words and phrases, as the BM25 index sees them.

* A word (one token after analysis): the length of its column in the score matrix (the index vocabulary).
* A phrase (two or more tokens): the number of documents whose *analyzed token stream* (lowercased, stopwords
  dropped, stemmed, exactly what BM25 indexed) contains the phrase's tokens contiguously. Candidates are the
  intersection of the tokens' posting lists (rarest first), then each candidate's token span is scanned for the
  n-gram (a numba loop, or numpy without numba).

Why not ``rg -l -F -i``: the literal count disagrees with what BM25 scores (it misses "failures" for "failure",
splits on punctuation differently, and counts stopword-bearing surface forms), and at 100k files one ripgrep
pass costs 0.5-1 s per phrase (NOTES.md), ten per SIRA query. The token-stream count agrees with the index by
construction, treats regex metacharacters as the punctuation they are, and costs microseconds to milliseconds.
Consequence to know: stopwords inside a phrase are ignored ("cause of death" counts "cause death").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, computed_field

from sleuth.retrieval.bm25 import BM25Index

Method = Literal["vocabulary", "token_ngram", "none"]


class DocFreq(BaseModel):
    term: str
    tokens: list[str]
    df: int
    n_docs: int
    method: Method
    note: str = ""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ratio(self) -> float:
        """df / n_docs (in dumps and the df tool's output schema)."""
        return self.df / self.n_docs if self.n_docs else 0.0


def _count_numpy(tokens: np.ndarray, offsets: np.ndarray, cand: np.ndarray, gram: np.ndarray) -> int:
    m = len(gram)
    count = 0
    for d in cand.tolist():
        span = np.asarray(tokens[offsets[d] : offsets[d + 1]])
        if len(span) < m:
            continue
        hit = np.ones(len(span) - m + 1, dtype=bool)
        for q in range(m):
            hit &= span[q : len(span) - m + 1 + q] == gram[q]
        if hit.any():
            count += 1
    return count


def _counter(backend: str):
    if backend == "numpy":  # the index scores with numpy (one query per process): no numba import here either
        return _count_numpy
    try:
        from sleuth.retrieval._bm25_kernels import count_ngram_docs

        return count_ngram_docs
    except ImportError:
        return _count_numpy


class DocFrequency:
    """``df(term)`` for words and phrases over a loaded :class:`BM25Index` (counted with the index's requested
    backend: numba, or numpy for an index opened with ``backend="numpy"``; the counts are the same)."""

    def __init__(self, index: BM25Index) -> None:
        self.index = index
        self._count = _counter(index.requested_backend)

    @property
    def n_docs(self) -> int:
        return self.index.n_docs

    def df(self, term: str) -> DocFreq:
        index = self.index
        toks = index.analyzer.tokens(term)
        n = index.n_docs
        if not toks:
            return DocFreq(term=term, tokens=[], df=0, n_docs=n, method="none",
                           note="no indexable words (only stopwords, single letters or punctuation)")
        missing = [t for t in toks if t not in index.vocab]
        if missing:
            return DocFreq(term=term, tokens=toks, df=0, n_docs=n,
                           method="vocabulary" if len(toks) == 1 else "token_ngram",
                           note=f"not in the index vocabulary: {', '.join(missing)}")
        ids = [index.vocab[t] for t in toks]
        if len(ids) == 1:
            return DocFreq(term=term, tokens=toks, df=index.doc_freq(ids[0]), n_docs=n, method="vocabulary")
        # a sharded index: the documents are split between its parts, so the phrase count is the sum of theirs
        count = 0
        for part in index.parts:  # a shard served by a Ray actor counts its own
            remote: Any = part
            count += int(remote.phrase_docs(ids)) if getattr(part, "remote", False) else self._phrase_docs(part, ids)
        return DocFreq(term=term, tokens=toks, df=count, n_docs=n, method="token_ngram")

    def _phrase_docs(self, index: BM25Index, ids: list[int]) -> int:
        """Documents of ``index`` (one index, one shard, an overlay's base or delta) whose token stream holds
        ``ids`` contiguously; an overlay's base counts its live documents only."""
        if max(ids) >= len(index.indptr) - 1:  # a term new since this part was built: it holds no such document
            return 0
        postings = sorted(
            (np.asarray(index.indices[index.indptr[t] : index.indptr[t + 1]]) for t in set(ids)), key=len
        )
        cand = postings[0]
        for p in postings[1:]:
            if len(cand) == 0:
                break
            cand = np.intersect1d(cand, p, assume_unique=True)
        live = getattr(index, "live_mask", None)
        if live is not None and len(cand):
            cand = cand[np.asarray(live)[cand]]
        if not len(cand):
            return 0
        gram = np.asarray(ids, dtype=index.tokens.dtype)
        try:
            return int(self._count(index.tokens, index.doc_offsets, cand.astype(np.int64), gram))
        except IndexError as e:  # the kernel checks bounds: the index changed on disk after its checks
            raise index._out_of_bounds(e) from None

    def many(self, terms: Iterable[str]) -> list[DocFreq]:
        return [self.df(t) for t in terms]
