"""The bigram tier of the BM25 index: the reference's statistics computed by hand, a brute-force count, lookups,
the tier added on demand to an index that predates it, and the df tool unchanged by it."""

from __future__ import annotations

import json
import math
from collections import Counter
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from sleuth.corpus import Corpus
from sleuth.retrieval.bm25 import BM25Index, BM25Retriever
from sleuth.retrieval.bm25_ngrams import BIGRAM_FILES, ensure_bigrams, targets
from sleuth.retrieval.df import DocFrequency
from tests.conftest import MEDICAL_DOCS

# words the analyzer keeps as they are (no stopword, no stemming change), so the statistics can be done by hand
TINY = {
    "d0.txt": "alpha beta gamma",
    "d1.txt": "beta alpha beta alpha delta",
    "d2.txt": "gamma delta",
    "d3.txt": "alpha gamma beta beta",
}
K1, B = 0.9, 0.4  # the index's defaults (BM25Params)


def lucene(df: int, tf: int, dl: int, n: int, avgdl: float) -> float:
    """BM25 "lucene" as the reference's bm25x computes it (scoring.rs: Method::Lucene)."""
    idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
    return idf * tf / (tf + K1 * (1 - B + B * dl / avgdl))


def hand_bigrams(docs: dict[str, list[str]]) -> tuple[dict[tuple[str, str], Counter[str]], dict[str, int]]:
    """{bigram: Counter(doc -> tf)} and doc lengths (in unigrams), from token lists."""
    grams: dict[tuple[str, str], Counter[str]] = {}
    for d, toks in docs.items():
        for a, b in pairwise(toks):
            grams.setdefault((a, b), Counter())[d] += 1
    return grams, {d: len(t) for d, t in docs.items()}


@pytest.fixture()
def tiny(make_corpus) -> BM25Index:
    return BM25Index.open(Corpus(make_corpus(TINY)))


def test_a_hand_computed_score(tiny: BM25Index) -> None:
    # "alpha beta" is in d0 (tf 1) and d1 (tf 1): df 2 of N = 4; d0 has 3 tokens, the mean is (3+5+2+4)/4 = 3.5.
    # idf = ln(1 + 2.5/2.5) = ln 2; tf part = 1 / (1 + 0.9 * (0.6 + 0.4 * 3/3.5)) = 0.540958
    tier = tiny.bigrams
    assert tier is not None
    [g] = tier.pair_ids([tiny.vocab["alpha"], tiny.vocab["beta"]])
    assert tier.df(g) == 2
    s, e = int(tier.indptr[g]), int(tier.indptr[g + 1])
    got = dict(zip(np.asarray(tier.indices[s:e]).tolist(), np.asarray(tier.data[s:e]).tolist(), strict=True))
    assert got[tiny.doc_ids.index("d0.txt")] == pytest.approx(math.log(2) * 0.540958, rel=1e-5)  # 0.374963


def test_every_bigram_scores_the_reference_formula(tiny: BM25Index) -> None:
    grams, lengths = hand_bigrams({d: t.split() for d, t in TINY.items()})
    n, avg = len(TINY), sum(lengths.values()) / len(TINY)
    tier = tiny.bigrams
    assert tier is not None and len(tier) == len(grams) == 8  # d1's "beta alpha" twice is one bigram, tf 2
    for (a, b), tfs in grams.items():
        [g] = tier.pair_ids([tiny.vocab[a], tiny.vocab[b]])
        s, e = int(tier.indptr[g]), int(tier.indptr[g + 1])
        got = {tiny.doc_ids[int(d)]: float(x) for d, x in zip(tier.indices[s:e], tier.data[s:e], strict=True)}
        want = {d: lucene(len(tfs), tf, lengths[d], n, avg) for d, tf in tfs.items()}
        assert got == pytest.approx(want, rel=1e-5), (a, b)
    assert tiny.meta["bigrams"] == {"max_n": 2, "vocab_size": 4, "n_bigrams": 8, "nnz": 9}


def test_document_lengths_stay_unigram_lengths(tiny: BM25Index) -> None:
    """The reference's invariant: the tier does not change dl or avgdl (the unigram scores are bm25s's)."""
    lengths = np.diff(np.asarray(tiny.doc_offsets)).tolist()
    assert lengths == [3, 5, 2, 4] and tiny.meta["n_tokens"] == 14


def test_tier_matches_a_brute_force_count(make_corpus) -> None:
    index = BM25Index.open(Corpus(make_corpus(MEDICAL_DOCS)))
    docs = {d: index.analyzer.tokens(Corpus(index.corpus.root).read_text(d)) for d in index.doc_ids}
    grams, _ = hand_bigrams(docs)
    tier = index.bigrams
    assert tier is not None and len(tier) == len(grams)
    for (a, b), tfs in grams.items():
        [g] = tier.pair_ids([index.vocab[a], index.vocab[b]])
        assert tier.df(g) == len(tfs)
    # no bigram spans two documents: the last word of a.txt and the first of b.txt
    last_a, first_b = docs["a.txt"][-1], docs["b.txt"][0]
    if (last_a, first_b) not in grams:
        assert tier.pair_ids([index.vocab[last_a], index.vocab[first_b]]) == []


def test_lookups_skip_unknown_words(tiny: BM25Index) -> None:
    v = tiny.vocab
    tier = tiny.bigrams
    assert tier is not None
    assert tier.pair_ids([v["gamma"], v["alpha"]]) == []  # both known, never adjacent
    # an unknown word (-1) next to a known one never matches a real bigram (-1 * V + b or a * V - 1 are keys of
    # other pairs: "alpha" followed by the word with the last id, say)
    for a in range(4):
        assert tier.pair_ids([a, -1]) == [] and tier.pair_ids([-1, a]) == []
    uni, bi = targets(tiny, ["alpha", "beta", "zzz", "alpha", "beta"], ("unigram", "bigram"))
    assert uni == [v["alpha"], v["beta"]] and len(bi) == 1  # distinct, first-seen order


