"""SIRA query side in the reference's form (the default), with a scripted model: the filter keeps what
facebookresearch/sira's ``filter_query_expansion`` keeps (cases computed by hand), the scores are its
``search_with_expansion`` formula computed by hand, and the bad inputs of issue #14."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from sleuth.corpus import Corpus
from sleuth.llm.fake import ScriptedModel
from sleuth.retrieval.bm25 import BM25Retriever
from sleuth.retrieval.sira import FORMS, SiraParams, SiraRetriever
from sleuth.tracing.tracer import MemoryTracer

# N = 10. heart: 7 docs, blood: 7, diseas: 6, "heart diseas": 6, "blood heart": 1 (b0 only), kinas: 3, mice: 1.
FILTER_DOCS = {f"h{i}.txt": "Heart disease and blood pressure in adults." for i in range(6)}
FILTER_DOCS |= {
    "b0.txt": "Blood heart rhythm.",
    "x0.txt": "Kinase inhibitors slow tumour growth.",
    "x1.txt": "A kinase trial in mice.",
    "x2.txt": "Kinase assays.",
}
# words the analyzer keeps as they are, for scores done by hand
TINY = {
    "d0.txt": "alpha beta gamma",
    "d1.txt": "beta alpha beta alpha delta",
    "d2.txt": "gamma delta",
    "d3.txt": "alpha gamma beta beta",
}
K1, B = 0.9, 0.4


def sira_over(root, script, **params) -> SiraRetriever:  # type: ignore[no-untyped-def]
    return SiraRetriever(BM25Retriever.open(Corpus(root)), ScriptedModel(list(script)), params=SiraParams(**params))


def test_defaults_are_the_reference_values() -> None:
    p = SiraParams()
    assert (p.form, p.filter, p.tiers, p.use_model_weights, p.weight, p.max_df_ratio) == (
        "reference", "reference", ("unigram", "bigram"), False, 0.5, 0.05)
    s = SiraParams(form="sleuth")
    assert (s.filter, s.tiers, s.use_model_weights, s.weight) == ("sleuth", ("unigram",), True, 0.2)
    mixed = SiraParams(form="sleuth", tiers=("bigram", "unigram"), weight=None)  # None: the form's value
    assert mixed.tiers == ("unigram", "bigram") and mixed.filter == "sleuth" and mixed.weight == 0.2
    assert SiraParams(**SiraParams(form="sleuth").model_dump()) == SiraParams(form="sleuth")
    assert set(FORMS) == {"reference", "sleuth"}
    with pytest.raises(ValueError):
        SiraParams(tiers=())
    with pytest.raises(ValueError):
        SiraParams(tiers=("trigram",))  # type: ignore[arg-type]


def test_filter_keeps_what_the_reference_keeps(make_corpus) -> None:
    """max_df = int(10 * 1/3) = 3. Kept when some 1..2-gram has 0 < df <= 3, whatever the query says."""
    phrases = ["blood heart", "heart blood", "heart disease", "kinase", "kinase tumour mice", "kinase",
               "the and of", "zebrafish fins", "mice", "disease heart"]
    s = sira_over(make_corpus(FILTER_DOCS), [{"phrases": phrases}], max_df_ratio=1 / 3, max_phrases=10)
    res = s.run("kinase growth", 9)
    d = {x.phrase: x for x in res.decisions}
    assert len(res.decisions) == len(phrases)
    # by hand, with the reference's rule
    assert d["blood heart"].kept and d["blood heart"].ngram == "blood heart" and d["blood heart"].df == 1
    assert not d["heart blood"].kept and d["heart blood"].df == 7  # heart 7, blood 7, "heart blood" 0
    assert not d["heart disease"].kept and "too common" in d["heart disease"].reason
    assert d["kinase"].kept and d["kinase"].df == 3 and "<= int(0.333333 x 10) = 3" in d["kinase"].reason  # df == max
    # kept: blood heart, kinase twice (no dedup), kinase tumour mice, mice
    assert [x.kept for x in res.decisions].count(True) == 5
    assert d["kinase tumour mice"].kept and d["kinase tumour mice"].ngram == "kinas"  # n = 1 first, as the reference
    assert d["mice"].kept and d["mice"].df == 1
    assert d["the and of"].reason.startswith("no indexable words")
    assert d["zebrafish fins"].reason.startswith("absent from the corpus")
    assert not d["disease heart"].kept
    # the words of the query do not matter ("kinase" is in it), nor repeats
    assert res.stats["filter"] == "reference" and res.stats["max_df"] == 3 and res.stats["max_n"] == 2

    # sleuth's filter on the same proposal: whole contiguous phrase, df < ratio x N strictly, query words dropped
    s2 = sira_over(make_corpus(FILTER_DOCS, "c2"), [{"phrases": phrases}], max_df_ratio=1 / 3, max_phrases=10,
                   form="sleuth")
    kept2 = s2.run("kinase growth", 9).kept_phrases()
    assert kept2 == ["blood heart", "mice"]


def test_heart_blood_rarest_df_is_reported(make_corpus) -> None:
    s = sira_over(make_corpus(FILTER_DOCS), [{"phrases": ["heart blood"]}], max_df_ratio=1 / 3)
    [d] = s.run("x", 3).decisions
    # windows: heart (df 7), blood (df 7), "heart blood" (df 0): rarest seen df 7 > 3
    assert not d.kept and d.df == 7
    assert d.reason == "too common: its rarest 1..2-gram has df = 7 > int(0.333333 x 10) = 3"


def test_tiny_corpus_means_no_upper_bound(make_corpus) -> None:
    """int(N * ratio) = 0 (here 10 * 0.05): the reference's max_df == 0 puts no upper bound on df."""
    s = sira_over(make_corpus(FILTER_DOCS), [{"phrases": ["heart disease", "zebrafish"]}])
    res = s.run("x", 3)
    assert res.kept_phrases() == ["heart disease"] and res.stats["max_df"] == 0
    assert "no upper bound" in res.decisions[0].reason


