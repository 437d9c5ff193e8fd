"""numba kernels for weighted BM25 over bm25s's term-major score matrix. Imported lazily (numba is optional).

``score(d) = sum_i w_i * data[j]`` for every ``j`` in column ``tok_i``'s slice ``indptr[t]:indptr[t+1]`` (whose
``indices[j]`` is the document), then bm25s's own numba top-k heap.
"""

from __future__ import annotations

import numpy as np
from bm25s.numba.selection import _numba_sorted_top_k
from numba import njit


@njit(nogil=True, cache=True)
def weighted_scores(tok, w, data, indices, indptr, n):  # type: ignore[no-untyped-def]
    scores = np.zeros(n, dtype=np.float32)
    for i in range(tok.shape[0]):
        t = tok[i]
        wt = np.float32(w[i])
        for j in range(indptr[t], indptr[t + 1]):
            scores[indices[j]] += wt * data[j]
    return scores


@njit(nogil=True, cache=True)
def weighted_topk(tok, w, data, indices, indptr, n, k):  # type: ignore[no-untyped-def]
    scores = weighted_scores(tok, w, data, indices, indptr, n)
    return _numba_sorted_top_k(scores, k, True)


@njit(nogil=True, cache=True)
def count_ngram_docs(tokens, offsets, cand, gram):  # type: ignore[no-untyped-def]
    """How many candidate documents contain the token sequence ``gram`` contiguously."""
    m = gram.shape[0]
    count = 0
    for c in range(cand.shape[0]):
        d = cand[c]
        s = offsets[d]
        e = offsets[d + 1] - m + 1
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
