"""`sleuth enrich --ray local` (#13) with the real embedded model: the same records as the local path on the bundled
sample corpus (greedy decoding, one model server shared by the workers), written by the driver as they come;
a rerun on Ray has nothing left to do. The Ray instance is the job's own, started on loopback and stopped."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="Ray is the `ray` extra (pip install 'sleuth-search[ray]')")
pytestmark = [pytest.mark.model, pytest.mark.slow]

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "corpus"
CLI = [sys.executable, "-c", "from sleuth.cli.main import main; main()"]


def records(corpus: Path) -> dict[str, tuple[list[str], list[str]]]:
    lines = (corpus / ".sleuth" / "enrich" / "enrich.jsonl").read_text().splitlines()
    recs = [json.loads(line) for line in lines]
    return {r["doc_id"]: (r["proposed"], r["kept"]) for r in recs if not r.get("error")}


def enrich(corpus: Path, *extra: str) -> dict:
    proc = subprocess.run([*CLI, "enrich", str(corpus), "--model", "local", "--index", "--json", *extra],
                          capture_output=True, text=True, timeout=1800, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_enrich_on_ray_gives_the_local_records(tmp_path: Path, local_model) -> None:  # noqa: ARG001 - weights
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(SAMPLE, a)
    shutil.copytree(SAMPLE, b)
    local = enrich(a, "--concurrency", "1")
    on_ray = enrich(b, "--ray", "local", "--ray-workers", "2")
    assert local["enriched_now"] == on_ray["enriched_now"] == 11 and on_ray["errors"] == 0
    assert records(b) == records(a)
    assert any(kept for _, kept in records(b).values())  # the filter kept something: the comparison can fail
    again = enrich(b, "--ray", "local")
    assert again["enriched_now"] == 0 and again["done_before"] == 11