def _hand_scores(query: list[str], expansion: list[str], weight: float) -> dict[str, float]:
    """search_with_expansion by hand: distinct unigrams and adjacent bigrams of the query, plus weight x those of
    the expansion's stems, each scored as BM25 lucene with df/tf/dl counted from the documents' words."""
    docs = {d: t.split() for d, t in TINY.items()}
    n = len(docs)
    avg = sum(len(t) for t in docs.values()) / n

    def terms(words: list[str]) -> set[tuple[str, ...]]:
        return {(w,) for w in words} | {tuple(words[i:i + 2]) for i in range(len(words) - 1)}

    def grams(words: list[str]) -> Counter[tuple[str, ...]]:
        return Counter([(w,) for w in words] + [tuple(words[i:i + 2]) for i in range(len(words) - 1)])

    counts = {d: grams(w) for d, w in docs.items()}
    df = Counter(g for c in counts.values() for g in c)

    def s(term: tuple[str, ...], d: str) -> float:
        tf = counts[d][term]
        if not tf:
            return 0.0
        idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
        return idf * tf / (tf + K1 * (1 - B + B * len(docs[d]) / avg))

    return {d: sum(s(t, d) for t in terms(query)) + weight * sum(s(t, d) for t in terms(expansion)) for d in docs}


def test_scores_are_the_reference_formula_by_hand(make_corpus) -> None:
    s = sira_over(make_corpus(TINY), [{"phrases": ["gamma delta", "beta"]}], max_df_ratio=1.0)
    res = s.run("alpha beta", 4)
    assert res.kept_phrases() == ["gamma delta", "beta"]
    want = _hand_scores(["alpha", "beta"], ["gamma", "delta", "beta"], 0.5)
    got = {h.doc_id: h.score for h in res.hits}
    assert got == pytest.approx({d: v for d, v in want.items() if v > 0}, rel=1e-5)
    # what the formula means: d2 ("gamma delta") is found only through the expansion, with its bigram
    assert got["d2.txt"] == pytest.approx(_hand_scores([], ["gamma", "delta"], 0.5)["d2.txt"], rel=1e-5)
    assert res.stats["tiers"] == ["unigram", "bigram"] and res.stats["weights"] == "one expansion weight"
    assert res.stats["expansion_tokens"] == 3


def test_a_bigram_across_two_kept_phrases_counts(make_corpus) -> None:
    """The reference concatenates the kept stems: "beta" + "alpha" gives the bigram "beta alpha" (d1, tf 2)."""
    s = sira_over(make_corpus(TINY), [{"phrases": ["beta", "alpha"]}], max_df_ratio=1.0, weight=1.0)
    got = {h.doc_id: h.score for h in s.run("delta", 4).hits}
    want = _hand_scores(["delta"], ["beta", "alpha"], 1.0)
    assert got == pytest.approx({d: v for d, v in want.items() if v > 0}, rel=1e-5)


def test_repeated_words_count_once(make_corpus) -> None:
    """query_targets keeps distinct targets: "alpha alpha beta" scores as "alpha beta" (plus its bigrams)."""
    root = make_corpus(TINY)
    a = sira_over(root, [{"phrases": []}]).run("alpha alpha beta", 4)
    want = _hand_scores(["alpha", "alpha", "beta"], [], 0.5)  # terms() is a set: distinct
    assert {h.doc_id: h.score for h in a.hits} == pytest.approx({d: v for d, v in want.items() if v > 0}, rel=1e-5)


# --- bad input ------------------------------------------------------------------------------------------------


