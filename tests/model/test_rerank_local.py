"""Rerankers with the real embedded model (Qwen2.5-Coder-0.5B-Instruct Q4_K_M): listwise, FIRST, and ICR on the
same weights in transformers. Tiny candidate lists, to keep the suite short."""

from __future__ import annotations

import pytest

from sleuth.errors import WeightsError
from sleuth.records import Hit
from sleuth.rerank import get_reranker
from sleuth.tracing.tracer import MemoryTracer

pytestmark = pytest.mark.model

DOCS = {
    "paris": "Paris is the capital and most populous city of France.",
    "tokyo": "Tokyo is the capital of Japan and its largest city.",
    "banana": "Bananas are elongated edible fruits produced by plants of the genus Musa.",
    "python": "Python is a high-level programming language created by Guido van Rossum.",
    "berlin": "Berlin is the capital of Germany and its largest city by population.",
}


def _hits(n: int = 5) -> list[Hit]:
    return [Hit(doc_id=k, text=v) for k, v in list(DOCS.items())[:n]]


def test_listwise_local_returns_a_full_permutation(local_model) -> None:
    tracer = MemoryTracer()
    out = get_reranker("listwise", local_model).rerank("Who created the Python language?", _hits(3), tracer=tracer)
    assert sorted(h.doc_id for h in out) == ["banana", "paris", "tokyo"]
    ev = tracer.of_kind("rerank")[0]
    assert ev.data["windows"] == 1
    llm = tracer.of_kind("llm")
    assert len(llm) == 1 and llm[0].usage.prompt_tokens > 50


def test_listwise_local_cut_off_answer_is_repaired(local_model) -> None:
    # two tokens cannot hold a 3-item permutation: the real model's partial answer is repaired and counted
    r = get_reranker("listwise", local_model, max_tokens=2)
    tracer = MemoryTracer()
    out = r.rerank("Which city is the capital of Japan?", _hits(3), tracer=tracer)
    assert sorted(h.doc_id for h in out) == ["banana", "paris", "tokyo"]
    data = tracer.of_kind("rerank")[0].data
    assert data["parse_failures"] == 1 and data["missing"] >= 2


def test_first_local_uses_logprobs_without_fallback(local_model) -> None:
    tracer = MemoryTracer()
    out = get_reranker("first", local_model).rerank("What fruit grows on Musa plants?", _hits(), tracer=tracer)
    assert sorted(h.doc_id for h in out) == sorted(DOCS)
    data = tracer.of_kind("rerank")[0].data
    assert data["fallbacks"] == 0, data["fallback_reasons"]
    assert data["scored"] >= 3  # the letters are among the first token's top log-probabilities
    assert len(tracer.of_kind("llm")) == 2  # the query call and the N/A calibration call, one token each
    assert out[0].doc_id == "banana"


@pytest.mark.attention
def test_icr_local_weights_rank_the_obvious_document_first() -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    try:
        r = get_reranker("icr").load()
    except WeightsError as e:
        pytest.skip(f"embedded model weights not installed: {e}")
    tracer = MemoryTracer()
    out = r.rerank("Who created the Python language?", _hits(), tracer=tracer)
    assert out[0].doc_id == "python"
    assert out[0].score > out[1].score
    assert tracer.of_kind("rerank")[0].data["windows"] == 1
    [llm] = tracer.of_kind("llm")  # the two forward passes, accounted as prompt tokens read, cost unmeasured
    assert llm.name == "icr_attention" and llm.usage.prompt_tokens > 50 and llm.usage.cost == "unmeasured"
    # non-English query and documents, with a duplicate: one window, each document once
    zh = [
        Hit(doc_id="beijing", text="北京是中华人民共和国的首都。"),
        Hit(doc_id="banana", text="香蕉是一种热带水果。"),
        Hit(doc_id="beijing", text="北京是中华人民共和国的首都。"),
    ]
    out = r.rerank("中国的首都是哪里?", zh)
    assert [h.doc_id for h in out][0] == "beijing" and len(out) == 2
