"""The grep tool against the real ripgrep binary."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from sleuth.corpus import Corpus
from sleuth.errors import InvalidPatternError, PathOutsideCorpusError, ToolArgumentError, ToolTimeoutError
from sleuth.rg import rg_binary
from sleuth.tools import corpus_tools
from sleuth.tools.grep import GrepArgs, grep


def test_rg_comes_from_this_environment() -> None:
    import sys

    assert Path(rg_binary()).parent == Path(sys.executable).parent


def test_basic_match_with_context(sample_corpus: Path) -> None:
    c = Corpus(sample_corpus)
    r = grep(c, GrepArgs(pattern="Kestrel", context=1))
    docs = {m.doc_id for m in r.matches}
    assert {"projects/kestrel_bridge.txt", "people/bram_okafor.md", "places/dunmore.md"} <= docs
    assert r.total_matches == len(r.matches) and r.not_shown_matches == 0 and r.complete
    first = next(m for m in r.matches if m.doc_id == "projects/kestrel_bridge.txt")
    assert first.line == 1 and first.after and first.after[0][0] == 2


def test_case_fixed_word_and_glob(sample_corpus: Path) -> None:
    c = Corpus(sample_corpus)
    assert grep(c, GrepArgs(pattern="tidewatch")).total_matches == 0
    assert grep(c, GrepArgs(pattern="tidewatch", ignore_case=True)).total_matches > 0
    assert grep(c, GrepArgs(pattern="1.3", fixed_strings=True)).total_docs == 1
    assert grep(c, GrepArgs(pattern="Port", word_regexp=True, glob="people/*")).total_docs == 1
    files = grep(c, GrepArgs(pattern="Norvand", files_with_matches=True))
    assert "places/dunmore.md" in files.files and files.total_docs == len(files.files)
    counts = grep(c, GrepArgs(pattern="Morrow", count=True))
    assert counts.counts["people/ada_morrow.md"] == 3


def test_path_restricts_search(sample_corpus: Path) -> None:
    c = Corpus(sample_corpus)
    r = grep(c, GrepArgs(pattern="Norvand", path="places"))
    assert r.matches and all(m.doc_id.startswith("places/") for m in r.matches)
    r = grep(c, GrepArgs(pattern="Norvand", path="places/dunmore.md"))
    assert {m.doc_id for m in r.matches} == {"places/dunmore.md"}
    with pytest.raises(PathOutsideCorpusError):
        grep(c, GrepArgs(pattern="x", path="../"))


def test_invalid_regex_is_an_observation(sample_corpus: Path) -> None:
    tk = corpus_tools(sample_corpus)
    with pytest.raises(InvalidPatternError):
        tk["grep"].run({"pattern": "(unclosed"})
    obs = tk.invoke("grep", {"pattern": "(unclosed"})
    assert obs.is_error and obs.error_type == "InvalidPatternError"
    assert "fixed_strings" in obs.text
    assert not tk.invoke("grep", {"pattern": "(unclosed", "fixed_strings": True}).is_error


def test_pattern_starting_with_dash(make_corpus) -> None:
    c = Corpus(make_corpus({"a.txt": "flag --verbose here\n-x option\n"}))
    assert grep(c, GrepArgs(pattern="--verbose")).total_matches == 1
    assert grep(c, GrepArgs(pattern="-x")).total_matches == 1


def test_look_around_uses_pcre2(make_corpus) -> None:
    c = Corpus(make_corpus({"a.txt": "price 10 USD\nprice 20 EUR\n"}))
    r = grep(c, GrepArgs(pattern=r"\d+(?= EUR)"))
    assert [m.line for m in r.matches] == [2]


def test_symlink_outside_is_not_followed(make_corpus, tmp_path: Path) -> None:
    root = make_corpus({"a.txt": "public"})
    (tmp_path / "secret.txt").write_text("public secret")
    os.symlink(tmp_path / "secret.txt", root / "link.txt")
    os.symlink(tmp_path, root / "linkdir")
    r = grep(Corpus(root), GrepArgs(pattern="secret"))
    assert r.total_matches == 0


def test_binary_and_non_utf8_files(make_corpus) -> None:
    root = make_corpus({"bin.dat": b"needle\x00\x01binary", "latin.txt": "needle café".encode("latin-1")})
    r = grep(Corpus(root), GrepArgs(pattern="needle"))
    assert {m.doc_id for m in r.matches} == {"latin.txt"}  # binary skipped, like ripgrep
    assert r.matches[0].text.startswith("needle caf")


def test_huge_single_line_is_clipped(make_corpus) -> None:
    line = "a" * 25_000_000 + " needle " + "b" * 25_000_000
    root = make_corpus({"big.txt": line})
    tk = corpus_tools(root)
    out = tk.invoke("grep", {"pattern": "needle"})
    assert not out.is_error
    assert len(out.text) < 2000 and "a needle b" in out.text and "line too long, shown cut" in out.text
    assert out.data["long_lines"] == 1 and out.data["matches"][0]["line"] == 1
    read = tk.invoke("read", {"doc_id": "big.txt"})
    assert len(read.text) < 5000 and read.truncated


def test_huge_output_is_counted_not_shown(make_corpus) -> None:
    root = make_corpus({f"d{i}.txt": "match me\n" * 40_000 for i in range(5)})  # 200k matching lines
    t0 = time.perf_counter()
    out = corpus_tools(root).invoke("grep", {"pattern": "match", "max_matches": 20})
    elapsed = time.perf_counter() - t0
    assert out.truncated
    data = out.data
    assert data["total_matches"] == 200_000 and data["total_docs"] == 5
    assert "199980 more matches in 5 documents not shown" in out.text
    assert len(out.text) < 3000
    assert elapsed < 30


def test_timeout_is_reported(make_corpus) -> None:
    root = make_corpus({f"d{i}.txt": ("lorem ipsum dolor sit amet " * 40 + "\n") * 4000 for i in range(20)})
    with pytest.raises(ToolTimeoutError):
        grep(Corpus(root), GrepArgs(pattern=r"\b[a-z]{9} [a-z]{9}\b"), timeout=0.001)


def test_bad_arguments_become_observations(sample_corpus: Path) -> None:
    tk = corpus_tools(sample_corpus)
    for args in [{"pattern": ""}, {}, {"pattern": "x", "context": 99}, {"pattern": "x", "bogus": 1}, "not json"]:
        obs = tk.invoke("grep", args)
        assert obs.is_error and obs.error_type == "ToolArgumentError", args
    with pytest.raises(ToolArgumentError):
        tk["grep"].run({"pattern": ""})


def test_output_char_cap(sample_corpus: Path) -> None:
    out = corpus_tools(sample_corpus).invoke("grep", {"pattern": ".", "max_matches": 500, "max_chars": 600})
    assert len(out.text) <= 700 and out.truncated and "cut at 600 characters" in out.text


def test_openai_schema_is_valid_json_schema(sample_corpus: Path) -> None:
    import jsonschema

    for tool in corpus_tools(sample_corpus):
        spec = tool.openai_schema()
        assert spec["type"] == "function" and spec["function"]["name"] == tool.name
        jsonschema.Draft202012Validator.check_schema(spec["function"]["parameters"])
    grep_params = corpus_tools(sample_corpus)["grep"].parameters_schema()
    assert {"pattern", "glob", "ignore_case", "fixed_strings", "context"} <= set(grep_params["properties"])
    assert grep_params["required"] == ["pattern"]


HIDDEN_SECRET = "HIDDEN-SECRET-91c"


@pytest.fixture()
def corpus_with_hidden(make_corpus) -> Path:
    return make_corpus({
        "a.txt": "public text\n",
        "sub/b.md": "more public text\n",
        ".env": f"API_KEY={HIDDEN_SECRET}\n",
        ".git/config": f"[remote] url = {HIDDEN_SECRET}\n",
        ".sleuth/corpus.json": f'{{"x": "{HIDDEN_SECRET}"}}\n',
        "sub/.secret.txt": f"{HIDDEN_SECRET}\n",
    })


@pytest.mark.parametrize("args", [
    {"pattern": "."}, {"pattern": ".", "glob": ".env"}, {"pattern": ".", "glob": "*"}, {"pattern": ".", "glob": "**"},
    {"pattern": ".", "glob": ".*"}, {"pattern": ".", "glob": "**/.*"}, {"pattern": ".", "glob": ".git/**"},
    {"pattern": ".", "glob": "{.env,a.txt}"}, {"pattern": ".", "glob": "!a.txt"}, {"pattern": ".", "glob": "sub/.*"},
    {"pattern": "SECRET-91", "files_with_matches": True, "glob": "*"},
    {"pattern": "SECRET-91", "count": True, "glob": "**"},
    {"pattern": ".", "context": 2, "glob": "*"},
])
def test_hidden_files_are_never_shown_whatever_the_glob(corpus_with_hidden: Path, args: dict) -> None:
    """Issue #19: `grep . -g .env` and `-g '*'` returned the contents of .env, .git/config and .sleuth/."""
    out = corpus_tools(corpus_with_hidden).invoke("grep", args)
    assert HIDDEN_SECRET not in out.text and ".env" not in str(out.data.get("files") if out.data else "")
    if not out.is_error:
        ids = {m["doc_id"] for m in out.data["matches"]} | set(out.data["files"]) | set(out.data["counts"])
        assert all(not any(p.startswith(".") for p in d.split("/")) for d in ids), ids


