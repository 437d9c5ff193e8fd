"""Passage indexes and what uses them (sleuth.retrieval.passages): BM25 over passages through the shared builder,
hits that name their passage, documents scored by their best passage, `read doc#pN`, the search and rerank
tools, staleness by chunking parameters, documents without text."""

from __future__ import annotations

from pathlib import Path

import pytest

from sleuth.corpus import Corpus
from sleuth.errors import ChunkingError, ConfigError, PassageNotFoundError, StaleIndexError
from sleuth.records import Hit, RerankResult
from sleuth.rerank.base import RerankerBase
from sleuth.retrieval import get_retriever
from sleuth.retrieval.chunking import Chunker
from sleuth.retrieval.passages import BM25_PASSAGES, open_bm25_passages
from sleuth.tools.read import ReadArgs, read, read_tool
from sleuth.tools.rerank import rerank_tool
from sleuth.tools.search import search_tool

FILLER = " ".join(f"The committee met on day {i} and discussed the agenda." for i in range(40))
LONG = ("Annual report\n\n" + FILLER + "\n\n"
        "The lighthouse keeper Ilse Varga repaired the lantern with brass fittings.\n\n" + FILLER)


@pytest.fixture()
def corpus(make_corpus) -> Corpus:
    root = make_corpus({
        "long.txt": LONG,
        "short.txt": "A note about brass instruments and the lantern festival.",
        "other.md": "# Gardens\n\nRoses and tulips bloom in spring.\n",
        "empty.txt": "",
    })
    return Corpus(root)


def test_a_hit_names_its_passage_and_the_offsets_slice_the_text(corpus: Corpus) -> None:
    r = get_retriever("bm25", corpus, passages=True, chunking={"size": 300})
    hits = r.search("lighthouse keeper lantern brass", 3)
    top = hits[0]
    assert top.doc_id == "long.txt"
    p = top.metadata["passage"]
    text = corpus.read_text("long.txt")
    assert p["id"] == f"long.txt#p{p['n']}" and p["n"] > 1  # deep in the document
    assert text[p["start"]:p["end"]] == top.text and "lighthouse keeper" in top.text
    assert top.line == p["start_line"] == text.count("\n", 0, p["start"]) + 1
    assert len({h.doc_id for h in hits}) == len(hits)  # one hit per document: its best passage
    assert "short.txt" in [h.doc_id for h in hits]
    assert "empty.txt" not in [h.doc_id for h in r.search("committee", 10)]


def test_document_score_is_the_max_over_its_passages(corpus: Corpus) -> None:
    by_doc = get_retriever("bm25", corpus, passages=True, chunking={"size": 300})
    by_passage = get_retriever("bm25", corpus, passages=True, chunking={"size": 300}, group="passage")
    docs = by_doc.search("committee agenda", 5)
    passages = by_passage.search("committee agenda", 50)
    assert len([h for h in passages if h.doc_id == "long.txt"]) > 1  # several passages of one document
    best = max(h.score for h in passages if h.doc_id == "long.txt")
    long_hit = next(h for h in docs if h.doc_id == "long.txt")
    assert long_hit.score == best
    assert long_hit.metadata["passages_ranked"] == len([h for h in passages if h.doc_id == "long.txt"])


def test_ids_and_offsets_are_stable_across_rebuilds_and_stale_on_other_chunking(corpus: Corpus) -> None:
    a = open_bm25_passages(corpus, Chunker(size=300))
    spans = a.meta["passages"]["spans"]
    b = open_bm25_passages(corpus, Chunker(size=300), force=True)
    assert b.status.startswith("rebuilt") and b.doc_ids == a.doc_ids and b.meta["passages"]["spans"] == spans
    with pytest.raises(StaleIndexError, match="chunking"):
        open_bm25_passages(corpus, Chunker(size=200))
    c = open_bm25_passages(corpus, Chunker(size=200), rebuild=True)
    assert len(c.doc_ids) > len(a.doc_ids)
    assert (corpus.state_path / BM25_PASSAGES).is_dir() and (corpus.state_path / "bm25").exists() is False


def test_read_opens_a_passage_by_its_id(corpus: Corpus) -> None:
    hit = get_retriever("bm25", corpus, passages=True, chunking={"size": 300}).search("lighthouse keeper", 1)[0]
    pid = hit.metadata["passage"]["id"]
    r = read(corpus, ReadArgs(doc_id=pid), Chunker(size=300))
    assert r.doc_id == "long.txt" and r.passage is not None and r.passage["id"] == pid
    assert "lighthouse keeper" in r.text and r.start_line == hit.metadata["passage"]["start_line"]
    body = "\n".join(line.split("| ", 1)[1] for line in r.text.split("\n"))
    assert body == hit.text
    out = read_tool(corpus, Chunker(size=300)).invoke({"doc_id": pid})
    assert f"passage {pid}" in out.text and "lighthouse keeper" in out.text
    assert read(corpus, ReadArgs(doc_id="short.txt#p1")).text.endswith("festival.")
    with pytest.raises(PassageNotFoundError, match="no passages"):
        read(corpus, ReadArgs(doc_id="empty.txt#p1"))
    with pytest.raises(PassageNotFoundError, match="1 passages"):
        read(corpus, ReadArgs(doc_id="short.txt#p2"))


def test_a_file_named_like_a_passage_is_read_as_that_file(make_corpus) -> None:
    c = Corpus(make_corpus({"odd#p2": "a file whose name ends like a passage id", "odd": "x"}))
    assert "ends like" in read(c, ReadArgs(doc_id="odd#p2")).text


