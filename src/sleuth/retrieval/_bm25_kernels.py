"""numba kernels for weighted BM25 over bm25s's term-major score matrix. Imported lazily (numba is optional).

``score(d) = sum_i w_i * data[j]`` for every ``j`` in column ``tok_i``'s slice ``indptr[t]:indptr[t+1]`` (whose
``indices[j]`` is the document), then a top-k heap ordered by score, then document index (the numpy kernels'
order, :mod:`sleuth.retrieval.bm25_kernels`: both backends return the same lists). The bigram tier
(:mod:`sleuth.retrieval.bm25_ngrams`) has the same layout, so one accumulation loop serves both tiers.

numba does not check bounds (a bad offset reads or writes outside the array: a segfault, or silently wrong
scores through negative wrap-around). Indexes are checked when opened (:mod:`sleuth.retrieval.index_check`), and
the kernels check every offset they follow as well (one predictable comparison per posting), raising
``IndexError`` instead of touching memory outside their arrays.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def _column(indptr, t, nnz):
    """Column ``t``'s posting span ``(start, end)``, bounds-checked against the vocabulary and ``nnz`` postings."""
    if t < 0 or t >= indptr.shape[0] - 1:
        raise IndexError("a query token id is outside the vocabulary")
    s = indptr[t]
    e = indptr[t + 1]
    if s < 0 or e < s or e > nnz:
        raise IndexError("a posting list's offsets fall outside the score matrix")
    return s, e


@njit(nogil=True, cache=True)
def add_weighted(scores, tok, w, data, indices, indptr):
    """``scores[d] += w_i * data[j]`` over the columns ``tok`` (bounds-checked)."""
    n = scores.shape[0]
    nnz = min(data.shape[0], indices.shape[0])
    for i in range(tok.shape[0]):
        s, e = _column(indptr, tok[i], nnz)
        wt = np.float32(w[i])
        for j in range(s, e):
            d = indices[j]
            if d < 0 or d >= n:
                raise IndexError("a posting names a document outside the index")
            scores[d] += wt * data[j]


@njit(nogil=True, cache=True)
def add_weighted_tf(scores, tok, w, idf, tf, indices, indptr, knorm):
    """``scores[d] += w_i * (idf_i * (tf[j] / (tf[j] + knorm[d])))`` over the columns ``tok``: the score the
    build stores (:func:`sleuth.retrieval.bm25_build._score_matrix`, the same float32 operations in the same
    order), computed from term frequencies with the statistics of now (``idf``, ``knorm``; an overlay's base,
    :mod:`sleuth.retrieval.bm25_overlay`). A document whose ``knorm`` is infinite scores 0 (deleted)."""
    n = scores.shape[0]
    nnz = min(tf.shape[0], indices.shape[0])
    if knorm.shape[0] < n:
        raise IndexError("the length norms do not cover every document")
    for i in range(tok.shape[0]):
        s, e = _column(indptr, tok[i], nnz)
        wt = np.float32(w[i])
        it = np.float32(idf[i])
        for j in range(s, e):
            d = indices[j]
            if d < 0 or d >= n:
                raise IndexError("a posting names a document outside the index")
            f = tf[j]
            scores[d] += wt * (it * (f / (f + knorm[d])))


@njit(nogil=True, cache=True)
def _below(v1, i1, v2, i2):
    """Whether (score v1, document i1) ranks below (v2, i2): a lower score, or the same score and a higher index."""
    return v1 < v2 or (v1 == v2 and i1 > i2)


@njit(nogil=True, cache=True)
def sorted_topk(scores, k):
    """The ``k`` best (scores, indices) by score, then index: a heap whose root is the worst kept entry."""
    n = scores.shape[0]
    if k > n:
        k = n
    vals = np.zeros(k, dtype=np.float32)
    idx = np.zeros(k, dtype=np.int64)
    length = 0
    for i in range(n):
        v = scores[i]
        if length < k:  # push, then move up while it ranks below its parent
            pos = length
            length += 1
            while pos > 0:
                parent = (pos - 1) >> 1
                if _below(v, i, vals[parent], idx[parent]):
                    vals[pos] = vals[parent]
                    idx[pos] = idx[parent]
                    pos = parent
                else:
                    break
            vals[pos] = v
            idx[pos] = i
        elif v > vals[0]:  # a later document with an equal score never beats the root
            pos = 0
            while True:  # replace the root, then move it down below every child that ranks below it
                child = 2 * pos + 1
                if child >= k:
                    break
                right = child + 1
                if right < k and _below(vals[right], idx[right], vals[child], idx[child]):
                    child = right
                if _below(vals[child], idx[child], v, i):
                    vals[pos] = vals[child]
                    idx[pos] = idx[child]
                    pos = child
                else:
                    break
            vals[pos] = v
            idx[pos] = i
    by_index = np.argsort(idx)
    vals = vals[by_index]
    idx = idx[by_index]
    order = np.argsort(-vals, kind="mergesort")  # stable: equal scores stay in index order
    return vals[order], idx[order]


@njit(nogil=True, cache=True)
def weighted_scores(tok, w, data, indices, indptr, n):
    scores = np.zeros(n, dtype=np.float32)
    add_weighted(scores, tok, w, data, indices, indptr)
    return scores


@njit(nogil=True, cache=True)
def weighted_topk(tok, w, data, indices, indptr, n, k):
    scores = weighted_scores(tok, w, data, indices, indptr, n)
    return sorted_topk(scores, k)


@njit(nogil=True, cache=True)
def tier_scores(tok, w, data, indices, indptr, btok, bw, bdata, bindices, bindptr, n):
    """The unigram tier's weighted scores plus the bigram tier's, in one score array."""
    scores = np.zeros(n, dtype=np.float32)
    add_weighted(scores, tok, w, data, indices, indptr)
    add_weighted(scores, btok, bw, bdata, bindices, bindptr)
    return scores


@njit(nogil=True, cache=True)
def tier_topk(tok, w, data, indices, indptr, btok, bw, bdata, bindices, bindptr, n, k):
    scores = tier_scores(tok, w, data, indices, indptr, btok, bw, bdata, bindices, bindptr, n)
    return sorted_topk(scores, k)


@njit(nogil=True, cache=True)
def count_ngram_docs(tokens, offsets, cand, gram):
    """How many candidate documents contain the token sequence ``gram`` contiguously."""
    m = gram.shape[0]
    n_docs = offsets.shape[0] - 1
    count = 0
    for c in range(cand.shape[0]):
        d = cand[c]
        if d < 0 or d >= n_docs:
            raise IndexError("a candidate document is outside the index")
        s = offsets[d]
        end = offsets[d + 1]
        if s < 0 or end < s or end > tokens.shape[0]:
            raise IndexError("a document's token span falls outside the token stream")
        e = end - m + 1
        for p in range(s, e):
            ok = True
            for q in range(m):
                if tokens[p + q] != gram[q]:
                    ok = False
                    break
            if ok:
                count += 1
                break
    return count
