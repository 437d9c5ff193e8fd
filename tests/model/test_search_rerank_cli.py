"""`sleuth search --rerank icr` end to end: BM25 candidates reranked by attention of the embedded model's weights."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.model, pytest.mark.attention, pytest.mark.slow]


def test_search_rerank_icr_cli(sample_corpus: Path) -> None:
    pytest.importorskip("transformers", reason="ICR needs sleuth-search[attention]")
    p = subprocess.run(
        [sys.executable, "-m", "sleuth.cli.main", "search", "who designed the bridge over the river Vell",
         "-c", str(sample_corpus), "--index", "--rerank", "icr", "--candidates", "4", "--k", "2", "--json"],
        capture_output=True, text=True, timeout=900,
    )
    assert p.returncode == 0, p.stderr[-2000:]
    data = json.loads(p.stdout)
    assert data["rerank"] == "icr" and data["candidates"] == 4
    ids = [h["doc_id"] for h in data["hits"]]
    assert len(ids) == 2 and len(set(ids)) == 2
    assert "projects/kestrel_bridge.txt" in ids
