from __future__ import annotations

import os
from pathlib import Path

import pytest

from sleuth.corpus import Corpus, glob_to_regex
from sleuth.errors import (
    BinaryDocumentError,
    CorpusNotFoundError,
    DocumentNotFoundError,
    PathOutsideCorpusError,
    ToolInputError,
    UnreadableDocumentError,
)


def test_missing_corpus_folder(tmp_path: Path) -> None:
    with pytest.raises(CorpusNotFoundError) as e:
        Corpus(tmp_path / "nope")
    assert "sleuth corpus import" in str(e.value)
    (tmp_path / "file").write_text("x")
    with pytest.raises(CorpusNotFoundError):
        Corpus(tmp_path / "file")


def test_listing_skips_hidden_and_symlinks(make_corpus, tmp_path: Path) -> None:
    root = make_corpus({"a.txt": "A", "sub/b.md": "B", ".hidden/x.txt": "H", ".dot.txt": "D"})
    (tmp_path / "outside.txt").write_text("secret")
    os.symlink(tmp_path / "outside.txt", root / "link.txt")
    c = Corpus(root)
    assert c.doc_ids() == ["a.txt", "sub/b.md"]
    assert len(c) == 2
    assert c.doc_ids("*.md") == ["sub/b.md"]
    assert c.doc_ids("sub/**") == ["sub/b.md"]


def test_read_refuses_escapes(make_corpus, tmp_path: Path) -> None:
    root = make_corpus({"a.txt": "A"})
    (tmp_path / "outside.txt").write_text("secret")
    os.symlink(tmp_path / "outside.txt", root / "link.txt")
    os.symlink(tmp_path, root / "linkdir")
    c = Corpus(root)
    for bad in ["../outside.txt", "/etc/passwd", "sub/../../outside.txt", "link.txt", "linkdir/outside.txt", "C:\\x"]:
        with pytest.raises(PathOutsideCorpusError) as e:
            c.read_text(bad)
        assert isinstance(e.value, ToolInputError)
    with pytest.raises(DocumentNotFoundError) as e2:
        c.read_text("b.txt")
    assert "did you mean 'a.txt'" in str(e2.value)
    with pytest.raises(DocumentNotFoundError):
        c.read_text(".sleuth/corpus.json")


def test_binary_and_non_utf8(make_corpus) -> None:
    """A binary file is not a document (listed with its reason); a Latin-1 file is, in its detected encoding."""
    root = make_corpus({"bin.dat": b"\x00\x01\x02abc", "latin1.txt": "café crème brûlée".encode("latin-1"),
                        "ok.txt": "ok"})
    c = Corpus(root)
    with pytest.raises(BinaryDocumentError) as e:
        c.read_text("bin.dat")
    assert isinstance(e.value, UnreadableDocumentError) and e.value.reason == "binary"
    assert c.read_text("latin1.txt") == "café crème brûlée"
    assert c.entry("latin1.txt").meta["encoding"] in ("latin-1", "iso8859-1", "iso8859-15", "cp1252")
    assert [d.id for d in c.iter_documents()] == ["latin1.txt", "ok.txt"]
    assert c.doc_ids() == ["latin1.txt", "ok.txt"] and len(c) == 2
    assert {d: e.reason for d, e in c.unreadable().items()} == {"bin.dat": "binary"}
    assert (root / "latin1.txt").read_bytes() == "café crème brûlée".encode("latin-1")  # the user's file as it was


def test_fingerprint_changes_on_edit(make_corpus) -> None:
    root = make_corpus({"a.txt": "A"})
    c = Corpus(root)
    fp = c.fingerprint()
    assert fp == c.fingerprint()
    (root / "b.txt").write_text("B")
    fp2 = c.fingerprint()
    assert fp2 != fp
    (root / "b.txt").write_text("BB")
    assert c.fingerprint() != fp2


def test_state_dir_is_not_a_document(make_corpus) -> None:
    c = Corpus(make_corpus({"a.txt": "A"}))
    (c.state_dir / "bm25").mkdir()
    (c.state_dir / "bm25" / "x.txt").write_text("index")
    assert c.doc_ids() == ["a.txt"]


def test_glob_semantics() -> None:
    assert glob_to_regex("*.md").match("deep/er/x.md")
    assert not glob_to_regex("a/*.md").match("a/b/x.md")
    assert glob_to_regex("a/**/*.md").match("a/b/c/x.md")
    assert glob_to_regex("a/**/*.md").match("a/x.md")
    assert glob_to_regex("file?.txt").match("file1.txt")
    assert glob_to_regex("[ab].txt").match("b.txt")