def test_a_phrase_of_stopwords_or_punctuation(make_corpus) -> None:
    s = sira_over(make_corpus(TINY), [{"phrases": ["the of and", "!!! ???", "   ", "---"]}], max_df_ratio=1.0)
    res = s.run("alpha", 4)
    assert res.kept == [] and res.fallback == "no proposed phrase passed the df filter"
    assert all(d.reason.startswith("no indexable words") for d in res.decisions)
    base = sira_over(make_corpus(TINY, "b"), [{"phrases": []}]).run("alpha", 4)
    assert [(h.doc_id, h.score) for h in res.hits] == [(h.doc_id, h.score) for h in base.hits]


def test_an_expansion_longer_than_the_query_budget(make_corpus) -> None:
    phrases = ["alpha beta gamma", "delta", "gamma delta", "beta"]
    s = sira_over(make_corpus(TINY), [{"phrases": phrases}], max_df_ratio=1.0, max_expansion_tokens=5)
    res = s.run("alpha", 4)
    assert res.kept_phrases() == ["alpha beta gamma", "delta", "beta"]  # 3 + 1 + 1 stems; "gamma delta" does not fit
    [over] = res.rejected
    assert over.phrase == "gamma delta" and over.reason.startswith("over the query budget: 2 stems, 1 of")
    assert res.stats["expansion_tokens"] == 5
    # a single phrase longer than the whole budget
    long = " ".join(["alpha", "beta", "gamma", "delta"] * 20)
    res2 = sira_over(make_corpus(TINY, "b"), [{"phrases": [long]}], max_df_ratio=1.0).run("alpha", 4)
    assert res2.kept == [] and "over the query budget: 80 stems, 64 of" in res2.decisions[0].reason


def test_a_model_that_returns_no_phrases(make_corpus) -> None:
    tracer = MemoryTracer()
    root = make_corpus(TINY)
    s = SiraRetriever(BM25Retriever.open(Corpus(root)), ScriptedModel([{"phrases": []}]), tracer=tracer)
    res = s.run("alpha beta", 4)
    assert res.fallback == "model proposed no phrases" and res.proposed == [] and res.decisions == []
    want = _hand_scores(["alpha", "beta"], [], 0.5)  # the query alone, both tiers
    assert {h.doc_id: h.score for h in res.hits} == pytest.approx({d: v for d, v in want.items() if v > 0}, rel=1e-5)
    [ev] = tracer.of_kind("sira")
    assert ev.data["fallback"] == "model proposed no phrases" and ev.data["stats"]["form"] == "reference"
    assert ev.data["params"]["tiers"] == ["unigram", "bigram"] or ev.data["params"]["tiers"] == ("unigram", "bigram")


def test_weight_zero_is_the_query_alone(make_corpus) -> None:
    root = make_corpus(TINY)
    with_zero = sira_over(root, [{"phrases": ["gamma delta"]}], max_df_ratio=1.0, weight=0.0).run("alpha", 4)
    alone = sira_over(root, [{"phrases": []}]).run("alpha", 4)
    assert with_zero.kept_phrases() == ["gamma delta"]
    assert [(h.doc_id, h.score) for h in with_zero.hits] == [(h.doc_id, h.score) for h in alone.hits]


def test_per_phrase_weights_over_both_tiers(make_corpus) -> None:
    """form='sleuth' with tiers=both: each phrase scored with its own weight on unigrams and its bigrams."""
    s = sira_over(make_corpus(TINY), [{"phrases": [{"text": "gamma delta", "weight": 0.5}]}], form="sleuth",
                  tiers=("unigram", "bigram"), max_df_ratio=1.0, weight=1.0)
    got = {h.doc_id: h.score for h in s.run("alpha", 4).hits}
    want = _hand_scores(["alpha"], [], 0.0)
    exp = _hand_scores([], ["gamma", "delta"], 0.5)
    assert got == pytest.approx({d: want[d] + exp[d] for d in want if want[d] + exp[d] > 0}, rel=1e-5)


def test_search_tool_metadata_is_unchanged(make_corpus) -> None:
    s = sira_over(make_corpus(TINY), [{"phrases": ["gamma delta", "the"]}], max_df_ratio=1.0)
    res = s.run("alpha", 2)
    assert res.decided() == {"kept": ["gamma delta"], "rejected": [
        {"phrase": "the", "reason": "no indexable words (stopwords or punctuation only)"}], "fallback": None}


def test_a_bad_option_is_a_config_error(make_corpus) -> None:
    from sleuth.errors import ConfigError
    from sleuth.retrieval import get_retriever

    corpus = Corpus(make_corpus(TINY))
    for bad in ({"form": "paper"}, {"filter": "strict"}, {"tiers": ["trigram"]}, {"max_expansion_tokens": 0}):
        with pytest.raises(ConfigError, match="bad SIRA option"):
            get_retriever("sira", corpus, model=ScriptedModel([]), sira=bad)
