"""Corpora people have: PDF, DOCX, PPTX, HTML, Markdown and Latin-1 files, an encrypted PDF, a scan and an image,
written by tests/fixtures/formats.py. grep, read, ls, BM25 search and df see the same converted text; the files
that cannot be read are listed with their reasons and never counted; nothing is written into the user's folder;
the loaders' caps hold on a 2 GB PDF, a PDF bomb and a slow conversion."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sleuth.corpus import Corpus
from sleuth.errors import MissingExtraError, UnreadableDocumentError
from sleuth.loaders.caps import LoaderCaps
from sleuth.loaders.worker import Converter
from sleuth.tools import corpus_tools
from sleuth.tools.grep import GrepArgs, grep
from tests.fixtures.formats import make_formats_folder, write_pdf, write_pdf_bomb

pytest.importorskip("pypdf")
pytest.importorskip("docx")
pytest.importorskip("pptx")

SLEUTH = [sys.executable, "-m", "sleuth.cli.main"]
READABLE = ["deck.pptx", "latin1.txt", "memo.docx", "notes.md", "page.html", "report.pdf"]
UNREADABLE = {"locked.pdf": "encrypted", "photo.png": "image", "scan.pdf": "no text"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("formats") / "docs"
    return root, make_formats_folder(root)


def _user_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and ".sleuth" not in p.relative_to(root).parts}


def test_documents_and_unreadable_files_with_reasons(folder: tuple[Path, dict[str, str]]) -> None:
    root, _ = folder
    c = Corpus(root)
    assert c.doc_ids() == READABLE and len(c) == len(READABLE)
    assert {d: e.reason for d, e in c.unreadable().items()} == UNREADABLE
    assert "password" in c.unreadable()["locked.pdf"].message
    assert "OCR" in c.unreadable()["scan.pdf"].message
    ls = corpus_tools(c).invoke("ls", {}).text
    assert ls.startswith(f"{len(READABLE)} documents") and "3 files are not documents" in ls
    for doc_id in UNREADABLE:
        assert f"  {doc_id}: " in ls
    entries = c.entries()
    assert entries["report.pdf"].meta == {"pages": 2, "title": "Glacier report", "author": "sleuth tests"}
    assert entries["memo.docx"].meta["title"] == "Hangar memo" and entries["deck.pptx"].meta["slides"] == 2
    assert entries["notes.md"].status == "text" and entries["latin1.txt"].status == "converted"


def test_grep_finds_each_text_and_never_markup(folder: tuple[Path, dict[str, str]]) -> None:
    root, expected = folder
    c = Corpus(root)
    for doc_id, phrase in expected.items():
        r = grep(c, GrepArgs(pattern=phrase.lstrip("!"), fixed_strings=True))
        found = {m.doc_id for m in r.matches}
        assert found == (set() if phrase.startswith("!") else {doc_id}), (doc_id, found)
    for markup in ("trackingCode", "injected-script-text", "&nbsp;", "&amp;", "font-family", "<p>", "&mdash;"):
        assert grep(c, GrepArgs(pattern=markup, fixed_strings=True)).total_matches == 0, markup
    assert grep(c, GrepArgs(pattern="Finistère", fixed_strings=True)).matches[0].doc_id == "page.html"
    assert grep(c, GrepArgs(pattern="moon landing", fixed_strings=True)).total_matches == 0  # encrypted
    # one result from two ripgrep runs: totals, files and counts agree across modes, shapes as for text files
    lines = grep(c, GrepArgs(pattern="the", ignore_case=True, max_matches=2000))
    counts = grep(c, GrepArgs(pattern="the", ignore_case=True, count=True))
    files = grep(c, GrepArgs(pattern="the", ignore_case=True, files_with_matches=True))
    assert lines.total_matches == len(lines.matches) == sum(counts.counts.values()) == counts.total_matches
    assert sorted({m.doc_id for m in lines.matches}) == files.files == sorted(counts.counts)
    assert {"report.pdf", "notes.md", "page.html"} <= set(files.files)
    few = grep(c, GrepArgs(pattern="the", ignore_case=True, max_matches=2))
    assert len(few.matches) == 2 and few.total_matches == lines.total_matches and few.not_shown_matches > 0
    assert [m.doc_id for m in grep(c, GrepArgs(pattern="page", glob="*.pdf")).matches] == ["report.pdf"] * 3
    assert grep(c, GrepArgs(pattern="Alps", path="report.pdf")).matches[0].line == 3
    with pytest.raises(UnreadableDocumentError):
        grep(c, GrepArgs(pattern="x", path="locked.pdf"))


def test_read_gives_the_grepped_lines_and_page_markers(folder: tuple[Path, dict[str, str]]) -> None:
    root, _ = folder
    tools = corpus_tools(Corpus(root))
    r = tools.invoke("read", {"doc_id": "report.pdf"})
    assert r.data["text"].splitlines() == [
        "1| [page 1]", "2| Quarterly report on glacier retreat", "3| Page one discusses the Alps.",
        "4| [page 2]", "5| The second page covers Patagonian icefields", "6| and ends here.",
    ]
    assert r.data["converted_from"] == "pdf" and "text of a PDF file" in r.text
    m = grep(Corpus(root), GrepArgs(pattern="zeppelin")).matches[0]
    got = tools.invoke("read", {"doc_id": "memo.docx", "start_line": m.line, "end_line": m.line}).data["text"]
    assert got == f"{m.line}| {m.text}"
    assert "Roof\t1200" in tools.invoke("read", {"doc_id": "memo.docx"}).data["text"]
    assert "[slide 2]" in tools.invoke("read", {"doc_id": "deck.pptx"}).data["text"]
    assert "café de la gare" in tools.invoke("read", {"doc_id": "latin1.txt"}).data["text"]
    bad = tools.invoke("read", {"doc_id": "locked.pdf"})
    assert bad.is_error and bad.error_type == "UnreadableDocumentError" and "password" in bad.text


def test_bm25_search_and_df_count_documents_only(folder: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    from sleuth.retrieval.bm25 import BM25Index, BM25Retriever
    from sleuth.retrieval.df import DocFrequency

    root, expected = folder
    before = _user_files(root)
    c = Corpus(root, state_dir=tmp_path / "state")  # indexes and converted text outside the user's folder
    index = BM25Index.open(c)
    assert index.n_docs == len(READABLE) and index.doc_ids == READABLE
    retriever = BM25Retriever(index)
    for doc_id, phrase in expected.items():
        if not phrase.startswith("!"):
            assert retriever.search(phrase, k=1)[0].doc_id == doc_id, doc_id
    hit = retriever.search("Patagonian icefields", k=1)[0]
    assert "[page 2]" in hit.text
    assert retriever.search("trackingCode", k=3) == [] and retriever.search("moon landing", k=3) == []
    df = DocFrequency(index)
    assert df.n_docs == len(READABLE) and df.df("zeppelin").df == 1 and df.df("nbsp").df == 0
    assert _user_files(root) == before  # nothing written into the folder


def test_cli_index_and_ls_report_unreadable_files(folder: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    src, _ = folder
    root = tmp_path / "docs"
    shutil.copytree(src, root, ignore=shutil.ignore_patterns(".sleuth"))
    p = subprocess.run([*SLEUTH, "index", str(root), "--json"], capture_output=True, text=True, timeout=180)
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    assert data["documents"] == len(READABLE)
    assert {d: u["reason"] for d, u in data["unreadable"].items()} == UNREADABLE
    assert data["converted"] == {"docx": 1, "html": 1, "pdf": 1, "pptx": 1, "text": 1}
    p = subprocess.run([*SLEUTH, "index", str(root)], capture_output=True, text=True, timeout=180)
    assert "3 files are not documents (not indexed):" in p.stdout and "locked.pdf: encrypted" in p.stdout
    p = subprocess.run([*SLEUTH, "ls", "--corpus", str(root), "--json"], capture_output=True, text=True, timeout=60)
    ls = json.loads(p.stdout)
    assert ls["doc_ids"] == READABLE and ls["unreadable_total"] == 3 and "image" in ls["unreadable"]["photo.png"]


def test_a_utf8_corpus_gets_nothing_written(make_corpus) -> None:
    root = make_corpus({"a.txt": "alpha", "sub/b.md": "# beta"})
    c = Corpus(root)
    assert c.doc_ids() == ["a.txt", "sub/b.md"] and c.unreadable() == {}
    grep(c, GrepArgs(pattern="alpha"))
    assert not (root / ".sleuth").exists()


def test_changed_and_removed_files_are_judged_again(make_corpus) -> None:
    root = make_corpus({"a.txt": "plain"})
    c = Corpus(root)
    write_pdf(root / "new.pdf", [["Fresh words about narwhals"]])
    assert c.doc_ids() == ["a.txt", "new.pdf"] and "narwhals" in c.read_text("new.pdf")
    stored = c.store.text_path("new.pdf")
    assert stored.is_file()
    latin = "Un déjà-vu au café : très étrange, à l'été, près de la forêt."  # seven bytes would be ambiguous
    (root / "a.txt").write_bytes(latin.encode("cp1252"))
    assert c.read_text("a.txt") == latin and c.entry("a.txt").status == "converted"
    (root / "new.pdf").unlink()
    assert c.doc_ids() == ["a.txt"] and not stored.exists()
    assert [m.doc_id for m in grep(c, GrepArgs(pattern="narwhals")).matches] == []
    (root / "a.txt").write_text("utf-8 again", encoding="utf-8")
    assert c.entry("a.txt").status == "text" and not c.store.text_path("a.txt").exists()


def test_caps_bound_huge_files_bombs_and_slow_conversions(tmp_path: Path) -> None:
    huge = tmp_path / "huge.pdf"
    with huge.open("wb") as fh:
        fh.truncate(2 << 30)  # a sparse 2 GiB file: refused by size, never opened
    bomb = write_pdf_bomb(tmp_path / "bomb.pdf", decompressed_mb=100)
    normal = write_pdf(tmp_path / "ok.pdf", [["fine"]])
    t0 = time.perf_counter()
    with Converter() as conv:
        with pytest.raises(UnreadableDocumentError) as e:
            conv.convert(huge, "pdf")
        assert e.value.reason == "too large" and "2048 MiB" in e.value.message
        with pytest.raises(UnreadableDocumentError) as e:
            conv.convert(bomb, "pdf")
        assert e.value.reason == "too large"
        assert "fine" in conv.convert(normal, "pdf").text  # the same converter goes on
    assert time.perf_counter() - t0 < 60
    with Converter(LoaderCaps(timeout_s=0.01)) as conv:  # the child cannot even start in 10 ms
        with pytest.raises(UnreadableDocumentError) as e:
            conv.convert(normal, "pdf")
        assert e.value.reason == "timeout" and "time cap" in e.value.message
    with Converter(LoaderCaps(max_pages=1, max_chars=1000)) as conv:
        many = write_pdf(tmp_path / "many.pdf", [[f"page {i} words"] for i in range(3)])
        got = conv.convert(many, "pdf")
        assert "[page 2]" not in got.text and "first 1 of 3 pages" in got.notes[0]


def test_missing_docs_extra_names_the_install_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sleuth.loaders.pdf import load_pdf

    monkeypatch.setitem(sys.modules, "pypdf", None)  # as if `sleuth-search[docs]` were not installed
    with pytest.raises(MissingExtraError) as e:
        load_pdf(str(write_pdf(tmp_path / "a.pdf", [["x"]])), LoaderCaps())
    assert e.value.hint == "pip install 'sleuth-search[docs]'"
