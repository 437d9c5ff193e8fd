"""Exact and HNSW vector indexes: ordering, persistence, errors. (Recall on real embeddings: integration.)"""

from __future__ import annotations

import numpy as np
import pytest

from sleuth.errors import ConfigError, IndexCorruptError
from sleuth.retrieval.embeddings import normalize
from sleuth.retrieval.vector_index import ExactIndex, build_vector_index, load_vector_index


def test_normalize_rows() -> None:
    v = normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert v.dtype == np.float32
    assert v[0] == pytest.approx([0.6, 0.8])
    assert v[1] == pytest.approx([0.0, 0.0])


def test_exact_index_orders_by_inner_product() -> None:
    vecs = normalize(np.array([[1, 0, 0], [0.7, 0.7, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32))
    idx = ExactIndex(vecs)
    scores, rows = idx.search(np.array([1.0, 0.1, 0.0]), 3)
    assert rows[0].tolist() == [0, 1, 2]
    assert scores[0][0] >= scores[0][1] >= scores[0][2]
    s_all, r_all = idx.search(vecs, 10)  # k larger than the index: all rows
    assert r_all.shape == (4, 4)
    assert r_all[:, 0].tolist() == [0, 1, 2, 3]
    with pytest.raises(ConfigError):
        idx.search(np.ones((1, 5), np.float32), 2)


def test_save_load_roundtrip(tmp_path) -> None:
    rng = np.random.default_rng(0)
    vecs = normalize(rng.normal(size=(300, 16)))
    for kind in ("exact", "hnsw"):
        folder = tmp_path / kind
        folder.mkdir()
        idx = build_vector_index(vecs, kind)  # type: ignore[arg-type]
        idx.save(folder)
        back = load_vector_index(folder, kind)
        assert back.kind == kind and len(back) == 300
        s1, r1 = idx.search(vecs[:5], 5)
        s2, r2 = back.search(vecs[:5], 5)
        assert r1.tolist() == r2.tolist()
        assert r2[:, 0].tolist() == [0, 1, 2, 3, 4]  # each vector is its own nearest neighbour
        assert s2[:, 0] == pytest.approx(1.0, abs=1e-5)


def test_auto_threshold_and_corruption(tmp_path) -> None:
    vecs = normalize(np.random.default_rng(1).normal(size=(50, 8)))
    assert build_vector_index(vecs, "auto", threshold=100).kind == "exact"
    assert build_vector_index(vecs, "auto", threshold=10).kind == "hnsw"
    with pytest.raises(ConfigError):
        build_vector_index(vecs, "ivf")  # type: ignore[arg-type]
    (tmp_path / "vectors.npy").write_bytes(b"not numpy")
    with pytest.raises(IndexCorruptError):
        load_vector_index(tmp_path, "exact")
    np.save(tmp_path / "vectors.npy", vecs)
    with pytest.raises(IndexCorruptError):  # hnsw file missing
        load_vector_index(tmp_path, "hnsw")


def test_hnsw_single_query_and_k_above_size() -> None:
    vecs = normalize(np.random.default_rng(2).normal(size=(120, 12)))
    idx = build_vector_index(vecs, "hnsw")
    for q in (vecs[7], vecs[7][None, :]):  # a 1-D vector and a one-row matrix (usearch answers differently)
        scores, rows = idx.search(q, 4)
        assert rows.shape == (1, 4) and rows[0, 0] == 7
        assert scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    _, rows = idx.search(vecs[:2], 500)  # k larger than the index: every row once
    assert rows.shape == (2, 120) and sorted(rows[0].tolist()) == list(range(120))


def test_hnsw_rows_the_graph_walk_left_short_are_answered_exactly() -> None:
    """usearch may find fewer than k neighbours (counts < k, keys padded); those rows get the exact top k instead of
    padding (seen in CI: k >= the index size returned a -1 row)."""
    vecs = normalize(np.random.default_rng(3).normal(size=(60, 8)))
    idx = build_vector_index(vecs, "hnsw")
    real = idx._index

    class ShortWalk:  # usearch's BatchMatches shape: query 1 found only 2 of 5
        def __init__(self, q: np.ndarray, k: int) -> None:
            m = real.search(q, k)
            self.keys = np.asarray(m.keys).reshape(len(q), -1).copy()
            self.distances = np.asarray(m.distances).reshape(len(q), -1).copy()
            self.counts = np.array([k, 2])

    class Wrapped:
        expansion_search = 64

        def search(self, q, k):  # type: ignore[no-untyped-def]
            return ShortWalk(q, k)

    idx._index = Wrapped()
    scores, rows = idx.search(vecs[[4, 9]], 5)
    exact_scores, exact_rows = ExactIndex(vecs).search(vecs[[9]], 5)
    assert rows[1].tolist() == exact_rows[0].tolist() and (rows >= 0).all()
    assert scores[1] == pytest.approx(exact_scores[0])
