"""Sharded BM25 (issue #13): scores and order equal to one index on a small corpus, the df tool and staleness on a
sharded index, and the bad inputs (a shard count of 0 or above the document count, a shard missing, from another
build, built with other parameters, or not recorded)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import MEDICAL_DOCS

DOCS = {**MEDICAL_DOCS, "g.txt": "Blood pressure and heart failure: blood tests of heart patients.",
        "h.txt": "heart heart heart", "i.txt": "", "sub/j.txt": "Insulin and blood glucose in heart failure."}


def _open(root: Path, state: Path, **kw):  # type: ignore[no-untyped-def]
    from sleuth.corpus import Corpus
    from sleuth.retrieval.bm25 import BM25Index

    kw.setdefault("workers", 1)  # in this process: spawning workers costs seconds (one test uses two processes)
    return BM25Index.open(Corpus(root, state_dir=state), **kw)


@pytest.fixture()
def pair(make_corpus, tmp_path: Path):  # type: ignore[no-untyped-def]
    root = make_corpus(DOCS)
    return root, _open(root, tmp_path / "one"), _open(root, tmp_path / "three", shards=3, workers=1)


def test_sharded_equals_one_index(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from sleuth.retrieval.bm25 import BM25Retriever
    from sleuth.retrieval.bm25_shards import ShardedBM25Index

    root, one, in_process = pair
    sharded = _open(root, tmp_path / "procs", shards=3, workers=2)  # the same build by two worker processes
    assert "3 shards by 2 worker processes" in sharded.status and "1 worker process" in in_process.status
    for a, b in zip(in_process.shards, sharded.shards, strict=True):
        assert a.data.tobytes() == b.data.tobytes() and a.tokens.tobytes() == b.tokens.tobytes()
    assert isinstance(sharded, ShardedBM25Index) and len(sharded.shards) == 3 and not one.sharded
    assert sharded.doc_ids == one.doc_ids and sharded.vocab == one.vocab
    assert [s.n_docs for s in sharded.shards] == [4, 3, 3]
    assert len(sharded.bigrams) == len(one.bigrams) and sharded.meta["n_tokens"] == one.meta["n_tokens"]
    for q in ("heart failure", "blood pressure insulin", "heart", "arteries veins exercise", "nothing-here"):
        a = BM25Retriever(one).search(q, 10)
        b = BM25Retriever(sharded).search(q, 10)
        assert [(h.doc_id, h.score, h.text) for h in a] == [(h.doc_id, h.score, h.text) for h in b], q
        tok, w = one.weighted_token_ids([(q, 1.0)])
        btok = np.asarray(one.bigrams.pair_ids(one.token_ids(q)), np.int32)
        bw = np.full(len(btok), 0.5, np.float32)
        s1, i1 = one.tier_topk(tok, w, btok, bw, 10)
        s2, i2 = sharded.tier_topk(tok, w, btok, bw, 10)
        assert i1.tolist() == i2.tolist() and s1.tobytes() == s2.tobytes(), q
        assert one.tier_score_vector(tok, w, btok, bw).tobytes() == sharded.tier_score_vector(tok, w, btok,
                                                                                               bw).tobytes()
    # "heart" ties (g.txt and j.txt score alike only if the tie rule is the global doc index): the whole list
    tok, w = one.weighted_token_ids([("blood", 1.0)])
    assert one.topk_ids(tok, w, 3)[1].tolist() == sharded.topk_ids(tok, w, 3)[1].tolist()


def test_df_tool_on_a_sharded_index(pair) -> None:  # type: ignore[no-untyped-def]
    from sleuth.retrieval.df import DocFrequency

    _, one, sharded = pair
    for term in ("heart failure", "blood pressure", "heart", "blood", "insulin signalling", "arteries", "zebra"):
        a, b = DocFrequency(one).df(term), DocFrequency(sharded).df(term)
        assert (a.df, a.method, a.n_docs) == (b.df, b.method, b.n_docs), term
    assert DocFrequency(sharded).df("heart failure").df == 3  # b.txt, g.txt, j.txt: in two different shards


def test_stale_and_reopened(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from sleuth.errors import StaleIndexError
    from sleuth.retrieval.bm25_shards import ShardedBM25Index

    root, _, _ = pair
    again = _open(root, tmp_path / "three")  # no shards=: the layout on disk
    assert isinstance(again, ShardedBM25Index) and again.status == "up to date"
    (root / "k.txt").write_text("a new heart document", encoding="utf-8")
    with pytest.raises(StaleIndexError, match=r"sharded BM25 index .* is stale: the corpus changed"):
        _open(root, tmp_path / "three", rebuild=False)
    fresh = _open(root, tmp_path / "three", rebuild=True)
    assert isinstance(fresh, ShardedBM25Index) and "k.txt" in fresh.doc_ids and len(fresh.shards) == 3
    assert fresh.status.startswith("rebuilt") and "3 shards" in fresh.status
    resharded = _open(root, tmp_path / "three", shards=2, rebuild=True)
    assert len(resharded.shards) == 2
    with pytest.raises(StaleIndexError, match="it has 2 shards, 4 were asked for"):
        _open(root, tmp_path / "three", shards=4, rebuild=False)


@pytest.mark.parametrize("count", [0, -1, True, 2.5])
def test_bad_shard_counts(make_corpus, tmp_path: Path, count) -> None:  # type: ignore[no-untyped-def]
    from sleuth.errors import ShardCountError

    root = make_corpus(DOCS)
    with pytest.raises(ShardCountError, match="whole number >= 1"):
        _open(root, tmp_path / "s", shards=count)
    assert not (tmp_path / "s" / "bm25").exists()


def test_more_shards_than_documents(make_corpus, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from sleuth.errors import ShardCountError

    root = make_corpus({"a.txt": "one", "b.txt": "two"})
    with pytest.raises(ShardCountError, match="3 shards for 2 documents"):
        _open(root, tmp_path / "s", shards=3)
    assert not (tmp_path / "s" / "bm25" / "meta.json").exists()


def test_a_missing_shard_is_named(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from sleuth.errors import ShardMissingError
    from sleuth.retrieval.bm25_shards import ShardedBM25Index

    shutil.rmtree(tmp_path / "three" / "bm25" / "shards" / "001")
    with pytest.raises(ShardMissingError, match=r"shard 001 of the sharded BM25 index at .* is missing") as e:
        ShardedBM25Index.load(tmp_path / "three" / "bm25")
    assert "--rebuild" in e.value.hint
    root, _, _ = pair
    rebuilt = _open(root, tmp_path / "three", rebuild=True)  # a missing shard counts as corrupt: rebuilt
    assert len(rebuilt.shards) == 3 and rebuilt.status.startswith("rebuilt (ShardMissingError)")


def test_a_shard_from_another_build_is_named(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from sleuth.errors import ShardMismatchError
    from sleuth.retrieval.bm25_shards import ShardedBM25Index

    root, _, _ = pair
    _open(root, tmp_path / "other", shards=3)
    dest = tmp_path / "three" / "bm25" / "shards" / "002"
    shutil.rmtree(dest)
    shutil.copytree(tmp_path / "other" / "bm25" / "shards" / "002", dest)
    with pytest.raises(ShardMismatchError, match=r"shard 002 \(.*\) is from another build"):
        ShardedBM25Index.load(tmp_path / "three" / "bm25")
    one_dir = tmp_path / "one" / "bm25"  # an unsharded index put in place of a shard
    shutil.rmtree(dest)
    shutil.copytree(one_dir, dest)
    with pytest.raises(ShardMismatchError, match=r"shard 002 .* its build is none \(an unsharded index\)"):
        ShardedBM25Index.load(tmp_path / "three" / "bm25")


def test_a_shard_with_other_parameters_is_named(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from sleuth.errors import ShardMismatchError
    from sleuth.retrieval.bm25_shards import ShardedBM25Index

    meta_path = tmp_path / "three" / "bm25" / "shards" / "000" / "meta.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["params"]["k1"] = 1.5
    meta["params"]["stemmer"] = None
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(ShardMismatchError, match=r"shard 000 .* different analyzer or BM25 parameters \(k1, stemmer\)"):
        ShardedBM25Index.load(tmp_path / "three" / "bm25")


def test_an_unrecorded_shard_is_named(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from sleuth.errors import ShardMismatchError
    from sleuth.retrieval.bm25_shards import ShardedBM25Index

    shards = tmp_path / "three" / "bm25" / "shards"
    shutil.copytree(shards / "002", shards / "003")
    with pytest.raises(ShardMismatchError, match="shard folders its build did not record: 003"):
        ShardedBM25Index.load(tmp_path / "three" / "bm25")


def test_a_damaged_root_statistic_is_corrupt(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from sleuth.errors import IndexCorruptError
    from sleuth.retrieval.bm25_shards import ShardedBM25Index
    from sleuth.retrieval.index_check import VerifiedCache

    df_path = tmp_path / "three" / "bm25" / "df.npy"
    df = np.load(df_path)
    df[0] += 1  # still in range: only the checksum sees it
    np.save(df_path, df)
    with pytest.raises(IndexCorruptError, match=r"df\.npy is corrupt: its checksum differs"):
        ShardedBM25Index.load(tmp_path / "three" / "bm25", cache=VerifiedCache(None))


def test_no_bigrams_is_refused(make_corpus, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from sleuth.errors import ConfigError

    with pytest.raises(ConfigError, match="always has its bigram tier"):
        _open(make_corpus(DOCS), tmp_path / "s", shards=2, bigrams=False)


def test_cli_index_search_df_and_grep_on_shards(app, make_corpus) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    root = str(make_corpus(DOCS))
    run = CliRunner().invoke
    r = run(app, ["index", root, "--shards", "3", "--workers", "1", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["shards"] == 3 and out["documents"] == 10 and out["status"].startswith("built: 3 shards")
    r = run(app, ["search", "heart failure", "-c", root, "--json", "--k", "3"])
    assert r.exit_code == 0, r.output
    assert [h["doc_id"] for h in json.loads(r.output)["hits"]][:1] == ["b.txt"]
    r = run(app, ["df", "heart failure", "-c", root, "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["terms"][0]["df"] == 3, r.output
    r = run(app, ["index", root, "--json"])  # no --shards: the layout on disk is kept
    assert json.loads(r.output)["shards"] == 3 and json.loads(r.output)["status"] == "up to date"
    r = run(app, ["index", root, "--shards", "0", "--json"])
    assert r.exit_code == 2 and json.loads(r.output)["error"] == "ShardCountError"
    one = run(app, ["grep", "heart", "-c", root, "--json"])
    many = run(app, ["grep", "heart", "-c", root, "--json", "--shards", "4"])
    assert one.exit_code == many.exit_code == 0
    a, b = json.loads(one.output), json.loads(many.output)
    a.pop("seconds"), b.pop("seconds")
    assert a == b and a["total_matches"] >= 5


def test_fresh_retrievers_keep_a_sharded_index_fresh(pair, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from sleuth.corpus import Corpus
    from sleuth.retrieval.bm25_shards import ShardedBM25Index
    from sleuth.retrieval.fresh import FreshRetrievers

    root, _, _ = pair
    fresh = FreshRetrievers.open(Corpus(root, state_dir=tmp_path / "three"), ["bm25"], workers=1)
    retriever, _ = fresh.lookup("bm25")
    assert isinstance(retriever.index, ShardedBM25Index)  # type: ignore[union-attr]
    (root / "zz.txt").write_text("zebra heart", encoding="utf-8")
    retriever, note = fresh.lookup("bm25")
    index = retriever.index  # type: ignore[union-attr]
    assert isinstance(index, ShardedBM25Index) and len(index.shards) == 3 and "zz.txt" in index.doc_ids
    assert note and "3 shards" in note
    assert [h.doc_id for h in retriever.search("zebra", 3)] == ["zz.txt"]  # type: ignore[union-attr]


def test_local_statistics_would_not_do(pair, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The premise of the equality tests: shards scored with their own N, avgdl and df rank differently, so the
    tests above would catch a shard that missed the global statistics."""
    from sleuth.retrieval import bm25_build
    from sleuth.retrieval.bm25 import BM25Retriever

    root, one, _ = pair
    real = bm25_build._score_matrix
    monkeypatch.setattr(bm25_build, "_score_matrix", lambda tok, off, v, params, stats=None: real(tok, off, v, params))
    local = _open(root, tmp_path / "local", shards=3)
    differ = [q for q in ("heart failure", "blood pressure insulin", "arteries exercise")
              if [(h.doc_id, h.score) for h in BM25Retriever(one).search(q, 10)]
              != [(h.doc_id, h.score) for h in BM25Retriever(local).search(q, 10)]]
    assert len(differ) == 3


