from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from sleuth.corpus import Corpus
from sleuth.errors import ConfigError, ImportFormatError
from sleuth.importers import import_corpus


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_beir_import_roundtrips_ids(tmp_path: Path) -> None:
    rows = [{"_id": "a/b", "title": "T1", "text": "alpha"}, {"_id": "../x", "title": "", "text": "beta"},
            {"_id": "ünï cödé " * 40, "title": "T3", "text": "gamma"}, {"_id": "a/b", "title": "dup", "text": "dup"}]
    src = _jsonl(tmp_path / "corpus.jsonl", rows)
    rep = import_corpus(tmp_path, tmp_path / "out", progress=False)
    assert (rep.format, rep.documents, rep.duplicates) == ("beir", 3, 1)
    c = Corpus(tmp_path / "out")
    originals = {c.original_id(d): c.read_text(d) for d in c.doc_ids()}
    assert originals["a/b"] == "T1\n\nalpha\n"
    assert originals["../x"] == "beta\n"
    assert originals["ünï cödé " * 40] == "T3\n\ngamma\n"
    assert c.doc_id_for("a/b") in c.doc_ids()
    assert all(c.path_of(d).is_relative_to(c.root) for d in c.doc_ids())
    assert src.exists()


def test_hotpot_official_and_ircot(tmp_path: Path) -> None:
    q1 = {"_id": "q1", "question": "?", "context": [["Alpha", ["One.", " Two."]], ["Beta", ["B."]]]}
    q2 = {"_id": "q2", "question": "?", "context": [["Alpha", ["One.", " Two."]], ["Alpha", ["Other text."]]]}
    rep = import_corpus(_jsonl(tmp_path / "h.jsonl", [q1, q2]), tmp_path / "h", progress=False)
    assert (rep.format, rep.documents, rep.duplicates, rep.renamed) == ("hotpotqa", 3, 1, 1)
    c = Corpus(tmp_path / "h")
    assert sorted(c.original_id(d) for d in c.doc_ids()) == ["Alpha", "Alpha [2]", "Beta"]
    assert c.read_text(c.doc_id_for("Alpha")) == "Alpha\n\nOne. Two.\n"
    ircot = {"_id": "q", "question": "?", "paragraphs": [{"title": "P", "text": "p text", "is_supporting": True}]}
    (tmp_path / "i.json").write_text(json.dumps([ircot, ircot]))
    rep = import_corpus(tmp_path / "i.json", tmp_path / "i", progress=False)
    assert (rep.format, rep.documents, rep.duplicates) == ("hotpotqa", 1, 1)


def test_plain_jsonl_json_array_and_object(tmp_path: Path) -> None:
    rep = import_corpus(_jsonl(tmp_path / "p.jsonl", [{"id": 1, "contents": "c1"}, {"doc_id": "x", "text": "c2"}]),
                        tmp_path / "p", progress=False)
    assert (rep.format, rep.documents) == ("jsonl", 2)
    (tmp_path / "arr.json").write_text(json.dumps([{"title": f"T{i}", "text": "t" * 5000} for i in range(300)]))
    assert import_corpus(tmp_path / "arr.json", tmp_path / "arr", progress=False).documents == 300
    (tmp_path / "obj.json").write_text(json.dumps({"Title A": ["s1", " s2"], "Title B": "text"}))
    c_rep = import_corpus(tmp_path / "obj.json", tmp_path / "obj", progress=False)
    assert c_rep.documents == 2
    assert Corpus(tmp_path / "obj").read_text("Title A.txt") == "Title A\n\ns1 s2\n"


def test_malformed_line_fails_with_line_number_and_keeps_old_state(tmp_path: Path) -> None:
    good = _jsonl(tmp_path / "good.jsonl", [{"_id": "1", "title": "", "text": "old"}])
    import_corpus(good, tmp_path / "c", progress=False)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"_id": "2", "text": "new"}\n{not json\n{"_id": "3", "text": "x"}\n')
    with pytest.raises(ImportFormatError) as e:
        import_corpus(bad, tmp_path / "c", progress=False)
    assert "line 2" in str(e.value)
    assert Corpus(tmp_path / "c").doc_ids() == ["1.txt"]  # the old corpus, untouched
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".c.")]  # no leftovers
    rep = import_corpus(bad, tmp_path / "c", on_error="skip", progress=False)
    assert rep.documents == 2 and rep.skipped == 1 and "line 2" in rep.errors[0]


def test_refuses_to_clobber_a_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    src = _jsonl(tmp_path / "s.jsonl", [{"id": "1", "text": "x"}])
    with pytest.raises(ConfigError):
        import_corpus(src, tmp_path / "mine", progress=False)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_missing_source_and_empty_source(tmp_path: Path) -> None:
    with pytest.raises(ImportFormatError):
        import_corpus(tmp_path / "nope.jsonl", tmp_path / "c", progress=False)
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(ImportFormatError):
        import_corpus(tmp_path / "empty.jsonl", tmp_path / "c", progress=False)


def test_streams_instead_of_loading_whole(tmp_path: Path) -> None:
    src = tmp_path / "big.jsonl"
    with src.open("w") as fh:
        for i in range(3000):
            fh.write(json.dumps({"_id": str(i), "title": "t", "text": "word " * 2000}) + "\n")
    size = src.stat().st_size
    tracemalloc.start()
    import_corpus(src, tmp_path / "big", progress=False)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert size > 25_000_000
    assert peak < size / 5, f"peak {peak} bytes for a {size}-byte file"


def test_killed_import_leaves_old_state(tmp_path: Path) -> None:
    old = _jsonl(tmp_path / "old.jsonl", [{"_id": "keep", "title": "", "text": "old"}])
    import_corpus(old, tmp_path / "c", progress=False)
    big = tmp_path / "big.jsonl"
    with big.open("w") as fh:
        for i in range(200_000):
            fh.write(json.dumps({"_id": str(i), "title": "", "text": "x " * 50}) + "\n")
    proc = subprocess.Popen([sys.executable, "-m", "sleuth.cli.main", "corpus", "import", str(big), str(tmp_path / "c")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and not any(p.name.startswith(".c.building.") for p in tmp_path.iterdir()):
        time.sleep(0.05)
    time.sleep(0.5)
    assert proc.poll() is None, "import finished before it could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert Corpus(tmp_path / "c").doc_ids() == ["keep.txt"]
