"""SIRA with the real embedded model: one query over the sample corpus; every proposed phrase gets a decision."""

from __future__ import annotations

from pathlib import Path

import pytest

from sleuth.corpus import Corpus
from sleuth.retrieval.bm25 import BM25Retriever
from sleuth.retrieval.sira import SiraParams, SiraRetriever
from sleuth.tracing.tracer import MemoryTracer

pytestmark = pytest.mark.model


def test_sira_with_local_model(sample_corpus: Path, local_model) -> None:
    model = local_model
    tracer = MemoryTracer()
    bm25 = BM25Retriever.open(Corpus(sample_corpus))
    sira = SiraRetriever(bm25, model, params=SiraParams(max_phrases=4, max_df_ratio=0.5), tracer=tracer)
    query = "Who designed the bridge over the river?"
    res = sira.run(query, 5)
    assert res.usage.calls >= 1 and res.usage.prompt_tokens > 0
    event = tracer.of_kind("sira")[0]
    assert event.data["proposed"] == res.proposed
    assert res.stats["form"] == "reference" and res.stats["tiers"] == ["unigram", "bigram"]
    if res.fallback and not res.proposed:  # the model's output was unusable: the query alone, recorded
        assert [h.doc_id for h in res.hits] == [h.doc_id for h in sira.combine(query, [], 5)]
    else:
        assert len(res.decisions) == len(res.proposed)
        assert all(d.reason for d in res.decisions)
    assert res.hits, "the plain query alone matches documents of the sample corpus"
