"""The eval harness's retrieval system over a real BM25 index and a real reranker (scripted model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sleuth.corpus import Corpus
from sleuth.errors import ModelConnectionError
from sleuth.evals.datasets.base import EvalQuestion
from sleuth.evals.systems import RetrievalSystem
from sleuth.llm.fake import ScriptedModel
from sleuth.rerank.listwise import ListwiseReranker
from sleuth.retrieval.bm25 import BM25Retriever

DOCS = {
    "a.txt": "Imatinib is a kinase inhibitor used in chronic myeloid leukemia.",
    "b.txt": "Leukemia incidence in children.",
    "c.txt": "Brain imaging of leukemia patients.",
}


@pytest.fixture()
def corpus(tmp_path: Path) -> Corpus:
    for name, text in DOCS.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return Corpus(tmp_path)


def test_reranker_bug_surfaces_once_and_nothing_reruns(corpus: Corpus) -> None:
    """A TypeError raised inside a reranker (a real bug) used to be read as "this reranker takes no tracer": the
    system reranked a second time without the tracer, hid the first error and did the work twice."""
    model = ScriptedModel([TypeError("bug inside the model adapter")], default="[1] > [2] > [3]")
    system = RetrievalSystem(BM25Retriever.open(corpus), corpus, k=3, reranker=ListwiseReranker(model))
    with pytest.raises(TypeError, match="bug inside the model adapter"):
        system(EvalQuestion(id="q1", question="leukemia"))
    assert len(model.calls) == 1


def test_reranker_model_error_surfaces_typed(corpus: Corpus) -> None:
    model = ScriptedModel([ModelConnectionError("server went away", hint="restart it")])
    system = RetrievalSystem(BM25Retriever.open(corpus), corpus, k=3, reranker=ListwiseReranker(model))
    with pytest.raises(ModelConnectionError):
        system(EvalQuestion(id="q1", question="leukemia"))
    assert len(model.calls) == 1


def test_rerank_usage_and_order_per_question(corpus: Corpus) -> None:
    model = ScriptedModel(default="[3] > [1] > [2]")
    system = RetrievalSystem(BM25Retriever.open(corpus), corpus, k=3, reranker=ListwiseReranker(model))
    out = system(EvalQuestion(id="q1", question="leukemia"))
    first_stage = [h.doc_id for h in BM25Retriever.open(corpus).search("leukemia", 3)]
    assert out.ranking == [first_stage[2], first_stage[0], first_stage[1]]
    assert out.usage.calls == 1 and out.usage.prompt_tokens > 0 and out.usage.cost == "unmeasured"
    [ev] = [e for e in out.events if e.kind == "rerank"]
    assert ev.data["windows"] == 1
