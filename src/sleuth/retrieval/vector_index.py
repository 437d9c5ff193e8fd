"""Vector search over L2-normalised float32 rows: exact (numpy) for small sets, HNSW (usearch) above a threshold.

Both return inner-product scores (= cosine for unit vectors), best first, and save to / load from a folder:
``vectors.npy`` always (the exact copy is the source of truth, and lets a rebuild reuse vectors), plus
``hnsw.usearch`` for the approximate index. The folder layout and meta are written by the caller
(:mod:`sleuth.retrieval.dense`) inside :func:`sleuth.fsutil.atomic_dir`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from sleuth.errors import ConfigError, IndexCorruptError, MissingExtraError

# Below this many vectors exact search is fast enough (5k x 384: ~0.3 ms/query) and has perfect recall.
APPROX_THRESHOLD = 50_000
IndexKind = Literal["auto", "exact", "hnsw"]


class VectorIndex(Protocol):
    kind: str
    vectors: np.ndarray

    def __len__(self) -> int: ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, rows)``, each ``(n_queries, min(k, len))``; rows index into ``vectors``."""
        ...

    def save(self, folder: Path) -> None: ...


def _as_queries(q: np.ndarray, dim: int) -> np.ndarray:
    q = np.asarray(q, dtype=np.float32)
    if q.ndim == 1:
        q = q[None, :]
    if q.shape[1] != dim:
        raise ConfigError(f"query vectors have {q.shape[1]} dims, the index {dim}", hint="embed with the same model")
    return np.ascontiguousarray(q)


class ExactIndex:
    """Brute-force inner product with numpy (``argpartition`` then a sort of the top k)."""

    kind = "exact"

    def __init__(self, vectors: np.ndarray) -> None:
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self.vectors.ndim != 2:
            raise ConfigError("vectors must be a 2-D array", hint="pass shape (n, dim)")

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = _as_queries(queries, self.dim)
        n = len(self)
        k = max(0, min(k, n))
        if k == 0:
            return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
        scores = q @ self.vectors.T
        if k < n:
            part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        else:
            part = np.tile(np.arange(n), (len(q), 1))
        top = np.take_along_axis(scores, part, axis=1)
        order = np.argsort(-top, axis=1, kind="stable")
        return np.take_along_axis(top, order, axis=1), np.take_along_axis(part, order, axis=1).astype(np.int64)

    def save(self, folder: Path) -> None:
        np.save(folder / "vectors.npy", self.vectors)


class HNSWIndex:
    """usearch HNSW (inner product, M=16, ef_construction=128, ef_search=64 by default)."""

    kind = "hnsw"

    def __init__(
        self,
        vectors: np.ndarray,
        *,
        connectivity: int = 16,
        expansion_add: int = 128,
        expansion_search: int = 64,
        threads: int = 0,
        _index: Any = None,
    ) -> None:
        try:
            from usearch.index import Index
        except ImportError:
            raise MissingExtraError("dense", "usearch", "the approximate vector index") from None
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.expansion_search = expansion_search
        if _index is not None:
            self._index = _index
        else:
            self._index = Index(
                ndim=self.vectors.shape[1],
                metric="ip",
                dtype="f32",
                connectivity=connectivity,
                expansion_add=expansion_add,
                expansion_search=expansion_search,
            )
            if len(self.vectors):
                self._index.add(np.arange(len(self.vectors), dtype=np.uint64), self.vectors, threads=threads)

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = _as_queries(queries, self.dim)
        k = max(0, min(k, len(self)))
        if k == 0:
            return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
        if k >= len(self):  # the whole index is asked for: exact costs the same and misses nothing
            return ExactIndex(self.vectors).search(q, k)
        self._index.expansion_search = max(self.expansion_search, k)
        m = self._index.search(q, k)
        keys = np.asarray(m.keys, dtype=np.int64).reshape(len(q), -1)
        dist = np.asarray(m.distances, dtype=np.float32).reshape(len(q), -1)
        # one query row gives a usearch ``Matches`` (no ``counts``), several a ``BatchMatches``
        counts = np.asarray(m.counts).reshape(-1) if hasattr(m, "counts") else np.array([len(np.asarray(m.keys))])
        scores = 1.0 - dist  # usearch "ip" distance is 1 - <a, b>
        short = [i for i, c in enumerate(counts) if c < k]
        if short:  # the graph walk found fewer than k (it can, on small or clustered sets): answer those exactly
            ex_scores, ex_rows = ExactIndex(self.vectors).search(q[short], k)
            scores[short], keys[short] = ex_scores, ex_rows
        return scores, keys

    def save(self, folder: Path) -> None:
        np.save(folder / "vectors.npy", self.vectors)
        self._index.save(str(folder / "hnsw.usearch"))

    @classmethod
    def load(cls, folder: Path, vectors: np.ndarray, expansion_search: int = 64) -> HNSWIndex:
        from usearch.index import Index

        path = folder / "hnsw.usearch"
        if not path.is_file():
            raise IndexCorruptError(f"{path} is missing")
        try:
            idx = Index.restore(str(path), view=False)
        except (RuntimeError, ValueError, OSError) as e:
            raise IndexCorruptError(f"cannot read {path}: {e}", path=str(path)) from None
        if idx is None or len(idx) != len(vectors) or (len(vectors) and idx.ndim != vectors.shape[1]):
            raise IndexCorruptError(f"{path} does not match vectors.npy ({vectors.shape} rows x dims)",
                                    path=str(path))
        return cls(vectors, expansion_search=expansion_search, _index=idx)


