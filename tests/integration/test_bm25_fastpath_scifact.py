"""The one-query numpy path on real data (#18): on SciFact (5,183 documents), every test and train query (1,109)
gets bit-identical scores and the same ranked list from the numpy and the numba kernels, on the unigram tier and
on both tiers; phrase document frequencies agree; and `sleuth search --json` returns what the library returns."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import shared_path

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def scifact(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from sleuth.corpus import Corpus
    from sleuth.importers import import_corpus
    from sleuth.retrieval.bm25 import BM25Index

    data = shared_path("beir", "scifact")
    dest = tmp_path_factory.mktemp("scifact") / "corpus"
    import_corpus(data / "corpus.jsonl", dest, progress=False)
    BM25Index.open(Corpus(dest))
    return data, dest


def queries(data: Path) -> list[str]:
    return [json.loads(line)["text"] for name in ("queries.jsonl", "queries_train.jsonl")
            for line in (data / name).open(encoding="utf-8")]


def test_numpy_equals_numba_on_every_scifact_query(scifact: tuple[Path, Path]) -> None:
    pytest.importorskip("numba")
    from sleuth.corpus import Corpus
    from sleuth.retrieval.bm25 import BM25Index
    from sleuth.retrieval.bm25_ngrams import ensure_bigrams

    data, dest = scifact
    a = ensure_bigrams(BM25Index.open(Corpus(dest)))
    b = BM25Index.load(a.path, backend="numpy")
    assert a.backend == "numba" and b.backend == "numpy" and a.bigrams is not None
    qs = queries(data)
    assert len(qs) == 1109
    ties = 0
    for q in qs:
        tok, w = a.weighted_token_ids([(q, 1.0)])
        for k in (10, 100, 1000):
            s1, i1 = a.topk_ids(tok, w, k)
            s2, i2 = b.topk_ids(tok, w, k)
            assert i1.tolist() == i2.tolist() and s1.tobytes() == s2.tobytes(), (q, k)
            ties += len(set(s1.tolist())) < len(s1)
        btok = np.asarray(sorted(set(a.bigrams.pair_ids(a.token_ids(q)))), np.int32)
        bw = np.full(len(btok), 0.5, np.float32)
        s1, i1 = a.tier_topk(tok, w, btok, bw, 20)
        s2, i2 = b.tier_topk(tok, w, btok, bw, 20)
        assert i1.tolist() == i2.tolist() and s1.tobytes() == s2.tobytes(), q
    assert ties > 100  # the lists do hold ties, so the order rule is exercised


def test_df_counts_agree(scifact: tuple[Path, Path]) -> None:
    from sleuth.corpus import Corpus
    from sleuth.retrieval.bm25 import BM25Index
    from sleuth.retrieval.df import DocFrequency

    _, dest = scifact
    a = DocFrequency(BM25Index.open(Corpus(dest)))
    b = DocFrequency(BM25Index.open(Corpus(dest), backend="numpy"))
    phrases = ["white matter", "amyloid beta", "randomized controlled trial", "stem cells", "microglia", "t cell"]
    assert [r.df for r in a.many(phrases)] == [r.df for r in b.many(phrases)]
    assert all(r.df > 0 for r in b.many(phrases))


def test_cli_search_equals_the_library(scifact: tuple[Path, Path]) -> None:
    from sleuth.corpus import Corpus
    from sleuth.retrieval import get_retriever

    data, dest = scifact
    lib = get_retriever("bm25", Corpus(dest))  # numba, in this process
    for q in queries(data)[:5]:
        out = subprocess.run([sys.executable, "-m", "sleuth.cli.main", "search", q, "-c", str(dest), "--k", "20",
                              "--json"], capture_output=True, text=True, check=True).stdout
        cli = [(h["doc_id"], h["score"]) for h in json.loads(out)["hits"]]
        assert cli == [(h.doc_id, h.score) for h in lib.search(q, 20)], q
