"""Filtered search on real data: SciFact's BEIR titles kept by the import, `where` filters that give exactly the
top k of the matching documents (the same as ranking everything and filtering after, by brute force) for bm25,
bm25 over a real dense index and hybrid; PDF and DOCX titles; the CLI and the MCP search tool."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sleuth.corpus import Corpus
from sleuth.errors import ToolArgumentError, UnknownFieldError
from sleuth.importers import import_corpus
from sleuth.retrieval.base import run_filtered
from sleuth.retrieval.bm25 import BM25Index, BM25Retriever
from tests.conftest import shared_path

SLEUTH = [sys.executable, "-m", "sleuth.cli.main"]


@pytest.fixture(scope="module")
def scifact(tmp_path_factory: pytest.TempPathFactory) -> tuple[Corpus, Path]:
    src = shared_path("beir", "scifact")
    root = tmp_path_factory.mktemp("meta") / "scifact"
    import_corpus(src, root, "beir")
    corpus = Corpus(root)
    BM25Index.open(corpus)
    return corpus, src


def _titles(src: Path) -> dict[str, str]:
    """Source id -> title, read from corpus.jsonl itself (not through sleuth's metadata)."""
    out = {}
    with (src / "corpus.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            out[rec["_id"]] = rec["title"]
    return out


def _test_queries(src: Path) -> list[str]:
    judged = {line.split("\t")[0] for line in (src / "qrels" / "test.tsv").read_text().splitlines()[1:]}
    recs = [json.loads(line) for line in (src / "queries.jsonl").read_text().splitlines()]
    return [r["text"] for r in recs if r["_id"] in judged]


@pytest.mark.data
def test_scifact_titles_are_metadata(scifact: tuple[Corpus, Path]) -> None:
    corpus, src = scifact
    titles = _titles(src)
    table = corpus.metadata_table()
    assert len(table) == len(titles) == 5183
    for doc_id, rec in table.items():
        assert rec["title"] == titles[corpus.original_id(doc_id)], doc_id
    assert {"title", "path", "size", "mtime", "format"} <= set(corpus.fields())
    with pytest.raises(UnknownFieldError) as e:
        corpus.filter("year>=2020")  # SciFact has no years: the error names the field and those that exist
    assert "'year'" in e.value.message and "title" in e.value.hint and "path" in e.value.hint


@pytest.mark.data
def test_scifact_title_filter_is_the_top_k_of_the_matching_documents(scifact: tuple[Corpus, Path]) -> None:
    corpus, src = scifact
    titles = _titles(src)
    cancer = {d for d in corpus.doc_ids() if "cancer" in titles[corpus.original_id(d)].lower()}
    assert 50 < len(cancer) < 1000  # a filter that matters: a few percent of the corpus
    retriever = BM25Retriever(BM25Index.open(corpus), with_text=False)
    flt = corpus.filter("title~'*cancer*'")
    assert flt is not None and flt.matching == cancer
    n = retriever.index.n_docs
    queries = _test_queries(src)
    assert len(queries) == 300
    nonempty = 0
    for q in queries:
        got = [(h.doc_id, h.score) for h in retriever.search(q, 10, where=flt)]
        assert all(d in cancer for d, _ in got), q
        brute = [(h.doc_id, h.score) for h in retriever.search(q, n) if h.doc_id in cancer][:10]
        assert got == brute, q
        nonempty += bool(got)
    assert nonempty > 250  # most queries share a word with some cancer paper
    # a filter after the top k would lose them: the top 10 unfiltered hold far fewer matching documents
    after = sum(sum(h.doc_id in cancer for h in retriever.search(q, 10)) for q in queries[:100])
    within = sum(len(retriever.search(q, 10, where=flt)) for q in queries[:100])
    assert within > 3 * after
    # two conditions, ANDed; a string filter resolved by the retriever against its corpus
    both = corpus.filter(["title~*cancer*", "title!~*breast*"])
    assert both is not None and both.matching == {d for d in cancer if "breast" not in titles[
        corpus.original_id(d)].lower()}
    hits = retriever.search(queries[0], 10, where=["title~*cancer*", "title!~*breast*"])
    assert [h.doc_id for h in hits] == [h.doc_id for h in retriever.search(queries[0], n)
                                        if h.doc_id in both.matching][:10]


class _WordHashEmbedder:
    """A real, crude embedder (hashed bag of words, unit rows): enough for a dense index over 5k documents in a
    second; the filter logic under test does not depend on the embedding's quality."""

    name = "test-word-hash-64"
    dim = 64
    max_tokens = 512

    def embed(self, texts: Any, *, progress: Any = False) -> np.ndarray:
        import zlib

        from sleuth.retrieval.embeddings import normalize

        out = np.zeros((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                out[i, zlib.crc32(w.encode()) % self.dim] += 1.0
        return normalize(out) if len(texts) else out


@pytest.mark.data
def test_scifact_dense_and_hybrid_filters(scifact: tuple[Corpus, Path]) -> None:
    pytest.importorskip("usearch", reason="the dense index needs the `dense` extra")
    from sleuth.retrieval.dense import DenseIndex, DenseRetriever
    from sleuth.retrieval.hybrid import HybridRetriever

    corpus, src = scifact
    emb = _WordHashEmbedder()
    dense = DenseRetriever(DenseIndex.open(corpus, emb, kind="hnsw"), emb, with_text=False)
    flt = corpus.filter("title~*cancer*")
    assert flt is not None
    vectors = np.asarray(dense.index.vindex.vectors)
    rows = np.flatnonzero(flt.mask(dense.index.doc_ids))
    for q in _test_queries(src)[:40]:
        got = [(h.doc_id, round(h.score, 5)) for h in dense.search(q, 10, where=flt)]
        scores = vectors[rows] @ emb.embed([q])[0]
        order = np.lexsort((rows, -scores))[:10]
        assert got == [(dense.index.doc_ids[rows[i]], round(float(scores[i]), 5)) for i in order], q
    bm25 = BM25Retriever(BM25Index.open(corpus), with_text=False)
    hybrid = HybridRetriever([bm25, dense], fusion="rrf")
    for q in _test_queries(src)[:20]:
        res = run_filtered(hybrid, q, 10, where=flt)
        assert res.hits and all(h.doc_id in flt.matching for h in res.hits), q
        assert all(h.doc_id in flt.matching for p in res.parts for h in p.hits)


def test_formats_titles_and_a_method_that_cannot_filter(tmp_path: Path) -> None:
    pytest.importorskip("pypdf", reason="needs the docs extra")
    pytest.importorskip("docx", reason="needs the docs extra")
    from sleuth.records import SearchResult
    from sleuth.retrieval.base import RetrieverBase
    from sleuth.retrieval.fresh import FreshRetrievers
    from tests.fixtures.formats import write_docx, write_pdf

    root = tmp_path / "c"
    root.mkdir()
    write_pdf(root / "report.pdf", [["Quarterly heart report"], ["More about hearts"]], title="Heart Report")
    write_docx(root / "memo.docx", ["A memo on hearts and lungs."], title="Lung Memo")
    (root / "note.md").write_text("---\nauthor: Smith\nyear: 2022\n---\nHearts, a note.\n", "utf-8")
    (root / "page.html").write_text("<html><head><title>Heart &amp; Page</title><script>var hearts=1;</script>"
                                    "</head><body><p>Hearts&nbsp;beat.</p></body></html>", "utf-8")
    corpus = Corpus(root)
    table = corpus.metadata_table()
    assert table["page.html"]["title"] == "Heart & Page" and table["page.html"]["format"] == "html"
    assert table["report.pdf"]["title"] == "Heart Report" and table["report.pdf"]["author"] == "sleuth tests"
    assert table["report.pdf"]["format"] == "pdf" and table["report.pdf"]["pages"] == 2
    assert table["memo.docx"]["title"] == "Lung Memo" and table["memo.docx"]["format"] == "docx"
    assert [h.doc_id for h in corpus.search("hearts", where="author=Smith")] == ["note.md"]
    assert [h.doc_id for h in corpus.search("hearts", where="format=pdf")] == ["report.pdf"]
    assert {h.doc_id for h in corpus.search("hearts", where="title~*memo*")} == {"memo.docx"}
    assert {h.doc_id for h in corpus.search("hearts", where="title~heart*")} == {"report.pdf", "page.html"}
    assert {h.doc_id for h in corpus.search("hearts", where="path=*.{pdf,docx}")} == {"report.pdf", "memo.docx"}
    assert corpus.search("hearts", where=["author=Smith", "year<2020"]) == []
    fresh = corpus._searchers["bm25"]
    assert isinstance(fresh, FreshRetrievers)

    class Unfiltered(RetrieverBase):  # a retriever of one's own that does not say it filters
        name = "mine"

        def run(self, query: str, k: int = 10, *, tracer: Any = None) -> SearchResult:
            return fresh["bm25"].run(query, k)

    assert [h.doc_id for h in run_filtered(Unfiltered(), "hearts", 3).hits]  # no filter: runs as ever
    with pytest.raises(ToolArgumentError, match="'mine' cannot filter"):
        run_filtered(Unfiltered(), "hearts", 3, where=corpus.filter("year>1"))


def test_cli_where_and_glob(tmp_path: Path) -> None:
    root = tmp_path / "c"
    (root / "notes").mkdir(parents=True)
    (root / "notes" / "a.md").write_text("---\nyear: 2021\nauthor: Smith\n---\nThe heart pumps blood.\n", "utf-8")
    (root / "notes" / "b.md").write_text("---\nyear: 2015\nauthor: Jones\n---\nHeart failure.\n", "utf-8")
    (root / "c.txt").write_text("The heart and blood glucose.\n", "utf-8")

    def search(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*SLEUTH, "search", "heart", "--corpus", str(root), "--index", "-q", *args],
                              capture_output=True, text=True, timeout=120)

    data = json.loads(search("--where", "year>=2020", "--json").stdout)
    assert [h["doc_id"] for h in data["hits"]] == ["notes/a.md"]
    assert data["where"] == {"filter": "year>=2020", "matching": 1, "documents": 3}
    data = json.loads(search("--glob", "notes/*.md", "-w", "author!=Smith", "--json").stdout)
    assert [h["doc_id"] for h in data["hits"]] == ["notes/b.md"]
    p = search("--where", "yeer>=2020")
    assert p.returncode == 2 and "UnknownFieldError" in p.stderr and "'yeer'" in p.stderr
    assert "fields that exist: author, format, mtime, path, size, year" in p.stderr
    p = search("--where", "year=>2020")
    assert p.returncode == 2 and "FilterSyntaxError" in p.stderr and "hint" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 2  # the error line and its hint


@pytest.mark.data
def test_hotpotqa_titles_are_metadata(tmp_path: Path) -> None:
    src = shared_path("hotpotqa", "distractor_dev_reflexion100.jsonl")
    report = import_corpus(src, tmp_path / "hp", "hotpotqa")
    corpus = Corpus(tmp_path / "hp")
    titles: dict[str, set[str]] = {}  # title -> the texts it has in the source
    for line in src.read_text(encoding="utf-8").splitlines():
        for title, sentences in json.loads(line)["context"]:
            titles.setdefault(title, set()).add("".join(sentences))
    table = corpus.metadata_table()
    assert len(table) == report.documents == sum(len(v) for v in titles.values())  # distinct (title, text) pairs
    for doc_id, rec in table.items():
        original = corpus.original_id(doc_id)
        assert rec["title"] in titles and (original == rec["title"] or original.startswith(rec["title"] + " ["))
    # a filter on the title field picks the paragraphs of one article
    title = "VIVA Media"
    flt = corpus.filter(f"title='{title}'")
    assert flt is not None and {table[d]["title"] for d in flt.matching} == {title}
    hits = corpus.search("new acronym name 2004", 5, where=f"title='{title}'")
    assert hits and {h.doc_id for h in hits} <= flt.matching


pytest.importorskip("mcp", reason="the MCP server needs the `mcp` extra")

import anyio  # noqa: E402
from mcp import Client  # noqa: E402

from tests.integration.mcp_helpers import sleuth_stdio as _stdio, text_of as _text  # noqa: E402


def test_mcp_search_tool_filters(tmp_path: Path) -> None:
    root = tmp_path / "c"
    (root / "notes").mkdir(parents=True)
    (root / "notes" / "a.md").write_text("---\nyear: 2021\n---\nThe fox ran.\n", "utf-8")
    (root / "notes" / "b.md").write_text("---\nyear: 2015\n---\nThe fox slept.\n", "utf-8")
    (root / "fox.txt").write_text("fox fox fox\n", "utf-8")

    async def main() -> None:
        async with Client(_stdio(root), read_timeout_seconds=120) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert "where" in tools["search"].input_schema["properties"]
            r = await client.call_tool("search", {"query": "fox", "where": ["year>=2020"]})
            assert r.is_error is not True
            assert [h["doc_id"] for h in r.structured_content["result"]] == ["notes/a.md"]
            r = await client.call_tool("search", {"query": "fox", "where": "path=notes/*"})  # one string is one
            assert {h["doc_id"] for h in r.structured_content["result"]} == {"notes/a.md", "notes/b.md"}
            r = await client.call_tool("search", {"query": "fox", "where": ["colour=red"]})
            assert r.is_error is True and "UnknownFieldError" in _text(r) and "year" in _text(r)
            # a note added during the session: its front matter is seen by the next filtered search
            (root / "notes" / "c.md").write_text("---\nyear: 2024\n---\nA new fox.\n", "utf-8")
            r = await client.call_tool("search", {"query": "fox", "where": ["year>=2020"]})
            assert {h["doc_id"] for h in r.structured_content["result"]} == {"notes/a.md", "notes/c.md"}

    anyio.run(main)
