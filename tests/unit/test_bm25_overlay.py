"""The overlay of an incremental BM25 update (sleuth.retrieval.bm25_overlay): what it writes, what it refuses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sleuth.corpus import Corpus
from sleuth.errors import IndexCorruptError
from sleuth.retrieval.bm25 import BM25Index, BM25Retriever
from sleuth.retrieval.bm25_overlay import MAX_OVERLAY_SHARE, OverlaidBM25Index

DOCS = {f"n{i:02d}.txt": f"note {i} about herons and tides, entry {i % 7}" for i in range(40)}


def _overlaid(make_corpus) -> tuple[Path, OverlaidBM25Index]:
    root = make_corpus(DOCS)
    BM25Index.open(Corpus(root))
    (root / "n03.txt").write_text("a note about kingfishers", encoding="utf-8")
    index = BM25Index.open(Corpus(root), rebuild=True)
    assert isinstance(index, OverlaidBM25Index)
    return root, index


def test_the_overlay_writes_only_the_changed_document_and_keeps_the_base_files(make_corpus) -> None:
    root = make_corpus(DOCS)
    base = BM25Index.open(Corpus(root))
    inodes = {p.name: p.stat().st_ino for p in base.path.iterdir() if p.is_file()}
    (root / "n03.txt").write_text("a note about kingfishers", encoding="utf-8")
    index = BM25Index.open(Corpus(root), rebuild=True)
    assert isinstance(index, OverlaidBM25Index) and index.facts.doc_ids == ["n03.txt"]
    assert {p.name: p.stat().st_ino for p in index.path.iterdir() if p.is_file()} == inodes  # hard links
    meta = json.loads((index.path / "overlay" / "overlay.json").read_text())
    assert meta["doc_ids"] == ["n03.txt"] and meta["added_terms"] == ["kingfish"]
    hits = BM25Retriever(index).search("kingfishers", 3)
    assert [h.doc_id for h in hits] == ["n03.txt"] and "kingfishers" in hits[0].text
    assert "n03.txt" not in {h.doc_id for h in BM25Retriever(index).search("herons", 40)}


def test_past_its_share_the_overlay_gives_way_to_a_full_update(make_corpus) -> None:
    root = make_corpus(DOCS)
    BM25Index.open(Corpus(root))
    n = int(MAX_OVERLAY_SHARE * len(DOCS)) + 1
    for i in range(n):
        (root / f"n{i:02d}.txt").write_text(f"rewritten {i}", encoding="utf-8")
    index = BM25Index.open(Corpus(root), rebuild=True)
    assert not isinstance(index, OverlaidBM25Index) and not (index.path / "overlay").exists()
    assert f"{n} changed" in index.status


def test_an_overlay_over_another_base_is_refused(make_corpus, tmp_path: Path) -> None:
    root, index = _overlaid(make_corpus)
    meta_path = index.path / "overlay" / "overlay.json"
    meta = json.loads(meta_path.read_text())
    meta["base"] = "sha256:" + "0" * 64
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(IndexCorruptError, match="another base index") as e:
        BM25Index.load(index.path)
    assert "sleuth index" in (e.value.hint or "")
    # the corpus's open rebuilds it when allowed
    again = BM25Index.open(Corpus(root), rebuild=True)
    assert BM25Retriever(again).search("kingfishers", 1)[0].doc_id == "n03.txt"


@pytest.mark.parametrize("damage", ["flip a byte", "truncate", "bad json", "token out of range"])
def test_a_damaged_overlay_is_an_index_corrupt_error(make_corpus, damage: str) -> None:
    _, index = _overlaid(make_corpus)
    folder = index.path / "overlay"
    if damage == "flip a byte":
        raw = bytearray((folder / "store.bin").read_bytes())
        raw[0] ^= 0xFF
        (folder / "store.bin").write_bytes(bytes(raw))
    elif damage == "truncate":
        (folder / "tokens.npy").write_bytes((folder / "tokens.npy").read_bytes()[:60])
    elif damage == "bad json":
        (folder / "overlay.json").write_text("{not json")
    else:  # a crafted overlay: checksums recorded to match, values out of range
        tokens = np.load(folder / "tokens.npy")
        tokens[0] = 10**6
        np.save(folder / "tokens.npy", tokens)
        from sleuth.retrieval import index_check as ic

        meta = json.loads((folder / "overlay.json").read_text())
        meta["checksums"] = ic.file_checksums(folder, meta["checksums"])
        (folder / "overlay.json").write_text(json.dumps(meta))
    with pytest.raises(IndexCorruptError):
        BM25Index.load(index.path)


def test_a_file_removed_between_listing_and_update_is_an_empty_document(make_corpus, monkeypatch) -> None:
    root, _ = _overlaid(make_corpus)
    (root / "n05.txt").write_text("herons again, changed", encoding="utf-8")
    corpus = Corpus(root)
    listing = corpus.entries()
    (root / "n05.txt").unlink()  # gone after the listing the update works from
    from sleuth.retrieval.bm25_build import update_corpus

    stats = update_corpus(corpus, BM25Index.open(corpus, check_stale=False), entries=listing)
    assert stats is not None and isinstance(stats.index, OverlaidBM25Index)
    assert stats.index.text_of(stats.index.position("n05.txt")) == ""
    # the next open sees the removal
    index = BM25Index.open(Corpus(root), rebuild=True)
    assert "n05.txt" not in index.live_doc_ids()


def test_numpy_and_numba_kernels_score_an_overlay_alike(make_corpus) -> None:
    pytest.importorskip("numba")
    root, index = _overlaid(make_corpus)
    a = BM25Index.load(index.path, backend="numpy")
    b = BM25Index.load(index.path, backend="numba")
    assert a.backend == "numpy" and b.backend == "numba"
    for q in ("herons tides", "kingfishers note", "entry 3 about", "note 12"):
        ra, rb = BM25Retriever(a).search(q, 10), BM25Retriever(b).search(q, 10)
        assert [(h.doc_id, h.score) for h in ra] == [(h.doc_id, h.score) for h in rb]
