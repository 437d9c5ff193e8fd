"""The scoring kernels of :class:`sleuth.retrieval.bm25.BM25Index`: numba (``_bm25_kernels``, when numba imports)
or these numpy equivalents. Four functions, the same signatures in both: unigram scores, unigram top-k, and the
same for the unigram plus the bigram tier (:mod:`sleuth.retrieval.bm25_ngrams`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def _topk_numpy(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    k = min(k, len(scores))
    if k <= 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    idx = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    order = np.argsort(-scores[idx], kind="stable")
    idx = idx[order]
    return scores[idx], idx


def _weighted_topk_numpy(
    tok: np.ndarray, w: np.ndarray, data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, n: int, k: int
) -> tuple[np.ndarray, np.ndarray]:
    scores = np.zeros(n, dtype=np.float32)
    for t, wt in zip(tok.tolist(), w.tolist(), strict=True):
        s, e = indptr[t], indptr[t + 1]
        # a column holds each document at most once, so fancy-index += is exact (no np.add.at needed)
        scores[indices[s:e]] += np.float32(wt) * data[s:e]
    return _topk_numpy(scores, k)


def _scores_numpy(tok, w, data, indices, indptr, n):
    scores = np.zeros(n, dtype=np.float32)
    for t, wt in zip(tok.tolist(), w.tolist(), strict=True):
        s, e = indptr[t], indptr[t + 1]
        scores[indices[s:e]] += np.float32(wt) * data[s:e]
    return scores


def _tier_scores_numpy(tok, w, data, indices, indptr, btok, bw, bdata, bindices, bindptr, n):
    return _scores_numpy(tok, w, data, indices, indptr, n) + _scores_numpy(btok, bw, bdata, bindices, bindptr, n)


def _tier_topk_numpy(tok, w, data, indices, indptr, btok, bw, bdata, bindices, bindptr, n, k):
    return _topk_numpy(_tier_scores_numpy(tok, w, data, indices, indptr, btok, bw, bdata, bindices, bindptr, n), k)


Kernels = tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any], Callable[..., Any]]
NUMPY_KERNELS: Kernels = (_scores_numpy, _weighted_topk_numpy, _tier_scores_numpy, _tier_topk_numpy)


def _load_numba_kernels() -> Kernels | None:
    try:
        from sleuth.retrieval import _bm25_kernels as kern
    except ImportError:  # numba not installed (or bm25s moved its top-k helper): numpy fallback
        return None
    return kern.weighted_scores, kern.weighted_topk, kern.tier_scores, kern.tier_topk


_NUMBA: Kernels | bool | None = False  # False: not tried yet


def numba_kernels() -> Kernels | None:
    global _NUMBA
    if _NUMBA is False:
        _NUMBA = _load_numba_kernels()
    return _NUMBA  # type: ignore[return-value]
