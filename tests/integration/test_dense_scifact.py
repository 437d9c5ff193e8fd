"""HNSW recall against exact search on real MiniLM embeddings of SciFact (2,000 titles and 100 claims, to keep the
test short: ~10 s on a quiet 2-core machine). benchmarks/dense_speed.py measures recall at 100k."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import shared_path

pytest.importorskip("sentence_transformers", reason="needs sleuth[dense] (sentence-transformers)")
pytestmark = [pytest.mark.data, pytest.mark.slow]


def test_hnsw_recall_on_real_embeddings() -> None:
    from sleuth.retrieval.embeddings import get_embedder
    from sleuth.retrieval.vector_index import ExactIndex, build_vector_index

    folder = shared_path("beir", "scifact")
    titles = [json.loads(line).get("title", "") for line in (folder / "corpus.jsonl").open(encoding="utf-8")][:2000]
    claims = [json.loads(line)["text"] for line in (folder / "queries.jsonl").open(encoding="utf-8")][:100]
    emb = get_embedder("minilm")
    docs, queries = emb.embed(titles), emb.embed(claims)
    assert docs.shape == (2000, 384)
    exact = ExactIndex(docs)
    hnsw = build_vector_index(docs, "auto", threshold=1000)  # force the approximate index at this size
    assert hnsw.kind == "hnsw"
    _, e_rows = exact.search(queries, 10)
    h_scores, h_rows = hnsw.search(queries, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(e_rows.tolist(), h_rows.tolist(), strict=True)])
    assert recall >= 0.95, f"HNSW recall@10 {recall:.3f} against exact search"
    # the scores HNSW reports are the true inner products of the rows it returns
    assert h_scores[0] == pytest.approx(docs[h_rows[0]] @ queries[0], abs=1e-4)
