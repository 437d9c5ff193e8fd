"""Sharded BM25 on real data (issue #13): SciFact (5,183 documents) indexed once whole and as 1, 3 and 8 shards
(built by worker processes); for all 300 test queries the top 100 ids and scores (to 1e-6; in fact bit for bit)
equal the unsharded index's, for plain BM25 and for SIRA-weighted queries in both of SIRA's forms (the reference's
one expansion weight over the unigram and bigram tiers, and sleuth's per-phrase model weights), and the df tool
counts every expansion phrase alike."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import FIXTURES, shared_path

pytestmark = [pytest.mark.data, pytest.mark.slow]

SHARDS = (1, 3, 8)


@pytest.fixture(scope="module")
def scifact(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from sleuth.corpus import Corpus
    from sleuth.importers import import_corpus
    from sleuth.retrieval.bm25 import BM25Index

    data = shared_path("beir", "scifact")
    base = tmp_path_factory.mktemp("scifact")
    dest = base / "corpus"
    import_corpus(data / "corpus.jsonl", dest, progress=False)
    one = BM25Index.open(Corpus(dest))
    sharded = {n: BM25Index.open(Corpus(dest, state_dir=base / f"s{n}"), shards=n, workers=2) for n in SHARDS}
    queries = [json.loads(line) for line in (data / "queries.jsonl").open(encoding="utf-8")]
    return one, sharded, queries


def _sira(index):  # type: ignore[no-untyped-def]
    from sleuth.llm.fake import ScriptedModel
    from sleuth.retrieval.bm25 import BM25Retriever
    from sleuth.retrieval.sira import SiraParams, SiraRetriever

    bm25 = BM25Retriever(index)
    return {form: SiraRetriever(bm25, ScriptedModel(), params=SiraParams(form=form), add_bigrams=False)
            for form in ("reference", "sleuth")}


def _phrases(one, query: str, recorded: dict[str, list[str]]):  # type: ignore[no-untyped-def]
    """Expansion phrases for a query, as SIRA's model would propose them: the phrases the embedded model really
    proposed (for the queries recorded in tests/fixtures), else two-word phrases of the titles of the query's
    top three documents, with model weights 1.0, 0.6, 0.3, ..."""
    from sleuth.retrieval.bm25 import BM25Retriever
    from sleuth.retrieval.sira import WeightedPhrase

    texts = recorded.get(query)
    if texts is None:
        texts = []
        for h in BM25Retriever(one).search(query, 3):
            words = h.text.split("\n", 1)[0].split()
            texts += [" ".join(words[i:i + 2]) for i in range(0, min(len(words) - 1, 6), 2)]
    return [WeightedPhrase(text=t, weight=(1.0, 0.6, 0.3)[i % 3]) for i, t in enumerate(texts)]


def _same(a, b, what: str) -> int:  # type: ignore[no-untyped-def]
    """Same ids in the same order and scores within 1e-6; returns 1 when the scores are bit-identical."""
    assert [h.doc_id for h in a] == [h.doc_id for h in b], what
    diff = max((abs(x.score - y.score) for x, y in zip(a, b, strict=True)), default=0.0)
    assert diff <= 1e-6, (what, diff)
    return int(all(x.score == y.score for x, y in zip(a, b, strict=True)))


def test_sharded_rankings_equal_the_unsharded_index(scifact) -> None:  # type: ignore[no-untyped-def]
    from sleuth.retrieval.bm25 import BM25Retriever
    from sleuth.retrieval.bm25_shards import ShardedBM25Index
    from sleuth.retrieval.df import DocFrequency

    one, sharded, queries = scifact
    assert one.n_docs == 5183 and len(queries) == 300
    recorded = {r["query"]: r["proposed"] for r in
                json.loads((FIXTURES / "sira_scifact_phrases.json").read_text(encoding="utf-8"))}
    base_sira = _sira(one)
    expansions = [_phrases(one, q["text"], recorded) for q in queries]
    base = [BM25Retriever(one).search(q["text"], 100) for q in queries]
    for n, index in sharded.items():
        assert isinstance(index, ShardedBM25Index) and len(index.shards) == n and index.doc_ids == one.doc_ids
        assert np.array_equal(index.df, [one.doc_freq(i) for i in range(len(one.vocab))])
        sira, docfreq, base_df = _sira(index), DocFrequency(index), DocFrequency(one)
        exact = kept = checked = 0
        for q, ref, phrases in zip(queries, base, expansions, strict=True):
            text = q["text"]
            got = BM25Retriever(index).search(text, 100)
            assert len(got) == len(ref) > 0
            exact += _same(ref, got, f"{n} shards, plain: {text}")
            for form in ("reference", "sleuth"):
                d1 = base_sira[form].decide(text, phrases)
                d2 = sira[form].decide(text, phrases)
                assert [(d.kept, d.df, d.reason) for d in d1] == [(d.kept, d.df, d.reason) for d in d2], text
                kept += sum(d.kept for d in d1)
                exact += _same(base_sira[form].combine(text, d1, 100), sira[form].combine(text, d2, 100),
                               f"{n} shards, sira {form}: {text}")
            for p in phrases[:2]:
                assert base_df.df(p.text).df == docfreq.df(p.text).df, p.text
                checked += 1
        assert kept > 600 and checked > 500  # the weighted queries really carry expansions
        assert exact == 3 * len(queries)  # bit for bit, not only within 1e-6