def test_a_filter_mask_on_a_sharded_index_equals_one_index(pair) -> None:  # type: ignore[no-untyped-def]
    """A metadata filter's mask (one boolean per document of the whole index) gives the same top k on shards."""
    _, one, sharded = pair
    mask = np.array([i % 2 == 0 for i in range(one.n_docs)], dtype=bool)
    for q in ("heart failure", "blood pressure insulin", "heart"):
        tok, w = one.weighted_token_ids([(q, 1.0)])
        s1, i1 = one.topk_ids(tok, w, 5, mask)
        s2, i2 = sharded.topk_ids(tok, w, 5, mask)
        assert i1.tolist() == i2.tolist() and s1.tobytes() == s2.tobytes() and all(mask[i1]), q
        btok = np.asarray(one.bigrams.pair_ids(one.token_ids(q)), np.int32)
        bw = np.full(len(btok), 0.5, np.float32)
        t1, j1 = one.tier_topk(tok, w, btok, bw, 5, mask)
        t2, j2 = sharded.tier_topk(tok, w, btok, bw, 5, mask)
        assert j1.tolist() == j2.tolist() and t1.tobytes() == t2.tobytes(), q
    from sleuth.errors import ConfigError

    with pytest.raises(ConfigError, match="filter mask"):
        sharded.topk_ids(*one.weighted_token_ids([("heart", 1.0)]), 5, np.ones(3, dtype=bool))
