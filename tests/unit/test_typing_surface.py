"""The public surface is typed: ``sleuth``'s lazy names resolve to real types for a type checker, so mypy (with
the pydantic plugin, configured in pyproject.toml) catches a misspelled field and accepts correct usage.

Slow: mypy follows the imports into sleuth and its dependencies; with the project's ``.mypy_cache`` warm (``make
test`` runs mypy first) this takes seconds, cold it takes minutes."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SNIPPET = """\
import sleuth

corpus = sleuth.Corpus("examples/corpus")
result = sleuth.ask("Which ship?", corpus=corpus)
hit = sleuth.Hit(doc_id="a", {field}=1.0)
"""


def _mypy(tmp_path: Path, field: str) -> tuple[str, int]:
    api = pytest.importorskip("mypy.api")
    src = tmp_path / f"snippet_{field}.py"
    src.write_text(SNIPPET.format(field=field), encoding="utf-8")
    out, err, rc = api.run(
        ["--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", str(ROOT / ".mypy_cache"), str(src)]
    )
    return out + err, rc


@pytest.mark.slow
def test_mypy_sees_real_types_through_the_lazy_surface(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # mypy_path = "src" in the config is relative to the working directory
    out, rc = _mypy(tmp_path, "scor")
    assert rc == 1, out
    assert 'Unexpected keyword argument "scor" for "Hit"' in out, out
    out, rc = _mypy(tmp_path, "score")
    assert rc == 0, out
    assert "Success" in out, out
