"""Passages on real data: SciFact's longest document (10,000 characters on one line, about 1,900 MiniLM word
pieces: a whole-document vector sees its first 254), as a text file and as a two-page PDF, among real distractors.
A BM25 and a dense passage hit name a passage deep in the document whose offsets slice text holding the query's
words, and `read` opens it."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from sleuth.corpus import Corpus
from sleuth.retrieval import get_retriever
from sleuth.retrieval.chunking import Chunker
from sleuth.tools.read import ReadArgs, read
from tests.conftest import shared_path

LONG_ID = "10749308"  # "Placebo-Controlled Trials and Active-Control Trials ...", 10,000 characters
BM25_QUERY = "analgesiologists inferior new medicine efficacy"
DENSE_QUERY = "without placebo controls one cannot know if an inferior new medicine has any efficacy"
TERMS = ("analgesiologists", "inferior", "efficacy")


@pytest.fixture(scope="module")
def scifact() -> dict[str, dict[str, str]]:
    path = shared_path("beir", "scifact", "corpus.jsonl")
    docs = [json.loads(line) for line in path.open(encoding="utf-8")]
    docs.sort(key=lambda d: (-len(d["text"]), d["_id"]))
    chosen = {d["_id"]: d for d in docs[:60]}  # the long document and 59 other long ones (real distractors)
    assert LONG_ID in chosen
    return chosen


@pytest.fixture(scope="module")
def corpus(scifact: dict[str, dict[str, str]], tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    root = tmp_path_factory.mktemp("scifact-long")
    for doc_id, d in scifact.items():
        (root / f"{doc_id}.txt").write_text(f"{d['title']}\n\n{d['text']}", encoding="utf-8")
    return Corpus(root)


def _check_hit(corpus: Corpus, hit, doc_id: str, terms: tuple[str, ...]) -> dict:  # type: ignore[no-untyped-def]
    assert hit.doc_id == doc_id
    p = hit.metadata["passage"]
    text = corpus.read_text(doc_id)
    piece = text[p["start"]:p["end"]]
    assert piece == hit.text
    assert all(t in piece.lower() for t in terms), piece
    assert p["start"] > 5000  # far past what a whole-document MiniLM vector sees (its first ~1,100 characters)
    r = read(corpus, ReadArgs(doc_id=p["id"], max_chars=5000))
    assert r.passage == p and r.doc_id == doc_id
    shown = "\n".join(line.split("| ", 1)[1] for line in r.text.split("\n"))
    assert shown == piece
    return p


def test_bm25_passage_hit_in_a_long_real_document(corpus: Corpus) -> None:
    r = get_retriever("bm25", corpus, passages=True)
    hits = r.search(BM25_QUERY, 5)
    p = _check_hit(corpus, hits[0], f"{LONG_ID}.txt", TERMS)
    n = len(Chunker().chunk(f"{LONG_ID}.txt", corpus.read_text(f"{LONG_ID}.txt")))
    assert p["id"] == f"{LONG_ID}.txt#p{p['n']}" and 1 < p["n"] <= n >= 10


@pytest.mark.slow
def test_dense_passage_hit_in_a_long_real_document(scifact: dict[str, dict[str, str]], tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers", reason="needs sleuth[dense] (sentence-transformers)")
    from sleuth.errors import MissingExtraError
    from sleuth.retrieval.embeddings import get_embedder

    try:
        emb = get_embedder("minilm")
    except MissingExtraError as e:
        pytest.skip(str(e))
    root = tmp_path / "dense"
    root.mkdir()
    for doc_id in list(scifact)[:15]:  # the long document and 14 other long ones: ~160 passages to embed
        d = scifact[doc_id]
        (root / f"{doc_id}.txt").write_text(f"{d['title']}\n\n{d['text']}", encoding="utf-8")
    corpus = Corpus(root)
    dense = get_retriever("dense", corpus, embedder=emb)  # passages: the default for dense
    hits = dense.search(DENSE_QUERY, 5)
    _check_hit(corpus, hits[0], f"{LONG_ID}.txt", ("placebo", "inferior", "efficacy"))
    assert (corpus.state_path / "dense-passages").is_dir() and not (corpus.state_path / "dense").exists()


def test_passages_of_a_real_pdf_slice_its_converted_text(scifact: dict[str, dict[str, str]], tmp_path: Path) -> None:
    pytest.importorskip("pypdf", reason="needs sleuth[docs] (pypdf)")
    from tests.fixtures.formats import write_pdf

    d = scifact[LONG_ID]
    lines = textwrap.wrap(d["text"], 95)
    root = tmp_path / "pdfs"
    root.mkdir()
    write_pdf(root / "trial.pdf", [[d["title"], *lines[: len(lines) // 2]], lines[len(lines) // 2:]])
    for other in list(scifact)[1:6]:
        (root / f"{other}.txt").write_text(scifact[other]["text"], encoding="utf-8")
    corpus = Corpus(root)
    text = corpus.read_text("trial.pdf")
    assert "[page 2]" in text
    hit = get_retriever("bm25", corpus, passages=True).search(BM25_QUERY, 3)[0]
    assert hit.doc_id == "trial.pdf"
    p = hit.metadata["passage"]
    piece = text[p["start"]:p["end"]]
    assert piece == hit.text and "analgesiologists" in piece
    r = read(corpus, ReadArgs(doc_id=p["id"]))
    assert r.converted_from == "pdf" and r.start_line == p["start_line"] and r.end_line == p["end_line"]
    lines_read = read(corpus, ReadArgs(doc_id="trial.pdf", start_line=p["start_line"], end_line=p["end_line"]))
    assert "analgesiologists" in lines_read.text  # the passage's lines, read as lines
