"""`sleuth enrich --ray local` (#13) with the real embedded model: the same records as the local path on the bundled
sample corpus (its first 4 documents; greedy decoding, one model server shared by the workers), written by the driver as they come;
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
pytestmark = [pytest.mark.model, pytest.mark.slow, pytest.mark.long]

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


@pytest.mark.timeout(1800)
def test_enrich_on_ray_gives_the_local_records(tmp_path: Path, local_model) -> None:  # noqa: ARG001 - weights
    a, b = tmp_path / "a", tmp_path / "b"
    for dest in (a, b):  # the files only (a demo run leaves an index beside them)
        shutil.copytree(SAMPLE, dest, ignore=shutil.ignore_patterns(".*"))
    local = enrich(a, "--concurrency", "1", "--limit", "4")
    on_ray = enrich(b, "--ray", "local", "--ray-workers", "2", "--limit", "4")
    assert local["enriched_now"] == on_ray["enriched_now"] == 4 and on_ray["errors"] == 0
    assert records(b) == records(a)
    assert all(proposed for proposed, _ in records(b).values())  # the model proposed phrases: equality can fail
    again = enrich(b, "--ray", "local", "--limit", "4")  # the next 4: the first ones are not sent again
    assert again["done_before"] == 4 and again["enriched_now"] == 4 and len(records(b)) == 8