def test_tier_topk_adds_both_tiers(tiny: BM25Index) -> None:
    tier = tiny.bigrams
    assert tier is not None
    uni = np.array([tiny.vocab["alpha"]], np.int32)
    bi = np.array(tier.pair_ids([tiny.vocab["alpha"], tiny.vocab["beta"]]), np.int32)
    one = np.ones(1, np.float32)
    both = tiny.tier_score_vector(uni, one, bi, one)
    alone = tiny.score_vector(uni, one)
    scores, idx = tiny.tier_topk(uni, one, bi, one, 4)
    assert dict(zip(idx.tolist(), scores.tolist(), strict=True)) == pytest.approx(
        {i: float(both[i]) for i in range(4) if both[i] > 0})
    d0 = tiny.doc_ids.index("d0.txt")
    assert both[d0] == pytest.approx(alone[d0] + math.log(2) * 0.540958, rel=1e-5)


def test_numpy_fallback_matches_numba(tiny: BM25Index) -> None:
    from sleuth.retrieval.bm25 import _tier_topk_numpy

    tier = tiny.bigrams
    assert tier is not None
    tok, w = np.arange(4, dtype=np.int32), np.full(4, 0.7, np.float32)
    btok, bw = np.arange(len(tier), dtype=np.int32), np.full(len(tier), 0.3, np.float32)
    s1, i1 = tiny.tier_topk(tok, w, btok, bw, 4)
    s2, i2 = _tier_topk_numpy(tok, w, tiny.data, tiny.indices, tiny.indptr, btok, bw, tier.data, tier.indices,
                              tier.indptr, tiny.n_docs, 4)
    assert i1.tolist() == i2.tolist() and s1 == pytest.approx(s2, rel=1e-6)


def test_the_tier_is_added_on_demand_to_an_index_without_one(make_corpus, tmp_path: Path) -> None:
    corpus = Corpus(make_corpus(TINY))
    old = BM25Index.open(corpus, bigrams=False)
    assert old.bigrams is None and "bigrams" not in old.meta
    assert not any((old.path / f).exists() for f in BIGRAM_FILES.values())
    unigram_files = {p.name: p.read_bytes() for p in old.path.iterdir() if p.name != "meta.json"}
    new = ensure_bigrams(old)
    assert new.bigrams is not None and len(new.bigrams) == 8
    assert new.status.endswith("bigram tier added on demand")
    assert {n: (new.path / n).read_bytes() for n in unigram_files} == unigram_files  # the unigram index is as it was
    meta = json.loads((new.path / "meta.json").read_text())
    assert set(BIGRAM_FILES.values()) <= set(meta["checksums"])
    # identical to a tier built with the index
    fresh = BM25Index.open(Corpus(make_corpus(TINY, "again")))
    assert fresh.bigrams is not None
    assert np.array_equal(new.bigrams.keys, fresh.bigrams.keys) and np.array_equal(new.bigrams.data,
                                                                                    fresh.bigrams.data)
    # a plain open does not count an index without the tier as stale; a later open loads the added tier, checked
    again = BM25Index.open(corpus, build_missing=False)
    assert again.status == "up to date" and again.bigrams is not None
    assert ensure_bigrams(again) is again


def test_sira_without_permission_to_build_says_it_used_unigrams(make_corpus) -> None:
    from sleuth.llm.fake import ScriptedModel
    from sleuth.retrieval.sira import SiraRetriever

    corpus = Corpus(make_corpus(TINY))
    bm25 = BM25Retriever(BM25Index.open(corpus, bigrams=False))
    sira = SiraRetriever(bm25, ScriptedModel([{"phrases": ["delta"]}]), add_bigrams=False)
    res = sira.run("alpha beta", 4)
    assert res.stats["tiers"] == ["unigram"] and res.stats["max_n"] == 1
    assert "no bigram tier" in res.stats["tier_note"] and "sleuth index" in res.stats["tier_note"]
    assert bm25.index.bigrams is None  # nothing was written


def test_df_tool_is_unchanged_by_the_tier(make_corpus) -> None:
    """The df tool counts phrases on the token stream, as before; with and without the tier: same answers."""
    from sleuth.tools.df import DfArgs, df_tool

    with_tier = DocFrequency(BM25Index.open(Corpus(make_corpus(MEDICAL_DOCS, "a"))))
    without = DocFrequency(BM25Index.open(Corpus(make_corpus(MEDICAL_DOCS, "b")), bigrams=False))
    assert with_tier.index.bigrams is not None and without.index.bigrams is None
    terms = ["heart failure", "blood pressure", "cardiac output", "heart", "failure of insulin", "the of",
             "zebrafish", "arteries harden with age", "blood heart"]
    assert [r.model_dump() for r in with_tier.many(terms)] == [r.model_dump() for r in without.many(terms)]
    a = df_tool(with_tier).fn(DfArgs(terms=terms))
    b = df_tool(without).fn(DfArgs(terms=terms))
    assert a.text == b.text and a.data == b.data
    # and a 2-token phrase's df is the tier's df of that bigram
    idx = with_tier.index
    assert idx.bigrams is not None
    for phrase in ("heart failure", "blood pressure", "cardiac output"):
        toks = idx.analyzer.tokens(phrase)
        [g] = idx.bigrams.pair_ids([idx.vocab[t] for t in toks])
        assert idx.bigrams.df(g) == with_tier.df(phrase).df