def test_search_tool_shows_the_passage_and_rerank_reads_passage_text(corpus: Corpus) -> None:
    r = get_retriever("bm25", corpus, passages=True, chunking={"size": 300})
    out = search_tool({"bm25": r}).invoke({"query": "lighthouse keeper", "k": 2})
    first = out.data[0]
    assert first["doc_id"] == "long.txt" and first["passage"].startswith("long.txt#p")
    assert f"1. {first['passage']} [line" in out.text
    assert out.data[0]["start"] < out.data[0]["end"]

    seen: list[Hit] = []

    class Recording(RerankerBase):  # records what it was given, keeps the order
        name = "recording"

        def run(self, query: str, hits: list[Hit], k: int | None = None, *, tracer=None) -> RerankResult:
            seen.extend(hits)
            return RerankResult(query=query, method=self.name, hits=hits, permutation=list(range(len(hits))))

    tool = rerank_tool(corpus, Recording(), Chunker(size=300))
    tool.invoke({"query": "lantern", "doc_ids": [first["passage"], "short.txt"]})
    assert seen[0].text == corpus.read_text("long.txt")[first["start"]:first["end"]]
    assert seen[1].text == corpus.read_text("short.txt")


def test_bad_passage_options_are_typed_errors(corpus: Corpus) -> None:
    with pytest.raises(ChunkingError):
        get_retriever("bm25", corpus, passages=True, chunking={"size": 0})
    with pytest.raises(ChunkingError):
        get_retriever("bm25", corpus, passages=True, chunking={"size": 100, "overlap": 100})
    with pytest.raises(ConfigError, match="unknown chunking"):
        get_retriever("bm25", corpus, passages=True, chunking={"sise": 100})
    with pytest.raises(ConfigError, match="passages=True"):
        get_retriever("bm25", corpus, group="passage")
    with pytest.raises(ConfigError, match="whole documents"):
        get_retriever("sira", corpus, model=object(), passages=True)


def test_eval_options_record_the_passage_lists() -> None:
    from sleuth.evals.build import Options, retriever_options, system_config

    o = Options(task="beir", data="x", method="hybrid", passages=True, chunk_size=500)
    assert retriever_options(o) == {"passages": True, "chunking": {"size": 500, "overlap": 0}}
    cfg = system_config(o, None)
    assert set(cfg["passages"]) == {"bm25", "dense"} and cfg["passages"]["dense"]["size"] == 500
    whole = system_config(Options(task="beir", data="x", method="bm25"), None)
    assert "passages" not in whole  # BM25's default: whole documents (the configuration runs had before)
    assert set(system_config(Options(task="beir", data="x", method="hybrid"), None)["passages"]) == {"dense"}


def test_empty_corpus_builds_an_empty_passage_index(tmp_path: Path) -> None:
    root = tmp_path / "c"
    root.mkdir()
    (root / "blank.txt").write_text("   \n\n", encoding="utf-8")
    r = get_retriever("bm25", Corpus(root), passages=True)
    assert r.search("anything", 5) == []


class WordHashEmbedder:
    """A small deterministic embedder (bag of hashed words, L2-normalised) that counts what it embeds: the unit
    under test is the passage index around it, not the embedding."""

    name, dim, max_tokens = "wordhash", 1024, 10_000

    def __init__(self) -> None:
        self.count = 0

    def embed(self, texts, *, progress=False):  # type: ignore[no-untyped-def]
        import zlib

        import numpy as np

        self.count += len(texts)
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                out[i, zlib.crc32(w.strip(".,!?").encode()) % self.dim] += 1
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1
        return out / norms


def test_dense_passages_aggregate_slice_and_share_vectors_with_the_document_index(corpus: Corpus) -> None:
    emb = WordHashEmbedder()
    dense = get_retriever("dense", corpus, embedder=emb, chunking={"size": 300})  # passages: dense's default
    n_passages = len(dense.table.ids)  # type: ignore[attr-defined]
    assert emb.count == n_passages and (corpus.state_path / "dense-passages").is_dir()
    hit = dense.search("the lighthouse keeper Ilse Varga repaired", 1)[0]
    p = hit.metadata["passage"]
    assert hit.doc_id == "long.txt" and hit.text == corpus.read_text("long.txt")[p["start"]:p["end"]]
    assert "Ilse Varga" in hit.text
    before = emb.count
    get_retriever("dense", corpus, embedder=emb, passages=False)
    # the document index embeds only the documents that are more than one passage (long.txt) and empty.txt (no
    # passage); the others are one passage, whole: their vectors are reused (other.md ends with a newline the
    # passage leaves out and the embedder ignores)
    assert emb.count - before == 2


def test_a_passage_index_reuses_the_document_index_vectors(make_corpus) -> None:
    c = Corpus(make_corpus({"a.txt": "Alpha beta gamma.\n", "b.txt": "Delta epsilon.\n\n", "c.txt": LONG}))
    emb = WordHashEmbedder()
    get_retriever("dense", c, embedder=emb, passages=False)
    assert emb.count == 3
    r = get_retriever("dense", c, embedder=emb, chunking={"size": 300})
    assert emb.count == 3 + len(r.table.ids) - 2  # type: ignore[attr-defined]  # a.txt and b.txt reused
    assert r.search("delta epsilon", 1)[0].doc_id == "b.txt"
