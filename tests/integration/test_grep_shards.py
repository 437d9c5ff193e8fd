"""Sharded grep (issue #13) against one ripgrep run over the whole corpus (`grep`), on generated corpora: flat
files at the root, folders of very different sizes, nested folders, a hidden file and folder, long lines, an HTML
file (searched in its converted text), a Latin-1 file; the same matches in the same order, the same totals, caps,
truncation notes and errors, for lines, files and count modes, globs, a path, context and per-document caps.
10k files always; 100k files (the issue's size) in the slow variant."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

WORDS = ("alpha", "beta", "gamma", "delta", "kestrel", "bridge", "river", "needle", "Needle", "haystack")


def generate(root: Path, n: int, seed: int = 13) -> Path:
    rng = random.Random(seed)
    folders = ["", "", "a", "a/deep", "a/deep/er", "b", "c.d", "big", "big", "big", "big", "z"]
    root.mkdir(parents=True)
    for i in range(n):
        folder = rng.choice(folders)
        lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))) for _ in range(rng.randint(1, 6))]
        if i % 997 == 0:
            lines.append("x" * 12_000 + " needle in a very long line " + "y" * 3000)
        ext = ".md" if i % 3 == 0 else ".txt"
        p = root / folder / f"f{i:06d}{ext}"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / ".hidden.txt").write_text("needle kestrel\n", encoding="utf-8")
    (root / ".git").mkdir()
    (root / ".git" / "x.txt").write_text("needle\n", encoding="utf-8")
    (root / "a" / "page.html").write_text("<html><title>Needle page</title><body><p>kestrel needle river</p>"
                                          "<script>needle()</script></body></html>", encoding="utf-8")
    (root / "latin.txt").write_bytes("caf\xe9 needle kestrel r\xe9sum\xe9\n".encode("latin-1"))
    return root


CASES = [
    {"pattern": "needle"},
    {"pattern": "needle", "max_matches": 2000, "context": 1},
    {"pattern": "kestrel bridge", "ignore_case": True, "max_matches": 300},
    {"pattern": "needle", "glob": "*.md", "max_matches": 500},
    {"pattern": "river", "glob": "!big/**", "max_count": 1, "max_matches": 1000},
    {"pattern": "gamma delta", "path": "a", "max_matches": 400},
    {"pattern": r"kestrel\s+river", "files_with_matches": True, "max_matches": 700},
    {"pattern": "haystack", "count": True, "max_matches": 900},
    {"pattern": "needle", "word_regexp": True, "fixed_strings": True, "path": "big"},
    {"pattern": "no such word anywhere"},
    {"pattern": "r.sum. |page", "ignore_case": True},
]


def _same(corpus, args, shards: int) -> None:  # type: ignore[no-untyped-def]
    from sleuth.tools.grep import grep
    from sleuth.tools.grep_shards import grep_sharded

    one = grep(corpus, args, timeout=120).model_dump(exclude={"seconds"})
    many = grep_sharded(corpus, args, shards=shards, timeout=120).model_dump(exclude={"seconds"})
    assert many == one, (args, shards)


def _check_corpus(root: Path, shard_counts: tuple[int, ...]) -> None:
    from sleuth.corpus import Corpus
    from sleuth.tools.grep import GrepArgs, grep

    corpus = Corpus(root)
    corpus.entries()  # converts the HTML file once
    first = grep(corpus, GrepArgs(pattern="needle", max_matches=2000))
    assert first.total_matches > 50 and first.long_lines > 0 and not first.errors
    assert [m.doc_id for m in first.matches][:1] == ["a/deep/er/" + first.matches[0].doc_id.split("/")[-1]]
    assert [m.doc_id for m in grep(corpus, GrepArgs(pattern="Needle page")).matches] == ["a/page.html"]
    assert [m.doc_id for m in grep(corpus, GrepArgs(pattern="caf. needle")).matches] == ["latin.txt"]
    assert not any(m.doc_id.startswith(".") for m in first.matches)
    for case in CASES:
        args = GrepArgs(**case)
        for n in shard_counts:
            _same(corpus, args, n)


@pytest.mark.slow
@pytest.mark.long
def test_sharded_grep_equals_one_run_10k(tmp_path: Path) -> None:
    _check_corpus(generate(tmp_path / "c", 10_000), (1, 2, 3, 8))


def test_sharded_grep_equals_one_run_small(tmp_path: Path) -> None:
    _check_corpus(generate(tmp_path / "c", 2_000), (1, 3, 5))


@pytest.mark.slow
@pytest.mark.long
def test_sharded_grep_equals_one_run_100k(tmp_path: Path) -> None:
    t0 = time.perf_counter()
    root = generate(tmp_path / "c", 100_000)
    print(f"generated 100k files in {time.perf_counter() - t0:.1f} s")
    _check_corpus(root, (2, 8))


def test_bad_shard_counts_and_one_document(tmp_path: Path) -> None:
    from sleuth.corpus import Corpus
    from sleuth.errors import ConfigError, InvalidPatternError
    from sleuth.tools.grep import GrepArgs
    from sleuth.tools.grep_shards import grep_sharded

    corpus = Corpus(generate(tmp_path / "c", 50))
    for bad in (0, -2, True, 10_000):
        with pytest.raises(ConfigError, match="grep shards must be a whole number"):
            grep_sharded(corpus, GrepArgs(pattern="needle"), shards=bad)
    with pytest.raises(InvalidPatternError, match="invalid regex"):
        grep_sharded(corpus, GrepArgs(pattern="(unclosed"), shards=3)
    _same(corpus, GrepArgs(pattern="needle", path="latin.txt"), 4)  # one document: one run
    _same(corpus, GrepArgs(pattern="needle", path="a/deep"), 4)


def test_files_mode_lists_every_matching_file(tmp_path: Path) -> None:
    """`--files-with-matches --null` prints paths separated by NUL, with no newline: grep once read that output as
    one 8 KiB line and lost every file past it (271 of 1,500 here)."""
    from sleuth.corpus import Corpus
    from sleuth.tools.grep import GrepArgs, grep

    root = tmp_path / "many"
    root.mkdir()
    for i in range(1500):
        (root / f"file_with_a_long_name_{i:04d}.txt").write_text("needle\n", encoding="utf-8")
    res = grep(Corpus(root), GrepArgs(pattern="needle", files_with_matches=True, max_matches=2000))
    assert res.total_docs == 1500 and res.files == sorted(p.name for p in root.iterdir())


def test_time_limit_is_the_whole_call(tmp_path: Path) -> None:
    from sleuth.corpus import Corpus
    from sleuth.errors import ToolTimeoutError
    from sleuth.tools.grep import GrepArgs
    from sleuth.tools.grep_shards import grep_sharded

    corpus = Corpus(generate(tmp_path / "c", 300))
    with pytest.raises(ToolTimeoutError, match="took longer than"):
        grep_sharded(corpus, GrepArgs(pattern="needle"), shards=3, timeout=1e-6)
