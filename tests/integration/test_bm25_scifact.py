"""BM25 on SciFact (BEIR test, 300 queries): nDCG@10 within 0.01 of Anserini's 0.679, and the CLI end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import shared_path

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def scifact(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from sleuth.importers import import_corpus

    data = shared_path("beir", "scifact")
    dest = tmp_path_factory.mktemp("scifact") / "corpus"
    import_corpus(data / "corpus.jsonl", dest, progress=False)
    return data, dest


def test_ndcg_matches_anserini(scifact: tuple[Path, Path]) -> None:
    from ranx import Qrels, Run, evaluate

    from sleuth.corpus import Corpus
    from sleuth.retrieval import get_retriever

    data, dest = scifact
    corpus = Corpus(dest)
    r = get_retriever("bm25", corpus)
    qrels: dict[str, dict[str, int]] = {}
    for line in list((data / "qrels" / "test.tsv").open())[1:]:
        q, d, s = line.split()
        qrels.setdefault(q, {})[d] = int(s)
    queries = {o["_id"]: o["text"] for o in map(json.loads, (data / "queries.jsonl").open()) if o["_id"] in qrels}
    assert len(queries) == 300
    run = {q: {corpus.original_id(h.doc_id): h.score for h in r.search(t, 100)} for q, t in queries.items()}
    m = evaluate(Qrels(qrels), Run(run), ["ndcg@10", "recall@100"])
    assert abs(m["ndcg@10"] - 0.679) <= 0.01, m
    assert m["recall@100"] > 0.9, m


def test_cli_index_search_df(scifact: tuple[Path, Path]) -> None:
    _, dest = scifact
    sleuth = [sys.executable, "-m", "sleuth.cli.main"]
    out = subprocess.run([*sleuth, "index", str(dest), "--json"], capture_output=True, text=True, check=True)
    info = json.loads(out.stdout)
    assert info["documents"] == 5183 and info["status"] in ("up to date", "built")
    out = subprocess.run([*sleuth, "search", "microglia Alzheimer", "--corpus", str(dest), "--k", "3", "--json"],
                         capture_output=True, text=True, check=True)
    hits = json.loads(out.stdout)["hits"]
    assert len(hits) == 3 and all(h["text"] and h["source"] == "bm25" for h in hits)
    out = subprocess.run([*sleuth, "df", "microglia", "amyloid beta", "--corpus", str(dest), "--json"],
                         capture_output=True, text=True, check=True)
    terms = json.loads(out.stdout)["terms"]
    assert terms[0]["df"] > 0 and terms[1]["method"] == "token_ngram"
    bad = subprocess.run([*sleuth, "search", "  ", "--corpus", str(dest), "--json"], capture_output=True, text=True)
    assert bad.returncode == 2 and json.loads(bad.stdout)["error"] == "ToolArgumentError"
