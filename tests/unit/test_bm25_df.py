"""Document frequency of words and phrases: the index vocabulary and the token-stream n-gram count."""

from __future__ import annotations

from pathlib import Path

import pytest

from sleuth.corpus import Corpus
from sleuth.retrieval import df as dfmod
from sleuth.retrieval.bm25 import BM25Index
from sleuth.retrieval.df import DocFrequency
from sleuth.tools.df import df_tool

DOCS = {
    "1.txt": "Heart failure is common. Chronic heart failure patients.",
    "2.txt": "Failures of the heart: acute heart failures in the elderly.",
    "3.txt": "The failure of a heart transplant; heart and lung.",
    "4.txt": "Ends with heart",
    "5.txt": "failure starts this one. C++ (v2.0) [x]* and regex.*stuff",
    "6.txt": "Cause of death: heart disease. The cause of death was unclear.",
}


@pytest.fixture(scope="module")
def docfreq(tmp_path_factory: pytest.TempPathFactory) -> DocFrequency:
    root: Path = tmp_path_factory.mktemp("dfc")
    for name, text in DOCS.items():
        (root / name).write_text(text, encoding="utf-8")
    return DocFrequency(BM25Index.open(Corpus(root)))


def brute(docfreq: DocFrequency, phrase: str) -> int:
    """Reference: scan every document's analyzed tokens in Python."""
    an = docfreq.index.analyzer
    gram = an.tokens(phrase)
    n = 0
    for text in DOCS.values():
        t = an.tokens(text)
        if any(t[i : i + len(gram)] == gram for i in range(len(t) - len(gram) + 1)):
            n += 1
    return n


@pytest.mark.parametrize(
    "term", ["heart", "heart failure", "failure heart", "acute heart failure", "cause of death", "heart lung",
             "heart transplant", "lung heart", "chronic heart failure patients"],
)
def test_matches_brute_force(docfreq: DocFrequency, term: str) -> None:
    assert docfreq.df(term).df == brute(docfreq, term)


def test_word_uses_vocabulary_and_stems(docfreq: DocFrequency) -> None:
    r = docfreq.df("Failures")
    assert r.method == "vocabulary" and r.tokens == ["failur"]
    assert r.df == 4


def test_phrase_is_contiguous_and_inflection_insensitive(docfreq: DocFrequency) -> None:
    r = docfreq.df("heart failures")
    assert r.method == "token_ngram"
    assert r.df == 2  # 1.txt and 2.txt ("failure of a heart" is not contiguous in the right order)


def test_phrase_does_not_span_documents(docfreq: DocFrequency) -> None:
    # 4.txt ends with "heart", 5.txt starts with "failure": adjacent in the flat token stream, not a match
    assert docfreq.df("heart failure").df == 2


def test_stopwords_inside_a_phrase_are_ignored(docfreq: DocFrequency) -> None:
    assert docfreq.df("cause of death").df == docfreq.df("cause death").df == 1


def test_regex_metacharacters_are_literal_punctuation(docfreq: DocFrequency) -> None:
    for term in ["C++ (v2.0)", "[x]*", "regex.*stuff", "(", ".*", "a|b"]:
        r = docfreq.df(term)
        assert r.df == brute(docfreq, term) if r.tokens else r.df == 0


def test_no_tokens_and_unknown(docfreq: DocFrequency) -> None:
    assert docfreq.df("the of and").method == "none"
    unknown = docfreq.df("heart zebrafish")
    assert unknown.df == 0 and "zebrafish" in unknown.note


def test_numpy_counter_agrees(docfreq: DocFrequency) -> None:
    py = DocFrequency(docfreq.index)
    py._count = dfmod._count_numpy
    for term in ["heart failure", "heart disease", "cause death", "heart lung"]:
        assert py.df(term).df == docfreq.df(term).df


def test_df_tool(docfreq: DocFrequency) -> None:
    tool = df_tool(docfreq)
    res = tool.run({"terms": ["heart failure", "zebrafish"]})
    assert "6 documents" in res.text and "'heart failure': 2" in res.text
    assert res.data["terms"][1]["df"] == 0
    bad = tool.invoke({"terms": []})
    assert bad.is_error