@pytest.mark.parametrize("path", [".git", ".git/", ".sleuth", ".env", "sub/.secret.txt", "./.git", "sub/../.git"])
def test_hidden_paths_are_refused(corpus_with_hidden: Path, path: str) -> None:
    out = corpus_tools(corpus_with_hidden).invoke("grep", {"pattern": ".", "path": path})
    assert out.is_error and out.error_type in ("DocumentNotFoundError", "PathOutsideCorpusError"), out.text
    assert HIDDEN_SECRET not in out.text


def test_hidden_files_are_not_read_or_listed(corpus_with_hidden: Path) -> None:
    tk = corpus_tools(corpus_with_hidden)
    for doc_id in [".env", ".git/config", ".sleuth/corpus.json", "sub/.secret.txt", "./.env"]:
        out = tk.invoke("read", {"doc_id": doc_id})
        assert out.is_error and HIDDEN_SECRET not in out.text
    for glob in ["*", "**", ".*", "**/.*", ".git/**"]:
        assert all(not d.startswith(".") and "/." not in d for d in tk.invoke("ls", {"glob": glob}).data["doc_ids"])
    assert Corpus(corpus_with_hidden).doc_ids() == ["a.txt", "sub/b.md"]


def test_hostile_arguments_are_typed_errors(corpus_with_hidden: Path, tmp_path: Path) -> None:
    """NUL bytes, lone surrogates, a 300-character path component, a bad bracket glob, a symlink loop under a
    hidden path and a 5 MB pattern raised foreign exceptions before; each is now an error observation."""
    loop = corpus_with_hidden / ".hid"
    loop.mkdir()
    os.symlink(loop / "x", loop / "x")
    os.symlink(corpus_with_hidden / "loopdir", corpus_with_hidden / "loopdir")
    tk = corpus_tools(corpus_with_hidden)
    cases = [
        ("grep", {"pattern": "a\x00b"}, "ToolArgumentError"),
        ("grep", {"pattern": "x", "glob": "\x00"}, "ToolArgumentError"),
        ("grep", {"pattern": "\ud800"}, "ToolArgumentError"),
        ("read", {"doc_id": "a" * 300 + ".txt"}, "DocumentNotFoundError"),
        ("read", {"doc_id": "sub/" + "é" * 300}, "DocumentNotFoundError"),
        ("grep", {"pattern": "x", "path": "b" * 300}, "DocumentNotFoundError"),
        ("grep", {"pattern": "x", "glob": "[z-a]"}, "InvalidGlobError"),
        ("grep", {"pattern": "x", "glob": "[abc"}, "InvalidGlobError"),
        ("ls", {"glob": "{a,b"}, "InvalidGlobError"),
        ("ls", {"glob": "a\\"}, "InvalidGlobError"),
        ("grep", {"pattern": "x", "path": ".hid/x"}, "DocumentNotFoundError"),
        ("read", {"doc_id": ".hid/x"}, "DocumentNotFoundError"),
        ("read", {"doc_id": "loopdir"}, "PathOutsideCorpusError"),
        ("grep", {"pattern": "x", "path": "loopdir"}, "PathOutsideCorpusError"),
        ("grep", {"pattern": "x" * 5_000_000}, "ToolArgumentError"),
        ("ls", {"glob": "*" * 20_000}, "ToolArgumentError"),
        ("read", {"doc_id": "y" * 20_000_000}, "ToolArgumentError"),
    ]
    for name, args, kind in cases:
        out = tk.invoke(name, args)
        assert out.is_error and out.error_type == kind, (name, str(args)[:80], out.text[:300])
        assert len(out.text) < 2000, (name, len(out.text))
        assert str(tmp_path) not in out.text  # no absolute paths


def test_symlink_target_is_not_revealed(make_corpus, tmp_path: Path) -> None:
    root = make_corpus({"a.txt": "A"})
    os.symlink(tmp_path / "elsewhere" / "private.txt", root / "link.txt")
    out = corpus_tools(root).invoke("read", {"doc_id": "link.txt"})
    assert out.is_error and out.error_type == "PathOutsideCorpusError"
    assert "elsewhere" not in out.text and str(tmp_path) not in out.text
