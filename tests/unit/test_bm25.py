"""BM25 index: equality with bm25s, weighted search, bad input, persistence failures."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from sleuth.corpus import Corpus
from sleuth.errors import IndexCorruptError, IndexMissingError, StaleIndexError, ToolArgumentError
from sleuth.retrieval import bm25 as bm25mod
from sleuth.retrieval import bm25_build
from sleuth.retrieval.bm25 import Analyzer, BM25Index, BM25Params, BM25Retriever, build_corpus
from tests.conftest import MEDICAL_DOCS

DOCS = {**MEDICAL_DOCS, "g.txt": "The of and to in is a."}


@pytest.fixture()
def corpus(make_corpus) -> Corpus:
    return Corpus(make_corpus(DOCS, "corpus"))


@pytest.fixture()
def retriever(corpus: Corpus) -> BM25Retriever:
    return BM25Retriever.open(corpus)


def test_scores_equal_bm25s_own_index(corpus: Corpus, retriever: BM25Retriever) -> None:
    import bm25s

    index = retriever.index
    analyzer = Analyzer(index.params)
    tokens = [analyzer.tokens(corpus.read_text(d)) for d in index.doc_ids]
    ref = bm25s.BM25(k1=index.params.k1, b=index.params.b, method="lucene", backend="numpy")
    ref.index(tokens, show_progress=False)
    for q in ["heart failure", "blood pressure arteries", "insulin exercise exercise", "templates"]:
        qt = analyzer.tokens(q)
        expected = ref.get_scores(qt)
        tok, w = index.weighted_token_ids([(q, 1.0)])
        got = index.score_vector(tok, w)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_raw_bm25s_loads_the_same_index_mmap(retriever: BM25Retriever) -> None:
    import bm25s

    raw = bm25s.BM25.load(retriever.index.path, mmap=True)
    analyzer = retriever.index.analyzer
    q = "heart failure cardiac"
    res = raw.retrieve([analyzer.tokens(q)], k=3, show_progress=False)
    ours = retriever.search(q, 3)
    assert [retriever.index.doc_ids[i] for i in res.documents[0]] == [h.doc_id for h in ours]
    np.testing.assert_allclose(res.scores[0], [h.score for h in ours], rtol=1e-6)


def test_search_returns_text_and_source(retriever: BM25Retriever) -> None:
    hits = retriever.search("heart failure", 2)
    assert hits[0].doc_id == "b.txt"
    assert hits[0].source == "bm25" and hits[0].score > 0
    assert hits[0].text == DOCS["b.txt"]


def test_numpy_fallback_matches_numba(retriever: BM25Retriever) -> None:
    index = retriever.index
    tok, w = index.weighted_token_ids([("blood pressure", 1.0), ("exercise insulin", 0.5)])
    s1, i1 = index.topk_ids(tok, w, 5)
    s2, i2 = bm25mod._weighted_topk_numpy(tok, w, index.data, index.indices, index.indptr, index.n_docs, 5)
    keep = s2 > 0
    np.testing.assert_allclose(s1, s2[keep], rtol=1e-6)
    assert set(i1.tolist()) == set(i2[keep].tolist())


def test_weighted_equals_sum_of_separate_calls(retriever: BM25Retriever) -> None:
    index = retriever.index
    parts = [("heart failure", 1.0), ("blood pressure", 0.3), ("insulin sensitivity", 2.5)]
    tok, w = index.weighted_token_ids(parts)
    combined = index.score_vector(tok, w)
    separate = sum(wt * index.score_vector(*index.weighted_token_ids([(t, 1.0)])) for t, wt in parts)
    np.testing.assert_allclose(combined, separate, rtol=1e-5, atol=1e-6)
    hits = retriever.search_weighted(parts, k=7)
    order = [index.doc_ids[i] for i in np.argsort(-separate, kind="stable") if separate[i] > 0]
    assert [h.doc_id for h in hits] == order
    np.testing.assert_allclose([h.score for h in hits], np.sort(separate[separate > 0])[::-1], rtol=1e-5)


def test_plain_search_is_weight_one(retriever: BM25Retriever) -> None:
    a = retriever.search("heart failure blood", 5)
    b = retriever.search_weighted([("heart failure", 1.0), ("blood", 1.0)], 5)
    assert [(h.doc_id, round(h.score, 5)) for h in a] == [(h.doc_id, round(h.score, 5)) for h in b]


def test_empty_query_is_an_error(retriever: BM25Retriever) -> None:
    with pytest.raises(ToolArgumentError):
        retriever.search("   ", 5)
    with pytest.raises(ToolArgumentError):
        retriever.search("heart", 0)


def test_all_stopword_and_unknown_queries_give_no_hits(retriever: BM25Retriever) -> None:
    assert retriever.search("the of and to", 5) == []
    assert retriever.search("zzzqqq xylophone", 5) == []


def test_regex_metacharacters_are_plain_text(retriever: BM25Retriever) -> None:
    hits = retriever.search("C++ templates (a|b*) [regex]?", 3)
    assert hits and hits[0].doc_id == "d.txt"


def test_bad_weights_are_errors(retriever: BM25Retriever) -> None:
    for bad in ["1.0", float("nan"), -1.0, None, True]:
        with pytest.raises(ToolArgumentError):
            retriever.search_weighted([("heart", bad)], 3)  # type: ignore[list-item]


def test_other_version_is_corrupt(corpus: Corpus, retriever: BM25Retriever) -> None:
    meta_path = retriever.index.path / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["format_version"] = 999
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(IndexCorruptError, match="format version"):
        BM25Index.load(retriever.index.path)
    with pytest.raises(IndexCorruptError):
        BM25Retriever.open(corpus)
    # rebuild=True replaces it
    assert BM25Retriever.open(corpus, rebuild=True).search("insulin", 1)[0].doc_id in {"c.txt", "sub/f.txt"}


@pytest.mark.parametrize("damage", ["truncate_data", "garbage_meta", "drop_vocab", "short_tokens"])
def test_corrupted_files(corpus: Corpus, retriever: BM25Retriever, damage: str) -> None:
    path = retriever.index.path
    del retriever
    if damage == "truncate_data":
        p = path / "data.csc.index.npy"
        p.write_bytes(p.read_bytes()[:-20])
    elif damage == "garbage_meta":
        (path / "meta.json").write_text("{not json")
    elif damage == "drop_vocab":
        (path / "vocab.index.json").unlink()
    elif damage == "short_tokens":
        np.save(path / "tokens.npy", np.zeros(3, np.int32))
    with pytest.raises(IndexCorruptError):
        BM25Index.load(path)


def test_missing_index(corpus: Corpus) -> None:
    with pytest.raises(IndexMissingError):
        BM25Index.open(corpus, build_missing=False)


def _exploding(texts, after: int):  # type: ignore[no-untyped-def]
    for i, t in enumerate(texts):
        if i == after:
            raise KeyboardInterrupt
        yield t


def test_interrupted_build_leaves_no_loadable_index(corpus: Corpus, monkeypatch: pytest.MonkeyPatch) -> None:
    real = bm25_build.iter_texts
    monkeypatch.setattr(bm25_build, "iter_texts", lambda c, ids: _exploding(real(c, ids), 3))
    with pytest.raises(KeyboardInterrupt):
        build_corpus(corpus)
    target = corpus.state_dir / "bm25"
    assert not target.exists()
    assert not [p for p in corpus.state_dir.iterdir() if p.name.startswith(".bm25.building")]
    with pytest.raises(IndexMissingError):
        BM25Index.load(target)


def test_interrupted_rebuild_keeps_old_index(corpus: Corpus, monkeypatch: pytest.MonkeyPatch) -> None:
    old = BM25Retriever.open(corpus).search("heart failure", 3)
    real = bm25_build.iter_texts
    monkeypatch.setattr(bm25_build, "iter_texts", lambda c, ids: _exploding(real(c, ids), 2))
    with pytest.raises(KeyboardInterrupt):
        build_corpus(corpus)
    again = BM25Retriever.open(corpus).search("heart failure", 3)
    assert [h.doc_id for h in again] == [h.doc_id for h in old]


def test_stale_detection_and_rebuild(corpus: Corpus) -> None:
    BM25Retriever.open(corpus)
    p = corpus.root / "a.txt"
    time.sleep(0.01)
    p.write_text(DOCS["a.txt"] + " Zebrafish regenerate hearts.", encoding="utf-8")
    os.utime(p)
    with pytest.raises(StaleIndexError):
        BM25Retriever.open(corpus)
    r = BM25Retriever.open(corpus, rebuild=True)
    assert r.search("zebrafish", 3)[0].doc_id == "a.txt"


def test_changed_params_count_as_stale(corpus: Corpus) -> None:
    BM25Retriever.open(corpus)
    with pytest.raises(StaleIndexError, match="parameters"):
        BM25Retriever.open(corpus, params=BM25Params(k1=1.5, b=0.75))
    r = BM25Retriever.open(corpus, params=BM25Params(stemmer=None, stopwords=None), rebuild=True)
    assert r.index.params.stemmer is None
    assert r.search("the", 3)  # stopwords are indexed now


def test_no_text_store_reads_files(corpus: Corpus) -> None:
    r = BM25Retriever.open(corpus, params=BM25Params(store_chars=0))
    assert r.search("insulin sensitivity", 1)[0].text == DOCS["sub/f.txt"]


def test_store_truncates_long_docs(tmp_path: Path) -> None:
    root = tmp_path / "c"
    root.mkdir()
    (root / "long.txt").write_text("alpha " * 1000, encoding="utf-8")
    (root / "short.txt").write_text("beta gamma", encoding="utf-8")
    r = BM25Retriever.open(Corpus(root), params=BM25Params(store_chars=50))
    assert len(r.search("alpha", 1)[0].text) == 50


def test_numpy_backend_when_numba_is_missing(corpus: Corpus, monkeypatch: pytest.MonkeyPatch) -> None:
    ref = BM25Retriever.open(corpus)
    assert ref.index.backend == "numba"  # resolved at the first use (before numba "goes missing" below)
    import sleuth.retrieval.bm25_kernels as kernels

    monkeypatch.setattr(kernels, "_NUMBA", None)  # as if `import numba` failed
    r = BM25Retriever.open(corpus)
    assert r.index.backend == "numpy"
    for terms in ([("heart failure", 1.0)], [("blood pressure", 0.7), ("arteries insulin", 0.2)]):
        a = [(h.doc_id, round(h.score, 5)) for h in ref.search_weighted(terms, 5)]
        b = [(h.doc_id, round(h.score, 5)) for h in r.search_weighted(terms, 5)]
        assert a == b


def test_only_old_build_leftovers_are_swept(corpus: Corpus) -> None:
    state = corpus.state_dir
    young = state / ".bm25.building.young"
    old = state / ".bm25.building.old1"
    young.mkdir()
    old.mkdir()
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    BM25Retriever.open(corpus)
    assert young.exists() and not old.exists()  # a concurrent build's temp folder is left alone
