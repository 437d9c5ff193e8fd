"""Fusion arithmetic (RRF, weighted min-max / z-score) and the HybridRetriever over two real list retrievers."""

from __future__ import annotations

import math
from typing import Any

import pytest

from sleuth.errors import ConfigError
from sleuth.records import Hit, SearchResult
from sleuth.retrieval.base import Retriever, RetrieverBase
from sleuth.retrieval.hybrid import (
    DEFAULT_FUSION,
    HybridRetriever,
    normalize_scores,
    reciprocal_rank_fusion,
    weighted_score_fusion,
)


def hits(source: str, *pairs: tuple[str, float]) -> list[Hit]:
    return [Hit(doc_id=d, score=s, source=source, text=f"text of {d}") for d, s in pairs]


A = hits("bm25", ("a", 12.0), ("b", 9.0), ("c", 3.0))
B = hits("dense", ("c", 0.9), ("a", 0.8), ("d", 0.1))


def test_rrf_matches_hand_computation() -> None:
    out = reciprocal_rank_fusion([A, B], k=60)
    got = {h.doc_id: h.score for h in out}
    assert got["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert got["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert got["b"] == pytest.approx(1 / 62)
    assert got["d"] == pytest.approx(1 / 63)
    assert [h.doc_id for h in out] == ["a", "c", "b", "d"]
    assert all(h.source == "hybrid" for h in out)
    assert out[0].metadata["fusion"] == {"bm25": {"rank": 1, "score": 12.0}, "dense": {"rank": 2, "score": 0.8}}
    assert out[0].text == "text of a"


def test_rrf_weights_and_duplicates() -> None:
    out = reciprocal_rank_fusion([A, B], k=0, weights=[0.0, 1.0])
    assert [h.doc_id for h in out][:3] == ["c", "a", "d"]
    dup = hits("x", ("a", 1.0), ("a", 0.5), ("b", 0.1))
    got = {h.doc_id: h.score for h in reciprocal_rank_fusion([dup], k=60)}
    assert got["a"] == pytest.approx(1 / 61)  # counted once, at its best rank
    assert got["b"] == pytest.approx(1 / 63)


def test_minmax_and_zscore() -> None:
    assert normalize_scores([12, 9, 3], "minmax") == pytest.approx([1.0, 2 / 3, 0.0])
    z = normalize_scores([1.0, 2.0, 3.0], "zscore")
    assert z == pytest.approx([-math.sqrt(1.5), 0.0, math.sqrt(1.5)])
    assert normalize_scores([5, 5], "minmax") == [1.0, 1.0]
    assert normalize_scores([5, 5], "zscore") == [0.0, 0.0]
    assert normalize_scores([], "minmax") == []
    with pytest.raises(ConfigError):
        normalize_scores([1.0], "l2")  # type: ignore[arg-type]


def test_weighted_fusion_missing_docs_get_the_list_floor() -> None:
    out = weighted_score_fusion([A, B], weights=[0.5, 0.5], norm="minmax")
    got = {h.doc_id: h.score for h in out}
    # A normalised: a 1, b 2/3, c 0; B normalised: c 1, a 0.875, d 0. Missing -> 0.
    assert got["a"] == pytest.approx(0.5 * 1 + 0.5 * 0.875)
    assert got["b"] == pytest.approx(0.5 * 2 / 3)
    assert got["c"] == pytest.approx(0.5 * 0 + 0.5 * 1)
    assert got["d"] == pytest.approx(0.0)
    assert out[0].doc_id == "a"
    z = {h.doc_id: h.score for h in weighted_score_fusion([A, B], weights=[1, 1], norm="zscore")}
    za = normalize_scores([12, 9, 3], "zscore")
    zb = normalize_scores([0.9, 0.8, 0.1], "zscore")
    assert z["b"] == pytest.approx(za[1] + min(zb))  # b is absent from B: B's lowest z-score
    assert z["d"] == pytest.approx(min(za) + zb[2])


def test_bad_weights() -> None:
    with pytest.raises(ConfigError):
        reciprocal_rank_fusion([A, B], weights=[1.0])
    with pytest.raises(ConfigError):
        weighted_score_fusion([A, B], weights=[1.0, -1.0])
    with pytest.raises(ConfigError):
        reciprocal_rank_fusion([A], k=-1)


class ListRetriever(RetrieverBase):
    """A retriever over a fixed ranked list (the input to fusion, not the unit under test)."""

    def __init__(self, name: str, ranked: list[Hit]) -> None:
        self.name = name
        self.ranked = ranked
        self.asked: list[int] = []

    def run(self, query: str, k: int = 10, *, tracer: Any = None) -> SearchResult:
        self.asked.append(k)
        return SearchResult(query=query, method=self.name, k=k, hits=self.ranked[:k])


def test_hybrid_retriever_fuses_to_depth() -> None:
    r1, r2 = ListRetriever("bm25", A), ListRetriever("dense", B)
    assert isinstance(r1, Retriever)
    h = HybridRetriever([r1, r2], fusion="rrf", depth=50)
    assert isinstance(h, Retriever)
    out = h.search("q", k=2)
    assert [x.doc_id for x in out] == ["a", "c"]
    assert r1.asked == [50] and r2.asked == [50]
    w = HybridRetriever([r1, r2], fusion="weighted", norm="minmax", weights=[0.5, 0.5]).search("q", 10)
    assert [x.doc_id for x in w] == ["a", "c", "b", "d"]
    assert HybridRetriever([r1, r2]).fusion == DEFAULT_FUSION
    legacy = HybridRetriever([r1, r2], fusion="weighted", norm="zscore")  # the older spelling of "zscore"
    assert (legacy.fusion, legacy.norm) == ("zscore", "zscore")
    z = {x.doc_id: x.score for x in HybridRetriever([r1, r2], fusion="zscore").search("q", 10)}
    assert z == {x.doc_id: x.score for x in weighted_score_fusion([A, B], norm="zscore")}
    assert z == {x.doc_id: x.score for x in legacy.search("q", 10)}
    with pytest.raises(ConfigError):
        HybridRetriever([r1], fusion="borda")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        HybridRetriever([])