def build_vector_index(vectors: np.ndarray, kind: IndexKind = "auto", threshold: int = APPROX_THRESHOLD) -> VectorIndex:
    """``auto``: exact below ``threshold`` vectors, HNSW at or above it."""
    if kind == "auto":
        kind = "hnsw" if len(vectors) >= threshold else "exact"
    if kind == "exact":
        return ExactIndex(vectors)
    if kind == "hnsw":
        return HNSWIndex(vectors)
    raise ConfigError(f"unknown vector index kind {kind!r}", hint="use auto, exact or hnsw")


def check_unit_rows(vectors: np.ndarray, path: Path, fix: str = "") -> None:
    """Raise :class:`IndexCorruptError` unless ``vectors`` is a 2-D native float32 array of finite rows of norm
    at most 1 (unit, or zero). One pass of row norms (NaN and inf show up in them), in blocks: no big temporary."""
    hint = fix or "rebuild the index"
    if vectors.dtype != np.float32 or vectors.ndim != 2:
        raise IndexCorruptError(f"index file {path} is corrupt: expected a 2-D float32 array, found "
                                f"{vectors.dtype.str} {vectors.shape}", hint=hint, path=str(path))
    for s in range(0, vectors.shape[0], 65_536):
        block = vectors[s : s + 65_536]
        sq = np.einsum("ij,ij->i", block, block)
        if not (np.isfinite(sq).all() and float(sq.max(initial=0.0)) <= 1.0 + 1e-3):
            bad = s + int(np.flatnonzero(~(np.isfinite(sq) & (sq <= 1.0 + 1e-3)))[0])
            raise IndexCorruptError(f"index file {path} is corrupt: row {bad} is not a finite unit vector",
                                    hint=hint, path=str(path))


def load_vector_index(folder: Path, kind: str, *, fix: str = "") -> VectorIndex:
    """Load ``vectors.npy`` (+ the HNSW graph), checked by :func:`check_unit_rows`."""
    hint = fix or "rebuild the index"
    path = folder / "vectors.npy"
    try:
        vectors = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise IndexCorruptError(f"cannot read {path}: {e}", hint=hint, path=str(path)) from None
    check_unit_rows(vectors, path, fix)
    if kind == "exact":
        return ExactIndex(vectors)
    if kind == "hnsw":
        try:
            return HNSWIndex.load(folder, vectors)
        except IndexCorruptError as e:
            raise IndexCorruptError(e.message, hint=hint, **e.context) from None
    raise IndexCorruptError(f"unknown vector index kind {kind!r} in {folder}", hint=hint)
