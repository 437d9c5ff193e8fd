"""The `sleuth` command as a user runs it (a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import SAMPLE_CORPUS, shared_path

SLEUTH = [sys.executable, "-m", "sleuth.cli.main"]


def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([*SLEUTH, *args], capture_output=True, text=True, timeout=120)
    if ok:
        assert p.returncode == 0, p.stderr
    return p


def test_grep_text_and_json() -> None:
    p = run("grep", "Tidewatch", "--corpus", str(SAMPLE_CORPUS))
    assert "projects/tidewatch.md" in p.stdout
    data = json.loads(run("grep", "Tidewatch", "--corpus", str(SAMPLE_CORPUS), "--json", "-n", "2").stdout)
    assert len(data["matches"]) == 2 and data["total_matches"] > 2 and data["not_shown_matches"] > 0


def test_read_lines_and_ls() -> None:
    p = run("read", "places/dunmore.md", "--corpus", str(SAMPLE_CORPUS), "--lines", "1:1")
    assert p.stdout.strip() == "1| # Dunmore"
    data = json.loads(run("ls", "--corpus", str(SAMPLE_CORPUS), "--json").stdout)
    assert data["total"] == 11


def test_errors_exit_2_with_hint() -> None:
    p = run("grep", "(", "--corpus", str(SAMPLE_CORPUS), ok=False)
    assert p.returncode == 2 and "InvalidPatternError" in p.stderr and "hint" in p.stderr
    p = run("read", "../../etc/passwd", "--corpus", str(SAMPLE_CORPUS), "--json", ok=False)
    assert p.returncode == 2 and json.loads(p.stdout)["error"] == "PathOutsideCorpusError"
    p = run("ls", "--corpus", "/definitely/not/here", ok=False)
    assert p.returncode == 2 and "CorpusNotFoundError" in p.stderr


def test_corpus_import_beir_scifact(tmp_path: Path) -> None:
    src = shared_path("beir", "scifact")
    data = json.loads(run("corpus", "import", str(src), str(tmp_path / "sf"), "--json").stdout)
    assert data["documents"] == 5183 and data["format"] == "beir"
    hit = json.loads(run("grep", "-F", "diffusion tensor", "--corpus", str(tmp_path / "sf"), "--json", "-l").stdout)
    assert hit["total_docs"] > 0


def test_cli_start_does_not_import_heavy_modules() -> None:
    code = ("import sys; from sleuth.cli import main; main.register_all(); "
            "heavy = [m for m in ('litellm', 'torch', 'transformers', 'bm25s', 'langgraph', 'openai', 'numpy') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", out.stdout
