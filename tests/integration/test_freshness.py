"""An index that stays true to its folder: in one `sleuth mcp` session (the official MCP client over stdio) files
are added, changed and deleted between calls, and search, df, grep, ls and read agree after every change; the
incremental BM25 update gives the arrays (and so the rankings) of a full rebuild."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sleuth.corpus import Corpus
from sleuth.retrieval.bm25 import BM25Index, BM25Retriever
from tests.conftest import shared_path

ARRAYS = ("data", "indices", "indptr", "tokens", "doc_offsets", "store_offsets", "tf")


def _same_index(a: BM25Index, b: BM25Index) -> None:
    """The same arrays: a full (merged) incremental update writes what a rebuild writes."""
    assert a.doc_ids == b.doc_ids and a.vocab == b.vocab
    for name in ARRAYS:
        x, y = np.asarray(getattr(a, name)), np.asarray(getattr(b, name))
        assert x.dtype == y.dtype and x.shape == y.shape and bool((x == y).all()), name


def _tiers(index: BM25Index, query: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sleuth.retrieval.bm25_ngrams import targets

    uni, bi = targets(index, index.analyzer.tokens(query), ("unigram", "bigram"))
    return (np.asarray(uni, np.int32), np.ones(len(uni), np.float32), np.asarray(bi, np.int64),
            np.full(len(bi), 0.5, np.float32))


def _same_answers(a: BM25Index, b: BM25Index, queries: list[str], k: int = 10) -> None:
    """An overlaid index answers as the rebuild ``b`` does: the same live documents, texts, statistics (N, every
    df of both tiers) and, for every query, the same ranked ids and float32 scores, plain and with both tiers."""
    from sleuth.retrieval.df import DocFrequency

    assert a.n_docs == b.n_docs and sorted(a.live_doc_ids()) == b.doc_ids
    assert a.meta["n_tokens"] == b.meta["n_tokens"]
    for d in b.doc_ids:
        assert a.text_of(a.position(d)) == b.text_of(b.position(d)), d
    for t, tid in b.vocab.items():
        assert a.doc_freq(a.vocab[t]) == b.doc_freq(tid), t
    assert all(a.doc_freq(i) == 0 for t, i in a.vocab.items() if t not in b.vocab)
    names = {i: t for t, i in b.vocab.items()}
    tb = b.bigrams
    assert tb is not None and a.bigrams is not None and len(a.bigrams) == len(tb)
    keys = np.asarray(tb.keys)[:: max(1, len(tb) // 3000)]
    for key in keys.tolist():
        pair = [a.vocab[names[key // tb.vocab_size]], a.vocab[names[key % tb.vocab_size]]]
        ids = a.bigrams.pair_ids(pair)
        assert ids and a.bigrams.df(ids[0]) == tb.df(int(np.searchsorted(tb.keys, key)))
    ra, rb = BM25Retriever(a, with_text=False), BM25Retriever(b, with_text=False)
    fa, fb = DocFrequency(a), DocFrequency(b)
    for q in queries:
        assert [(h.doc_id, h.score) for h in ra.search(q, k)] == [(h.doc_id, h.score) for h in rb.search(q, k)], q
        sa, ia = a.tier_topk(*_tiers(a, q), k)
        sb, ib = b.tier_topk(*_tiers(b, q), k)
        assert [a.doc_ids[i] for i in ia.tolist()] == [b.doc_ids[i] for i in ib.tolist()], q
        assert sa.tolist() == sb.tolist(), q
        words = q.split()[:3]
        assert fa.df(" ".join(words)).df == fb.df(" ".join(words)).df, q


def _copy_with_mtimes(src: Path, dest: Path) -> None:
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".sleuth"))
    for p in src.rglob("*"):
        if p.is_file() and ".sleuth" not in p.parts:
            st = p.stat()
            os.utime(dest / p.relative_to(src), ns=(st.st_atime_ns, st.st_mtime_ns))


def _changes(root: Path) -> None:
    (root / "d005.txt").write_text("a wholly new vocabulary: axolotl quokka term3", encoding="utf-8")
    (root / "d010.txt").unlink()
    (root / "sub").mkdir(exist_ok=True)
    (root / "sub" / "new.txt").write_text("quokka and term7 " * 5, encoding="utf-8")


def _indexed_then_changed(make_corpus) -> tuple[Path, list[str], Any]:
    """120 random documents indexed, then one added, one changed, one removed."""
    words = [f"term{i}" for i in range(400)]
    rng = np.random.default_rng(0)
    root = make_corpus({f"d{i:03d}.txt": " ".join(rng.choice(words, 60)) for i in range(120)})
    BM25Index.open(Corpus(root))
    _changes(root)
    return root, words, rng


def test_an_overlay_update_answers_as_a_rebuild(make_corpus, tmp_path: Path) -> None:
    from sleuth.retrieval.bm25_overlay import OverlaidBM25Index

    root, words, rng = _indexed_then_changed(make_corpus)
    updated = BM25Index.open(Corpus(root), rebuild=True)
    assert updated.status.startswith("updated (1 added, 1 changed, 1 removed; 118 unchanged")
    assert isinstance(updated, OverlaidBM25Index) and "overlay of 2 documents" in updated.status
    _copy_with_mtimes(root, tmp_path / "fresh")
    rebuilt = BM25Index.open(Corpus(tmp_path / "fresh"))
    assert rebuilt.status == "built"
    queries = [" ".join(rng.choice(words, 4)) for _ in range(60)] + ["quokka term7", "axolotl", "term3 quokka"]
    _same_answers(updated, rebuilt, queries)
    # opened again from disk, the overlay answers the same; a second change rewrites it, not chains it
    again = BM25Index.open(Corpus(root))
    assert again.status == "up to date" and isinstance(again, OverlaidBM25Index)
    _same_answers(again, rebuilt, queries)
    (root / "d020.txt").write_text("quokka quokka axolotl", encoding="utf-8")
    (root / "sub" / "new.txt").unlink()
    second = BM25Index.open(Corpus(root), rebuild=True)
    assert second.status.startswith("updated (0 added, 1 changed, 1 removed")
    assert isinstance(second, OverlaidBM25Index) and sorted(second.facts.doc_ids) == ["d005.txt", "d020.txt"]
    shutil.rmtree(tmp_path / "fresh")
    _copy_with_mtimes(root, tmp_path / "fresh")
    _same_answers(second, BM25Index.open(Corpus(tmp_path / "fresh")), queries)
    # --rebuild folds the overlay into a plain index
    plain = BM25Index.open(Corpus(root), force=True)
    assert not isinstance(plain, OverlaidBM25Index) and not (plain.path / "overlay").exists()


def test_a_large_change_is_merged_in_full_and_is_a_rebuild(make_corpus, tmp_path: Path) -> None:
    root, words, rng = _indexed_then_changed(make_corpus)
    for i in range(30, 50):  # 23 documents changed or added: past the overlay's share, within the merge's
        (root / f"d{i:03d}.txt").write_text(" ".join(rng.choice(words, 30)), encoding="utf-8")
    updated = BM25Index.open(Corpus(root), rebuild=True)
    assert updated.status.startswith("updated (1 added, 21 changed, 1 removed; 98 unchanged")
    assert "overlay" not in updated.status
    _copy_with_mtimes(root, tmp_path / "fresh")
    rebuilt = BM25Index.open(Corpus(tmp_path / "fresh"))
    _same_index(updated, rebuilt)
    # a term only the removed document had is gone from the vocabulary, as in a rebuild
    assert set(updated.vocab) == set(rebuilt.vocab)


@pytest.mark.data
@pytest.mark.slow
def test_scifact_one_changed_document_updates_fast_with_a_rebuilds_rankings(tmp_path: Path) -> None:
    import json

    from sleuth.importers import import_corpus

    src = shared_path("beir", "scifact")
    root = tmp_path / "scifact"
    import_corpus(src, root, "beir")
    corpus = Corpus(root)
    t0 = time.perf_counter()
    BM25Index.open(corpus, force=True)
    full_s = time.perf_counter() - t0
    doc = corpus.doc_ids()[100]
    path = root / doc
    path.write_text(path.read_text(encoding="utf-8") + "\nAn added sentence about zebrafish hearts.\n", "utf-8")
    t0 = time.perf_counter()
    updated = BM25Index.open(corpus, rebuild=True)
    inc_s = time.perf_counter() - t0
    assert updated.status.startswith("updated (0 added, 1 changed, 0 removed")
    _copy_with_mtimes(root, tmp_path / "again")
    rebuilt = BM25Index.open(Corpus(tmp_path / "again"))
    queries = [json.loads(line)["text"] for line in (src / "queries.jsonl").read_text().splitlines()]
    qrels = {line.split("\t")[0] for line in (src / "qrels" / "test.tsv").read_text().splitlines()[1:]}
    ids = [json.loads(line) for line in (src / "queries.jsonl").read_text().splitlines()]
    tests = [q for q, rec in zip(queries, ids, strict=True) if rec["_id"] in qrels]
    assert len(tests) == 300
    _same_answers(updated, rebuilt, tests, k=100)
    print(f"full build {full_s:.2f} s, incremental update of one document {inc_s:.3f} s ({full_s / inc_s:.0f}x)")
    # speed is measured in benchmarks/ (the ratio printed above is for the log), never asserted in a test


# --- one MCP session -------------------------------------------------------------------------------------------

pytest.importorskip("mcp", reason="the MCP server needs the `mcp` extra")

import anyio  # noqa: E402
from mcp import Client  # noqa: E402

from tests.integration.test_mcp_server import _stdio, _text  # noqa: E402


async def _views(client: Any, word: str) -> dict[str, Any]:
    """What each tool says about ``word`` and the corpus."""
    grep = await client.call_tool("grep", {"pattern": word, "ignore_case": True, "files_with_matches": True})
    search = await client.call_tool("search", {"query": word, "k": 20})
    df = await client.call_tool("df", {"terms": [word]})
    ls = await client.call_tool("ls", {"limit": 1000})
    hits = search.structured_content["result"] if search.structured_content else []
    return {
        "grep": set(grep.structured_content["files"]),
        "search": {h["doc_id"] for h in hits},
        "df": df.structured_content["terms"][0]["df"],
        "n_docs": df.structured_content["n_docs"],
        "ls": set(ls.structured_content["doc_ids"]),
    }


async def _agree(client: Any, word: str, docs: set[str], corpus: set[str]) -> None:
    v = await _views(client, word)
    assert v["grep"] == v["search"] == docs, v
    assert v["df"] == len(docs) and v["n_docs"] == len(corpus) and v["ls"] == corpus, v
    for doc in docs:
        read = await client.call_tool("read", {"doc_id": doc})
        assert read.is_error is not True and word in _text(read).lower(), doc


def test_one_mcp_session_follows_added_changed_and_deleted_files(tmp_path: Path) -> None:
    root = tmp_path / "corpus"
    (root / "notes").mkdir(parents=True)
    (root / "notes" / "alpha.md").write_text("# Alpha\nThe quick brown fox met the lead.\n")
    (root / "notes" / "beta.txt").write_text("Budget review\nThe budget is 42 units; the fox returns.\n")
    (root / "readme.txt").write_text("A small corpus for the freshness test.\n")
    corpus = {"notes/alpha.md", "notes/beta.txt", "readme.txt"}

    async def main() -> None:
        async with Client(_stdio(root), read_timeout_seconds=120) as client:
            await _agree(client, "fox", {"notes/alpha.md", "notes/beta.txt"}, corpus)

            # added: a note and a PDF, found by every tool at the next call
            (root / "notes" / "gamma.txt").write_text("A narwhal was seen; the fox hid.\n")
            added = corpus | {"notes/gamma.txt"}
            if _has_pypdf():
                from tests.fixtures.formats import write_pdf

                write_pdf(root / "report.pdf", [["Field report"], ["The narwhal surfaced twice"]])
                added |= {"report.pdf"}
            await _agree(client, "narwhal", added - corpus - {"readme.txt"}, added)
            await _agree(client, "fox", {"notes/alpha.md", "notes/beta.txt", "notes/gamma.txt"}, added)

            # changed: the budget note now speaks of a manatee; the old words are gone everywhere
            (root / "notes" / "beta.txt").write_text("Manatee census\nOne manatee, no money talk.\n")
            await _agree(client, "manatee", {"notes/beta.txt"}, added)
            await _agree(client, "budget", set(), added)
            await _agree(client, "fox", {"notes/alpha.md", "notes/gamma.txt"}, added)

            # deleted: never served again, and read says it is gone
            (root / "notes" / "alpha.md").unlink()
            left = added - {"notes/alpha.md"}
            await _agree(client, "fox", {"notes/gamma.txt"}, left)
            gone = await client.call_tool("read", {"doc_id": "notes/alpha.md"})
            assert gone.is_error is True and "DocumentNotFoundError" in _text(gone)
            if "report.pdf" in left:
                (root / "report.pdf").unlink()
                await _agree(client, "narwhal", {"notes/gamma.txt"}, left - {"report.pdf"})

    anyio.run(main)


def _has_pypdf() -> bool:
    try:
        import pypdf  # noqa: F401
    except ImportError:
        return False
    return True
