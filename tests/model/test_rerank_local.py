"""Rerankers with the real embedded model (Qwen2.5-Coder-0.5B-Instruct Q4_K_M): listwise, FIRST (the paper form's
prefill checked against the server's raw completion; the calibrated variant), and ICR on the same weights in
transformers. Tiny candidate lists, to keep the suite short."""

from __future__ import annotations

import itertools
import json
import urllib.request

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


def _raw_next_token(model, messages: list[dict], prefill: str, n_probs: int) -> dict[str, float]:
    """The reference's computation on the same server, without sleuth's client: the chat-templated prompt
    (llama.cpp's /apply-template, add_generation_prompt) plus the prefill, one token from /completion, its top
    ``n_probs`` log-probabilities."""
    model.start()
    state = model.server.read_state()
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {state['token']}"}

    def post(path: str, body: dict) -> dict:
        rq = urllib.request.Request(state["url"] + path, data=json.dumps(body).encode(), headers=headers)
        with urllib.request.urlopen(rq, timeout=300) as r:
            return json.loads(r.read())

    prompt = post("/apply-template", {"messages": messages})["prompt"]
    out = post("/completion", {"prompt": prompt + prefill, "n_predict": 1, "n_probs": n_probs, "temperature": 0,
                               "cache_prompt": True})
    return {t["token"]: t["logprob"] for t in out["completion_probabilities"][0]["top_logprobs"]}


FOUR = ["paris", "python", "tokyo", "banana"]  # the answer (python) second


def test_first_paper_local_prefill_is_the_references_computation(local_model) -> None:
    # FIRST's chat call with the trailing "[" must be what the reference computes: the templated prompt + "[",
    # the next token's log-probabilities, identifier letters ranked by them
    r = get_reranker("first", local_model)
    hits = [Hit(doc_id=k, text=DOCS[k]) for k in FOUR]
    tracer = MemoryTracer()
    res = r.run("Who created the Python language?", hits, tracer=tracer)
    [llm] = tracer.of_kind("llm")
    assert llm.usage.completion_tokens == 1 and llm.usage.prompt_tokens > 100
    assert res.stats["variant"] == "paper" and res.stats["scored"] == 4 and res.stats["unscored_windows"] == 0
    top = _raw_next_token(local_model, r.messages("Who created the Python language?",
                                                  [DOCS[k] for k in FOUR]), "[", 30)
    letters = {t: lp for t, lp in top.items() if len(t) == 1 and t in "ABCD"}
    assert len(letters) == 4  # the prefill was continued: the next token is an identifier, not "[" again
    raw = {FOUR["ABCD".index(t)]: lp for t, lp in letters.items()}
    order = [h.doc_id for h in res.hits]
    # best first by the raw log-probabilities (0.02 of slack: llama.cpp's batching moves them by ~0.001)
    assert all(raw[a] >= raw[b] - 0.02 for a, b in itertools.pairwise(order)), (order, raw)


@pytest.mark.xfail(strict=True, reason=(
    "measured: Qwen2.5-Coder-0.5B (not fine-tuned for FIRST) puts the paper form's first-token mass on the last "
    "letter: the answer came first in 2 of 8 arrangements of two 4-passage cases, each time when it was last "
    "(docs/results/rerank.md). Strict: a model that passes turns this red, and the marker goes."))
def test_first_paper_local_ranks_the_obvious_passage_first(local_model) -> None:
    hits = [Hit(doc_id=k, text=DOCS[k]) for k in FOUR]
    out = get_reranker("first", local_model).rerank("Who created the Python language?", hits)
    assert out[0].doc_id == "python"


def test_first_sleuth_best_local_ranks_the_obvious_passage_first(local_model) -> None:
    tracer = MemoryTracer()
    r = get_reranker("first", local_model, variant="sleuth-best")
    out = r.rerank("Who created the Python language?", [Hit(doc_id=k, text=DOCS[k]) for k in FOUR], tracer=tracer)
    data = tracer.of_kind("rerank")[0].data
    assert data["variant"] == "sleuth-best" and data["fallbacks"] == 0 and data["scored"] >= 3
    assert len(tracer.of_kind("llm")) == 2  # the query call and the N/A calibration call, one token each
    assert out[0].doc_id == "python"


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
