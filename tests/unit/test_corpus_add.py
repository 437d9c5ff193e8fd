"""Corpus.add / Corpus.remove / Corpus.create: where documents go and the validation (the importer's rules)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sleuth import ids
from sleuth.corpus import Corpus
from sleuth.errors import (
    ConfigError,
    DocumentExistsError,
    DocumentNotFoundError,
    EmptyDocumentError,
    PathOutsideCorpusError,
    ReadOnlyCorpusError,
    ToolArgumentError,
)
from sleuth.importers import import_corpus


def test_a_created_corpus_stores_documents_as_the_importer_does(tmp_path: Path) -> None:
    c = Corpus.create(tmp_path / "new")
    assert c.owned and c.doc_ids() == []
    doc = c.add("PMID:42/a", "Zebrafish hearts regenerate.", {"title": "Fish", "year": 2020, "tags": ["x", "y"]})
    assert doc == ids.encode("PMID:42/a") == "PMID%3A42%2Fa.txt" and c.original_id(doc) == "PMID:42/a"
    assert c.read_text(doc) == "Fish\n\nZebrafish hearts regenerate.\n"  # title line, as a titled import
    assert c.doc_ids() == [doc]
    meta = c.metadata(doc)
    assert (meta["title"], meta["year"], meta["tags"], meta["path"]) == ("Fish", 2020, ["x", "y"], doc)
    plain = c.add("b", "No title here")
    assert c.read_text(plain) == "No title here\n" and "title" not in c.metadata(plain)
    # nothing is written outside the folder and its .sleuth; metadata is one appended line per add
    lines = (c.root / ".sleuth" / "metadata.jsonl").read_text().splitlines()
    assert [json.loads(x)["id"] for x in lines] == [doc]
    assert Corpus.create(tmp_path / "new").doc_ids() == sorted([plain, doc])  # opened again as it is


def test_bad_adds(tmp_path: Path) -> None:
    c = Corpus.create(tmp_path / "new")
    c.add("a", "text a")
    with pytest.raises(DocumentExistsError, match="already"):
        c.add("a", "other text")
    assert c.read_text("a.txt") == "text a\n"
    for bad_id in ["", "   "]:
        with pytest.raises(EmptyDocumentError):
            c.add(bad_id, "text")
    for empty in ["", " \n\t "]:
        with pytest.raises(EmptyDocumentError, match="empty"):
            c.add("e", empty)
    with pytest.raises(ToolArgumentError, match="must be a string"):
        c.add("e", b"bytes")  # type: ignore[arg-type]
    with pytest.raises(ToolArgumentError, match="NUL"):
        c.add("e", "a\x00b")
    with pytest.raises(ToolArgumentError, match="the file's own"):
        c.add("e", "text", {"path": "elsewhere"})
    with pytest.raises(ToolArgumentError, match="not a name"):
        c.add("e", "text", {"bad key": 1})
    with pytest.raises(ToolArgumentError, match="type object"):
        c.add("e", "text", {"k": object()})
    with pytest.raises(ToolArgumentError, match="mapping"):
        c.add("e", "text", ["not", "a", "mapping"])  # type: ignore[arg-type]
    assert c.doc_ids() == ["a.txt"]  # nothing was written by a refused add
    with pytest.raises(DocumentNotFoundError):
        c.remove("never-added")
    with pytest.raises(DocumentNotFoundError):
        c.remove("")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    with pytest.raises(ConfigError, match="not an empty folder"):
        Corpus.create(tmp_path / "full")


def test_replace_and_remove(tmp_path: Path) -> None:
    c = Corpus.create(tmp_path / "new")
    doc = c.add("a", "first", {"year": 2020})
    st = (c.root / doc).stat()
    assert c.add("a", "other", {"year": 2021}, replace=True) == doc  # same size, same tick: mtime still moves
    assert (c.root / doc).stat().st_mtime_ns != st.st_mtime_ns
    assert c.read_text(doc) == "other\n" and c.metadata(doc)["year"] == 2021
    assert c.remove("a") == doc and doc not in c and c.doc_ids() == []
    assert doc not in c.metadata_table() and c.records.load() == {}
    doc = c.add("a", "again")  # its old metadata does not come back with it
    assert "year" not in c.metadata(doc)
    assert c.remove(doc) == doc  # the doc id works as well as the id given to add


def test_long_ids_are_split_into_folders_and_removed_with_them(tmp_path: Path) -> None:
    c = Corpus.create(tmp_path / "new")
    long_id = "x" * 500
    doc = c.add(long_id, "long id text")
    assert "/" in doc and c.original_id(doc) == long_id and c.doc_ids() == [doc]
    c.remove(long_id)
    assert [p for p in c.root.iterdir() if p.name != ".sleuth"] == []


def test_a_users_own_folder_is_not_written_unless_asked(make_corpus) -> None:
    root = make_corpus({"notes/a.md": "mine"})
    with pytest.raises(ReadOnlyCorpusError) as e:
        Corpus(root).add("notes/b.md", "text")
    assert "Corpus(PATH, writable=True)" in e.value.hint
    with pytest.raises(ReadOnlyCorpusError):
        Corpus(root).remove("notes/a.md")
    assert sorted(p.name for p in (root / "notes").iterdir()) == ["a.md"]
    c = Corpus(root, writable=True)
    assert c.add("notes/b.md", "---\nyear: 2020\n---\nB text", {"author": "Me"}) == "notes/b.md"
    assert (root / "notes" / "b.md").read_text() == "---\nyear: 2020\n---\nB text\n"  # no title line added
    meta = c.metadata("notes/b.md")
    assert (meta["year"], meta["author"]) == (2020, "Me")  # front matter and the given metadata
    assert (c.state_path / "metadata.jsonl").is_file()  # beside the indexes, not among the user's files
    for bad, err in [("../x.txt", PathOutsideCorpusError), ("/abs.txt", PathOutsideCorpusError),
                     (".hidden.txt", ToolArgumentError), ("a/.git/x", ToolArgumentError),
                     ("report.pdf", ToolArgumentError), ("dir/", ToolArgumentError)]:
        with pytest.raises(err):
            c.add(bad, "text")
    with pytest.raises(DocumentExistsError):
        c.add("notes/a.md", "replace mine?")
    c.remove("notes/b.md")
    assert not (root / "notes" / "b.md").exists() and (root / "notes" / "a.md").exists()


def test_an_imported_corpus_takes_added_documents(tmp_path: Path) -> None:
    src = tmp_path / "src.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in [
        {"_id": "d1", "title": "One", "text": "first text", "metadata": {"year": 2019, "url": "http://a"}},
        {"_id": "d2", "title": "", "text": "second text", "extra": "kept"},
    ]) + "\n")
    import_corpus(src, tmp_path / "c", "beir")
    c = Corpus(tmp_path / "c")
    assert c.metadata("d1.txt") | {"mtime": None} == {
        "title": "One", "year": 2019, "url": "http://a", "path": "d1.txt", "size": 16, "format": "text",
        "mtime": None}
    assert c.metadata("d2.txt")["extra"] == "kept" and "title" not in c.metadata("d2.txt")
    with pytest.raises(DocumentExistsError):
        c.add("d1", "clash")
    doc = c.add("d3", "third text", {"title": "Three", "year": 2024})
    assert c.filter("year>=2020").matching == {doc}  # type: ignore[union-attr]
    assert c.filter("year<2020").matching == {"d1.txt"}  # type: ignore[union-attr]
