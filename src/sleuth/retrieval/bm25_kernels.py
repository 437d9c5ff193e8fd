"""The scoring kernels of :class:`sleuth.retrieval.bm25.BM25Index`: numba (``_bm25_kernels``, when numba imports)
or these numpy equivalents. Five functions, the same signatures in both: unigram scores, unigram top-k, the
same for the unigram plus the bigram tier (:mod:`sleuth.retrieval.bm25_ngrams`), and scores computed from term
frequencies with the statistics of now (an incremental update's base, :mod:`sleuth.retrieval.bm25_overlay`).

Both backends give the same results bit for bit: the scores are accumulated in float32 in the same order (the
query's columns in turn, the bigram tier's after the unigram tier's, into one array), and the top k are ordered by
score, then by document index (a tie at the k-th place keeps the lower index). ``tests/unit/test_bm25_fastpath.py``
checks both on real SciFact queries. The numpy kernels need no JIT and no numba import, so a process that answers
one query (a CLI call) uses them (``backend="numpy"``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np

Backend = Literal["auto", "numba", "numpy"]
BACKENDS: tuple[str, ...] = ("auto", "numba", "numpy")


def _topk_numpy(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best (scores, indices), by score, then by index (the numba kernel's order)."""
    n = len(scores)
    k = min(k, n)
    if k <= 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    if k < n:
        kth = np.partition(scores, n - k)[n - k]  # the k-th largest score
        above = np.flatnonzero(scores > kth)
        tied = np.flatnonzero(scores == kth)[: k - len(above)]
        idx = np.concatenate([above, tied])
    else:
        idx = np.arange(n)
    idx = idx[np.lexsort((idx, -scores[idx]))]
    return scores[idx], idx


def _add_numpy(scores: np.ndarray, tok: np.ndarray, w: np.ndarray, data: np.ndarray, indices: np.ndarray,
               indptr: np.ndarray) -> None:
    for t, wt in zip(tok.tolist(), w.tolist(), strict=True):
        s, e = indptr[t], indptr[t + 1]
        # a column holds each document at most once, so fancy-index += is exact (no np.add.at needed)
        scores[indices[s:e]] += np.float32(wt) * data[s:e]


def _add_tf_numpy(scores: np.ndarray, tok: np.ndarray, w: np.ndarray, idf: np.ndarray, tf: np.ndarray,
                  indices: np.ndarray, indptr: np.ndarray, knorm: np.ndarray) -> None:
    """The numba ``add_weighted_tf``: scores from term frequencies, the build's float32 operations in its order."""
    for t, wt, it in zip(tok.tolist(), w.tolist(), idf.tolist(), strict=True):
        s, e = indptr[t], indptr[t + 1]
        d = indices[s:e]
        f = tf[s:e]
        scores[d] += np.float32(wt) * (np.float32(it) * (f / (f + knorm[d])))


def _scores_numpy(tok, w, data, indices, indptr, n):
    scores = np.zeros(n, dtype=np.float32)
    _add_numpy(scores, tok, w, data, indices, indptr)
    return scores


def _weighted_topk_numpy(
    tok: np.ndarray, w: np.ndarray, data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, n: int, k: int
) -> tuple[np.ndarray, np.ndarray]:
    return _topk_numpy(_scores_numpy(tok, w, data, indices, indptr, n), k)


def _tier_scores_numpy(tok, w, data, indices, indptr, btok, bw, bdata, bindices, bindptr, n):
    scores = _scores_numpy(tok, w, data, indices, indptr, n)
    _add_numpy(scores, btok, bw, bdata, bindices, bindptr)
    return scores


def _tier_topk_numpy(tok, w, data, indices, indptr, btok, bw, bdata, bindices, bindptr, n, k):
    return _topk_numpy(_tier_scores_numpy(tok, w, data, indices, indptr, btok, bw, bdata, bindices, bindptr, n), k)


# (scores, top-k, tier scores, tier top-k, add scores from term frequencies in place)
Kernels = tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any], Callable[..., Any], Callable[..., Any]]
NUMPY_KERNELS: Kernels = (_scores_numpy, _weighted_topk_numpy, _tier_scores_numpy, _tier_topk_numpy, _add_tf_numpy)


def _load_numba_kernels() -> Kernels | None:
    try:
        from sleuth.retrieval import _bm25_kernels as kern
    except ImportError:  # numba not installed: numpy fallback
        return None
    return kern.weighted_scores, kern.weighted_topk, kern.tier_scores, kern.tier_topk, kern.add_weighted_tf


_NUMBA: Kernels | bool | None = False  # False: not tried yet


def numba_kernels() -> Kernels | None:
    global _NUMBA
    if _NUMBA is False:
        _NUMBA = _load_numba_kernels()
    return _NUMBA  # type: ignore[return-value]


def check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        from sleuth.errors import ConfigError

        raise ConfigError(f"unknown BM25 backend {backend!r}", hint="use auto, numba or numpy")


def kernels_for(backend: str) -> tuple[str, Kernels]:
    """``(name, kernels)`` for a requested backend: ``auto`` is numba when it imports, else numpy; ``numba``
    without numba installed falls back to numpy too (the results are the same)."""
    check_backend(backend)
    if backend != "numpy":
        kern = numba_kernels()
        if kern is not None:
            return "numba", kern
    return "numpy", NUMPY_KERNELS
