"""Shared fixtures: the bundled sample corpus, temporary corpora, and ../shared/data (skipped when absent)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE_CORPUS = REPO / "examples" / "corpus"
SHARED_DATA = Path(os.environ.get("SLEUTH_SHARED_DATA", REPO.parent / "shared" / "data"))
FIXTURES = Path(__file__).resolve().parent / "fixtures"

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture()
def sample_corpus(tmp_path: Path) -> Path:
    """A private copy of examples/corpus (tests may build indexes in it)."""
    dest = tmp_path / "corpus"
    shutil.copytree(SAMPLE_CORPUS, dest, ignore=shutil.ignore_patterns(".sleuth"))
    return dest


@pytest.fixture()
def make_corpus(tmp_path: Path):
    """make_corpus({"a.txt": "text", "sub/b.md": "..."}) -> a corpus folder."""

    def make(files: dict[str, str | bytes], name: str = "c") -> Path:
        root = tmp_path / name
        for rel, content in files.items():
            p = root / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                p.write_bytes(content)
            else:
                p.write_text(content, encoding="utf-8")
        root.mkdir(exist_ok=True)
        return root

    return make


def shared_path(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test with the reason."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"shared evaluation data not present: {p} (set SLEUTH_SHARED_DATA or place ../shared/data)")
    return p


@pytest.fixture()
def shared_data() -> Path:
    return shared_path()
