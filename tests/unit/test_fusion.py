"""The named fusions of sleuth.retrieval.fusion: hand-computed cases for vstash and adaptive, adaptive weights on
constructed lists where one retriever is noise, calibration, and what HybridRetriever records."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import pytest

from sleuth.corpus import Corpus
from sleuth.errors import ConfigError
from sleuth.records import Hit, SearchResult
from sleuth.retrieval.base import RetrieverBase
from sleuth.retrieval.bm25 import BM25Retriever
from sleuth.retrieval.fusion import (
    AdaptiveParams,
    FusionPrior,
    adaptive_weights,
    calibrate_prior,
    calibration_fold,
    fuse,
    normalize_scores,
    query_idf,
    top_z,
    vstash_weights,
)
from sleuth.retrieval.hybrid import HybridResult, HybridRetriever
from sleuth.tracing import MemoryTracer


def hits(source: str, *pairs: tuple[str, float]) -> list[Hit]:
    return [Hit(doc_id=d, score=s, source=source) for d, s in pairs]


A = hits("bm25", ("a", 12.0), ("b", 9.0), ("c", 3.0))
B = hits("dense", ("c", 0.9), ("a", 0.8), ("d", 0.1))


def test_top_z_by_hand() -> None:
    # A: mean 8, population sd sqrt(14); top score 12 -> 4 / sqrt(14). B: mean 0.6, sd sqrt(0.38 / 3).
    assert top_z(A) == pytest.approx(4 / math.sqrt(14))
    assert top_z(B) == pytest.approx(0.3 / math.sqrt(0.38 / 3))
    assert top_z(A, 2) == pytest.approx((4 + 1) / 2 / math.sqrt(14))
    assert top_z(hits("x", ("a", 1.0))) == 0.0 and top_z(hits("x", ("a", 2.0), ("b", 2.0))) == 0.0
    assert top_z(hits("x", ("a", 3.0), ("a", 1.0), ("b", 1.0))) == 1.0  # a counts once, at its best: [3, 1]


def test_adaptive_fusion_by_hand() -> None:
    p = AdaptiveParams(gamma=2.0, top_m=1, collection_gain=1.0)
    # z_A^2 = 16 / 14 = 8/7, z_B^2 = 0.09 / (0.38/3) = 27/38 -> w_A = (8/7) / (8/7 + 27/38) = 304/493
    w, sig = adaptive_weights([A, B], p)
    assert w == pytest.approx([304 / 493, 189 / 493])
    assert sig["query_term"] is True and "prior_top_z" not in sig
    fused = fuse("adaptive", [A, B], names=["bm25", "dense"], params=p)
    za, zb = normalize_scores([12, 9, 3], "zscore"), normalize_scores([0.9, 0.8, 0.1], "zscore")
    got = {h.doc_id: h.score for h in fused.hits}
    wa, wb = 304 / 493, 189 / 493
    assert got["a"] == pytest.approx(wa * za[0] + wb * zb[1])
    assert got["b"] == pytest.approx(wa * za[1] + wb * min(zb))  # absent from B: B's lowest z-score
    assert got["c"] == pytest.approx(wa * za[2] + wb * zb[0])
    assert got["d"] == pytest.approx(wa * min(za) + wb * zb[2])
    assert [h.doc_id for h in fused.hits] == sorted(got, key=lambda d: -got[d])
    # with a collection prior (mean top-z 1 for A, 2 for B), gain 1: w ∝ z^2 * zbar -> 8/7 vs 27/19
    prior = FusionPrior(top_z=[1.0, 2.0], n_queries=10)
    w2, sig2 = adaptive_weights([A, B], p, prior)
    assert w2 == pytest.approx([152 / 341, 189 / 341])
    assert sig2["prior_term"] is True and sig2["prior_queries"] == 10
    # no signal at all: equal weights, i.e. zscore fusion
    flat = AdaptiveParams(gamma=0.0, collection_gain=0.0)
    assert adaptive_weights([A, B], flat)[0] == [0.5, 0.5]
    zs = fuse("zscore", [A, B], names=["bm25", "dense"])
    assert [h.score for h in fuse("adaptive", [A, B], names=["bm25", "dense"], params=flat).hits] == [
        pytest.approx(0.5 * h.score) for h in zs.hits]  # type: ignore[operator]
    # a list whose head cannot be measured (one hit) drops the query term; the prior still applies
    one = hits("bm25", ("a", 5.0))
    w3, sig3 = adaptive_weights([one, B], p, prior)
    assert sig3["query_term"] is False and w3 == pytest.approx([1 / 3, 2 / 3])
    w4, _ = adaptive_weights([A, B], AdaptiveParams(gamma=2.0, top_m=1, min_weight=0.2))
    assert w4 == pytest.approx([0.2 + 0.6 * 304 / 493, 0.2 + 0.6 * 189 / 493])


def _noise_case(rng: random.Random, informative: str) -> tuple[list[Hit], list[Hit], set[str]]:
    """One query over 200 documents: 5 relevant ones. The informative list puts them far above its other 45
    candidates; the noise list is 50 random documents with flat scores that carry no information."""
    docs = [f"d{i}" for i in range(200)]
    relevant = set(rng.sample(docs, 5))
    rest = [d for d in docs if d not in relevant]
    good = [(d, 20.0 - i) for i, d in enumerate(sorted(relevant))]
    good += [(d, rng.uniform(1.0, 4.0)) for d in rng.sample(rest, 45)]
    good.sort(key=lambda x: -x[1])
    noise = sorted(((d, 0.30 + rng.gauss(0, 0.01)) for d in rng.sample(docs, 50)), key=lambda x: -x[1])
    if informative == "bm25":
        return hits("bm25", *good), hits("dense", *noise), relevant
    return hits("bm25", *[(d, 3.0 + 10 * (s - 0.3)) for d, s in noise]), hits("dense", *[
        (d, s / 25) for d, s in good]), relevant


@pytest.mark.parametrize("informative", ["bm25", "dense"])
def test_adaptive_weights_move_to_the_list_that_is_not_noise(informative: str) -> None:
    rng = random.Random(7)
    p = AdaptiveParams()
    cases = [_noise_case(rng, informative) for _ in range(30)]
    strong = 0 if informative == "bm25" else 1
    prior = calibrate_prior([[b, d] for b, d, _ in cases[:20]], p, ["bm25", "dense"])
    assert prior.top_z[strong] > prior.top_z[1 - strong]
    for b, d, relevant in cases[20:]:
        w, _ = adaptive_weights([b, d], p)
        assert w[strong] > 0.6  # equal weights would be 0.5
        wp, _ = adaptive_weights([b, d], p, prior)
        assert wp[strong] > w[strong]  # the collection prior pushes further the same way
        top5 = {h.doc_id for h in fuse("adaptive", [b, d], names=["bm25", "dense"], params=p, prior=prior).hits[:5]}
        assert top5 == relevant
    # the equal-weight fusion lets the noise list into the top 5 on some of these queries
    equal_misses = sum(
        {h.doc_id for h in fuse("zscore", [b, d], names=["bm25", "dense"]).hits[:5]} != relevant
        for b, d, relevant in cases[20:]
    )
    assert equal_misses >= 1


def test_vstash_weights_by_hand() -> None:
    # N = 100; "alpha" in 9 documents: ln(100/10); "beta" in none: ln(100). Mean = 1.5 ln 10, threshold ln(100)/2 =
    # ln 10, sigmoid(2 * 0.5 ln 10) = 1 / (1 + 1/10) = 10/11 -> w_lex = 0.1 + 0.5 * 10/11 = 0.5545 (0.555 rounded)
    stats = {"n_docs": 100, "n_words": 2, "idf": [math.log(10), math.log(100)]}
    w_lex, w_dense, sig = vstash_weights(stats)
    assert (w_lex, w_dense) == (0.555, 0.445)
    assert sig["mean_idf"] == pytest.approx(1.5 * math.log(10), abs=1e-4)
    assert vstash_weights({"n_docs": 100, "n_words": 51, "idf": [1.0]})[:2] == (0.1, 0.9)  # long query
    assert vstash_weights({"n_docs": 1, "n_words": 2, "idf": []})[:2] == (0.4, 0.6)  # the reference's default
    f = fuse("vstash", [A, B], names=["bm25", "dense"], lexical=0, idf=stats)
    got = {h.doc_id: h.score for h in f.hits}
    # the reference counts ranks from 0: w / (60 + r)
    assert got["a"] == pytest.approx(0.555 / 60 + 0.445 / 61)
    assert got["d"] == pytest.approx(0.445 / 62)
    assert f.weights == [0.555, 0.445]
    assert fuse("vstash", [B, A], names=["dense", "bm25"], lexical=1, idf=stats).weights == [0.445, 0.555]


def test_query_idf_reads_the_bm25_index(tmp_path: Path) -> None:
    for i in range(10):
        (tmp_path / f"d{i}.txt").write_text("kinase inhibitor" if i < 3 else "protein folding", "utf-8")
    bm25 = BM25Retriever.open(Corpus(tmp_path))
    stats = query_idf(bm25, "the kinase of zebrafish")  # "the", "of": stopwords, not indexed
    assert stats["n_docs"] == 10 and stats["n_words"] == 4
    assert stats["idf"] == [round(math.log(10 / 4), 4), round(math.log(10), 4)]  # df 3 -> ln(10/4); unseen -> ln 10


class ListRetriever(RetrieverBase):
    """A retriever over fixed ranked lists per query (the input to fusion, not the unit under test)."""

    def __init__(self, name: str, by_query: dict[str, list[Hit]]) -> None:
        self.name, self.by_query = name, by_query

    def run(self, query: str, k: int = 10, *, tracer: Any = None) -> SearchResult:
        return SearchResult(query=query, method=self.name, k=k, hits=self.by_query[query][:k])


class ListLexical(ListRetriever):
    def doc_freqs(self, query: str) -> tuple[int, list[tuple[str, int]]]:
        return 100, [(w, 9) for w in query.split()]


def test_hybrid_records_fusion_weights_and_signals() -> None:
    rng = random.Random(3)
    cases = {f"q{i}": _noise_case(rng, "bm25") for i in range(12)}
    bm25 = ListLexical("bm25", {q: c[0] for q, c in cases.items()})
    dense = ListRetriever("dense", {q: c[1] for q, c in cases.items()})
    h = HybridRetriever([bm25, dense], fusion="adaptive", depth=50)
    tracer = MemoryTracer()
    res = h.run("q0", 5, tracer=tracer)
    assert isinstance(res, HybridResult) and res.fusion == "adaptive"
    assert set(res.weights) == {"bm25", "dense"} and res.weights["bm25"] > 0.75
    assert res.decided()["fusion"]["weights"] == res.weights and "top_z" in res.signals
    (event,) = [e for e in tracer.events if e.name == "hybrid"]
    assert event.kind == "retrieval" and event.data["fusion"] == "adaptive"
    assert event.data["weights"] == res.weights and event.data["signals"]["query_term"] is True
    prior = h.calibrate(list(cases)[1:])
    assert prior.n_queries == 11 and prior.names == ["bm25", "dense"] and h.prior is prior
    again = h.run("q0", 5)
    assert again.signals["prior_term"] is True and again.weights["bm25"] > res.weights["bm25"]
    assert HybridResult.model_validate(again.model_dump()) == again
    v = HybridRetriever([bm25, dense], fusion="vstash").run("q0", 5, tracer=tracer)
    # "q0": one word in 9 of 100 documents -> idf ln 10 = the threshold ln(100)/2 -> sigmoid 0.5 -> 0.35 / 0.65
    assert v.weights == {"bm25": 0.35, "dense": 0.65} and v.signals["rule"] == "idf"
    assert HybridRetriever([bm25, dense], fusion="rrf").run("q0", 5).weights == {"bm25": 1.0, "dense": 1.0}


def test_bad_fusion_input() -> None:
    r = ListRetriever("dense", {"q": B})
    lex = ListLexical("bm25", {"q": A})
    with pytest.raises(ConfigError, match="unknown fusion"):
        HybridRetriever([lex, r], fusion="borda")
    with pytest.raises(ConfigError, match="vstash"):
        HybridRetriever([r, r], fusion="vstash")  # no retriever reports document frequencies
    with pytest.raises(ConfigError, match="vstash"):
        fuse("vstash", [A, B, B], lexical=0, idf={"n_docs": 3, "n_words": 1, "idf": [1.0]})
    with pytest.raises(ConfigError, match="IDF"):
        fuse("vstash", [A, B], lexical=0)
    with pytest.raises(ConfigError, match="norm"):
        HybridRetriever([lex, r], fusion="rrf", norm="minmax")
    with pytest.raises(ConfigError, match="at least one"):
        HybridRetriever([lex, r], fusion="adaptive").calibrate(["", "  "])
    with pytest.raises(ConfigError):
        calibrate_prior([], AdaptiveParams())
    with pytest.raises(ValueError):
        AdaptiveParams(gamma=-1.0)
    assert HybridRetriever([lex, r], fusion="adaptive").run("q", 3).hits  # adaptive needs no document frequencies


def test_calibration_folds_split_a_set_in_two() -> None:
    folds = [calibration_fold(f"q{i}") for i in range(1000)]
    assert set(folds) == {0, 1} and 400 < sum(folds) < 600
    assert calibration_fold("q1") == calibration_fold("q1")
