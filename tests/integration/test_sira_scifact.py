"""SIRA's reference form on real data: the SciFact index (5,183 documents) built with its bigram tier, the filter
against the reference's rule on phrases the embedded model really proposed for SciFact test queries
(``tests/fixtures/sira_scifact_phrases.json``, recorded from `sleuth eval beir --method sira --model local`), and a
weighted two-tier query whose scores are recomputed from the token stream."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import FIXTURES, shared_path

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def scifact(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from sleuth.corpus import Corpus
    from sleuth.importers import import_corpus
    from sleuth.retrieval.bm25 import BM25Index

    data = shared_path("beir", "scifact")
    dest = tmp_path_factory.mktemp("scifact") / "corpus"
    import_corpus(data / "corpus.jsonl", dest, progress=False)
    return BM25Index.open(Corpus(dest))


def proposals() -> list[dict]:  # type: ignore[type-arg]
    return json.loads((FIXTURES / "sira_scifact_phrases.json").read_text(encoding="utf-8"))


def reference_keeps(docfreq, phrase: str, ratio: float = 0.05) -> bool:  # type: ignore[no-untyped-def]
    """facebookresearch/sira ``filter_query_expansion``, written out: windows of 1..2 analyzed words, each counted
    on the token stream by the df tool (not by the bigram tier), kept when one has 0 < df <= int(N * ratio)."""
    index = docfreq.index
    words = index.analyzer.words(phrase)
    max_df = int(index.n_docs * ratio)
    for n in (1, 2):
        for i in range(len(words) - n + 1):
            df = docfreq.df(" ".join(words[i:i + n])).df
            if df > 0 and (max_df == 0 or df <= max_df):
                return True
    return False


def test_the_index_has_its_bigram_tier(scifact) -> None:  # type: ignore[no-untyped-def]
    from sleuth.retrieval.df import DocFrequency

    tier = scifact.bigrams
    assert scifact.n_docs == 5183 and tier is not None and len(tier) > 400_000
    assert scifact.meta["bigrams"]["n_bigrams"] == len(tier)
    docfreq = DocFrequency(scifact)
    for phrase in ("amyloid beta", "white matter", "randomized trial", "stem cells", "blood pressure"):
        toks = scifact.analyzer.tokens(phrase)
        [g] = tier.pair_ids([scifact.vocab[t] for t in toks])
        assert tier.df(g) == docfreq.df(phrase).df > 0, phrase


def test_filter_keeps_what_the_reference_keeps_on_real_phrases(scifact) -> None:  # type: ignore[no-untyped-def]
    from sleuth.llm.fake import ScriptedModel
    from sleuth.retrieval.bm25 import BM25Retriever
    from sleuth.retrieval.df import DocFrequency
    from sleuth.retrieval.sira import SiraParams, SiraRetriever, WeightedPhrase

    docfreq = DocFrequency(scifact)
    bm25 = BM25Retriever(scifact)
    ref = SiraRetriever(bm25, ScriptedModel([]), params=SiraParams(max_expansion_tokens=10_000))
    old = SiraRetriever(bm25, ScriptedModel([]), params=SiraParams(form="sleuth", max_phrases=10))
    n_phrases = n_ref = n_old = 0
    for rec in proposals():
        phrases = [WeightedPhrase(text=p) for p in rec["proposed"]]
        got = [d.kept for d in ref.decide(rec["query"], phrases)]
        assert got == [reference_keeps(docfreq, p.text) for p in phrases], rec["query"]
        n_phrases += len(phrases)
        n_ref += sum(got)
        n_old += sum(d.kept for d in old.decide(rec["query"], phrases))
    assert n_phrases >= 15
    assert n_ref > n_old  # the query's own words and sub-phrases count under the reference's rule


def test_a_weighted_two_tier_query_scores_the_reference_formula(scifact) -> None:  # type: ignore[no-untyped-def]
    from sleuth.llm.fake import ScriptedModel
    from sleuth.retrieval.bm25 import BM25Retriever
    from sleuth.retrieval.sira import SiraRetriever

    rec = max(proposals(), key=lambda r: len(r["proposed"]))

    sira = SiraRetriever(BM25Retriever(scifact), ScriptedModel([{"phrases": rec["proposed"]}]))
    res = sira.run(rec["query"], 10)
    assert res.stats["tiers"] == ["unigram", "bigram"] and len(res.hits) == 10
    # recompute each hit's score from the token stream: distinct unigrams and bigrams of the query, plus 0.5 x
    # those of the kept stems concatenated; unigram df from the vocabulary, bigram df and every tf counted here
    idx = scifact
    k1, b = idx.params.k1, idx.params.b
    lengths = np.diff(np.asarray(idx.doc_offsets))
    avg, n = float(lengths.mean()), idx.n_docs
    inv = {i: t for t, i in idx.vocab.items()}

    def terms(stems: list[str]) -> set[tuple[str, ...]]:
        known = [s for s in stems if s in idx.vocab]
        return {(s,) for s in known} | {tuple(stems[i:i + 2]) for i in range(len(stems) - 1)
                                        if stems[i] in idx.vocab and stems[i + 1] in idx.vocab}

    stream = np.asarray(idx.tokens)
    starts = np.zeros(len(stream) + 1, dtype=bool)
    starts[np.asarray(idx.doc_offsets)] = True

    def stream_df(term: tuple[str, ...]) -> int:
        """Documents whose token stream holds the bigram (counted here, not read from the tier)."""
        a, b_ = idx.vocab[term[0]], idx.vocab[term[1]]
        at = np.flatnonzero((stream[:-1] == a) & (stream[1:] == b_) & ~starts[1:-1])
        return len(np.unique(np.searchsorted(np.asarray(idx.doc_offsets), at, side="right")))

    def score(term: tuple[str, ...], d: int) -> float:
        toks = [inv[int(t)] for t in idx.tokens[idx.doc_offsets[d]: idx.doc_offsets[d + 1]]]
        tf = sum(1 for i in range(len(toks) - len(term) + 1) if tuple(toks[i:i + len(term)]) == term)
        if not tf:
            return 0.0
        df = idx.doc_freq(idx.vocab[term[0]]) if len(term) == 1 else stream_df(term)
        return math.log(1 + (n - df + 0.5) / (df + 0.5)) * tf / (tf + k1 * (1 - b + b * lengths[d] / avg))

    q_terms = terms(idx.analyzer.tokens(rec["query"]))
    e_terms = terms([t for d in res.kept for t in d.tokens])
    for h in res.hits:
        d = idx.position(h.doc_id)
        want = sum(score(t, d) for t in q_terms) + 0.5 * sum(score(t, d) for t in e_terms)
        assert h.score == pytest.approx(want, rel=1e-4), h.doc_id


def test_fixture_is_real_model_output() -> None:
    recs = proposals()
    assert recs and all({"query_id", "query", "proposed", "model"} <= set(r) for r in recs)
    assert Path(FIXTURES / "sira_scifact_phrases.json").stat().st_size > 200
