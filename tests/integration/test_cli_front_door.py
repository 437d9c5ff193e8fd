"""The CLI as a user runs it, output redirected to files: --version, JSON-only stdout for usage errors, progress
lines in a log (not a bar, not on stdout), files created with the user's umask (022 and 077), NO_COLOR, and a
read-only corpus folder (search works from an index kept elsewhere, or says where to build one)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import SAMPLE_CORPUS

SLEUTH = [sys.executable, "-m", "sleuth.cli.main"]


def sleuth(*args: str, tmp: Path, env: dict[str, str] | None = None, umask: int | None = None
           ) -> tuple[int, str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SLEUTH_")}
    full = {**base, "SLEUTH_HOME": str(tmp / "home"), "NO_COLOR": "1", **(env or {})}
    out, err = tmp / "stdout.txt", tmp / "stderr.txt"

    def before() -> None:
        if umask is not None:
            os.umask(umask)

    with out.open("w") as o, err.open("w") as e:
        p = subprocess.run([*SLEUTH, *args], stdout=o, stderr=e, env=full, timeout=300, cwd=tmp, preexec_fn=before)
    return p.returncode, out.read_text(), err.read_text()


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_version_and_usage_errors_with_output_in_files(tmp_path: Path) -> None:
    from sleuth import __version__

    assert sleuth("--version", tmp=tmp_path)[:2] == (0, __version__ + "\n")
    rc, out, err = sleuth("search", "x", "-c", str(SAMPLE_CORPUS), "--k", "0", "--json", tmp=tmp_path)
    assert rc == 2 and err == ""
    assert json.loads(out)["error"] == "UsageError"
    rc, out, err = sleuth("grep", "(", "-c", str(SAMPLE_CORPUS), tmp=tmp_path)
    assert rc == 2 and out == "" and len(err.splitlines()) == 2 and "\x1b[" not in err  # NO_COLOR, not a terminal


@pytest.fixture()
def jsonl(tmp_path: Path) -> Callable[[int], Path]:
    def make(n: int) -> Path:
        src = tmp_path / "docs.jsonl"
        with src.open("w") as fh:
            for i in range(n):
                fh.write(json.dumps({"id": f"d{i}", "text": f"document {i} about white matter and tensors"}) + "\n")
        return src

    return make


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_imported_corpus_and_trace_page_follow_the_umask(tmp_path: Path, jsonl, react_trace, umask: int) -> None:
    dest = tmp_path / "imported"  # (tmp_path/corpus is react_trace's copy of the sample corpus)
    rc, out, err = sleuth("corpus", "import", str(jsonl(5)), str(dest), "--json", tmp=tmp_path, umask=umask)
    assert rc == 0, out + err
    assert mode(dest) == 0o777 & ~umask  # was 0o700 whatever the umask (tempfile.mkdtemp)
    assert mode(dest / ".sleuth" / "corpus.json") == 0o666 & ~umask
    assert {mode(p) for p in dest.glob("*.txt")} == {0o666 & ~umask}
    trace = react_trace()
    rc, _, err = sleuth("trace", "html", str(trace), "--out", str(tmp_path / "t.html"), tmp=tmp_path, umask=umask)
    assert rc == 0, err
    assert mode(tmp_path / "t.html") == 0o666 & ~umask  # was 0o600 (tempfile.mkstemp)


def test_long_import_logs_plain_progress_lines_on_stderr(tmp_path: Path, jsonl) -> None:
    rc, out, err = sleuth("corpus", "import", str(jsonl(20000)), str(tmp_path / "big"), "--json", tmp=tmp_path,
                          env={"SLEUTH_PROGRESS_INTERVAL": "0.2"})
    assert rc == 0, err
    assert json.loads(out)["documents"] == 20000  # stdout holds the result only
    lines = err.splitlines()
    assert lines and all(line.startswith("sleuth: import docs.jsonl (bytes): ") for line in lines), err
    assert "elapsed" in lines[0] and lines[-1].split(": ", 2)[2].startswith("done ")
    assert "\x1b[" not in err and "━" not in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a 0555 folder anyway (run as a normal user)")
def test_read_only_corpus_folder(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("white matter in newborns\n")
    (corpus / "b.txt").write_text("grey matter in adults\n")
    corpus.chmod(0o555)
    try:
        state = tmp_path / "index"
        rc, out, err = sleuth("search", "white", "-c", str(corpus), "--json", tmp=tmp_path)
        err_obj = json.loads(out)
        assert rc == 2 and err_obj["error"] == "IndexMissingError" and "read-only" in err_obj["message"]
        assert "--state-dir" in err_obj["hint"]
        rc, out, err = sleuth("index", str(corpus), "--state-dir", str(state), "--json", tmp=tmp_path)
        assert rc == 0, out + err
        rc, out, err = sleuth("search", "white", "-c", str(corpus), "--state-dir", str(state), "--json", tmp=tmp_path)
        assert rc == 0, out + err
        assert json.loads(out)["hits"][0]["doc_id"] == "a.txt" and not (corpus / ".sleuth").exists()
    finally:
        corpus.chmod(0o755)
