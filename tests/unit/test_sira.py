"""SIRA query side with a scripted model: the sleuth form's filter decisions, weighted call, fallbacks and trace.
The reference form (the default) is tested in test_sira_reference.py."""

from __future__ import annotations

import numpy as np
import pytest

from sleuth.corpus import Corpus
from sleuth.errors import ConfigError, ToolArgumentError
from sleuth.llm.fake import ScriptedModel
from sleuth.retrieval import get_retriever
from sleuth.retrieval.bm25 import BM25Retriever
from sleuth.retrieval.sira import SiraParams, SiraRetriever, messages_for
from sleuth.tracing.tracer import MemoryTracer

# 20 documents: "protein" is in all of them (too common), "kinase inhibitor" in two.
DOCS = {f"d{i:02d}.txt": f"Protein study number {i} about cells and tissue." for i in range(20)}
DOCS["d03.txt"] = "Protein kinase inhibitor imatinib blocks BCR-ABL in leukemia cells."
DOCS["d07.txt"] = "A kinase inhibitor trial; protein levels of ABL fell."
DOCS["d11.txt"] = "Protein misfolding in prion disease; tissue damage in the brain."


@pytest.fixture()
def bm25(make_corpus) -> BM25Retriever:
    return BM25Retriever.open(Corpus(make_corpus(DOCS)))


def sira_with(bm25: BM25Retriever, *script, tracer=None, **params) -> SiraRetriever:  # type: ignore[no-untyped-def]
    return SiraRetriever(bm25, ScriptedModel(list(script)), params=SiraParams(**params), tracer=tracer)


def test_decisions_and_reasons(bm25: BM25Retriever) -> None:
    tracer = MemoryTracer()
    s = sira_with(bm25, {"phrases": ["kinase inhibitor", "protein", "zebrafish fins", "the of", "Kinase inhibitors",
                                     "leukemia drug", "drug"]}, tracer=tracer, max_df_ratio=0.2, weight=0.5,
                  max_phrases=10, form="sleuth")
    res = s.run("treatment of leukemia", 5)
    reasons = {d.phrase: d.reason for d in res.decisions}
    assert res.kept_phrases() == ["kinase inhibitor"]
    assert reasons["protein"].startswith("too common")
    assert reasons["zebrafish fins"].startswith("absent")
    assert reasons["the of"].startswith("no indexable")
    assert reasons["Kinase inhibitors"].startswith("duplicate")
    assert reasons["leukemia drug"].startswith("absent")  # "leukemia drug" never occurs contiguously
    assert reasons["drug"].startswith("absent")
    assert res.fallback is None
    assert res.hits[0].doc_id == "d03.txt" and res.hits[0].source == "sira"
    ev = tracer.of_kind("sira")
    assert len(ev) == 1
    assert ev[0].data["proposed"] == res.proposed
    assert [d["phrase"] for d in ev[0].data["kept"]] == ["kinase inhibitor"]
    assert {d["phrase"] for d in ev[0].data["rejected"]} == set(res.proposed) - {"kinase inhibitor"}


def test_phrase_already_in_query_adds_nothing(bm25: BM25Retriever) -> None:
    s = sira_with(bm25, {"phrases": ["kinase inhibitors"]}, max_df_ratio=0.5, form="sleuth")
    res = s.run("kinase inhibitor trial", 3)
    assert res.decisions[0].reason.startswith("adds nothing")
    assert res.fallback == "no proposed phrase passed the df filter"


def test_hits_equal_weighted_bm25(bm25: BM25Retriever) -> None:
    s = sira_with(bm25, {"phrases": ["kinase inhibitor", "prion disease"]}, max_df_ratio=0.5, weight=0.4,
                  form="sleuth")
    res = s.run("tissue damage", 20)
    idx = bm25.index
    expect = idx.score_vector(*idx.weighted_token_ids([("tissue damage", 1.0)]))
    for ph in ["kinase inhibitor", "prion disease"]:
        expect = expect + 0.4 * idx.score_vector(*idx.weighted_token_ids([(ph, 1.0)]))
    got = {h.doc_id: h.score for h in res.hits}
    for i, d in enumerate(idx.doc_ids):
        if expect[i] > 0:
            assert got[d] == pytest.approx(float(expect[i]), rel=1e-5)
    assert len(got) == int(np.count_nonzero(expect))


def test_model_weights_scale_the_expansion_weight(bm25: BM25Retriever) -> None:
    s = sira_with(bm25, {"phrases": [{"text": "kinase inhibitor", "weight": 0.5}, "prion disease"]},
                  max_df_ratio=0.5, weight=0.4, form="sleuth")
    kept = {d.phrase: d.weight for d in s.run("tissue", 3).kept}
    assert kept == {"kinase inhibitor": pytest.approx(0.2), "prion disease": pytest.approx(0.4)}


@pytest.mark.parametrize(
    "garbage",
    [
        "I think you should search for kinases.",  # no JSON at all
        '{"phrases": "kinase"',  # broken JSON
        '{"phrases": [{"text": "kinase inhibitor", "weight": "high"}]}',  # weight not a number
        '{"terms": ["kinase inhibitor"]}',  # wrong shape... validates as empty phrases
        '{"phrases": ' + str([f"p{i}" for i in range(11)]).replace("'", '"') + "}",  # more than 10
    ],
)
@pytest.mark.parametrize("form", ["sleuth", "reference"])
def test_fallback_to_plain_query_on_garbage(bm25: BM25Retriever, garbage: str, form: str) -> None:
    tracer = MemoryTracer()
    s = sira_with(bm25, garbage, garbage, tracer=tracer, form=form)  # the first attempt and one retry
    res = s.run("kinase inhibitor leukemia", 5)
    assert res.fallback
    assert res.decisions == [] and res.kept == []
    if form == "sleuth":  # the plain BM25 query
        plain = bm25.search("kinase inhibitor leukemia", 5)
    else:  # the reference scores the query alone on both tiers (search_with_expansion with an empty expansion)
        idx = bm25.index
        assert idx.bigrams is not None
        uni = [idx.vocab[t] for t in idx.analyzer.tokens("kinase inhibitor leukemia")]
        bi = idx.bigrams.pair_ids(uni)
        assert len(bi) == 1  # "kinas inhibitor" (d03, d07)
        scores, ids = idx.tier_topk(np.array(uni, np.int32), np.ones(len(uni), np.float32),
                                    np.array(bi, np.int32), np.ones(1, np.float32), 5)
        plain = idx.hits(scores, ids, "sira")
    assert [(h.doc_id, h.score) for h in res.hits] == [(h.doc_id, pytest.approx(h.score)) for h in plain]
    ev = tracer.of_kind("sira")[0]
    assert ev.data["fallback"] == res.fallback


def test_empty_query_is_an_error(bm25: BM25Retriever) -> None:
    s = sira_with(bm25)
    with pytest.raises(ToolArgumentError):
        s.run("  ", 5)


def test_all_stopword_query_with_good_phrase(bm25: BM25Retriever) -> None:
    s = sira_with(bm25, {"phrases": ["kinase inhibitor"]}, max_df_ratio=0.5)
    res = s.run("what is the", 5)
    assert res.kept_phrases() == ["kinase inhibitor"]
    assert res.hits and res.hits[0].doc_id in {"d03.txt", "d07.txt"}


def test_prompt_never_asks_for_the_answer() -> None:
    msgs = messages_for("Does imatinib treat leukemia?", 10, "sleuth")
    assert "never answer" in msgs[0]["content"]
    assert msgs[1]["content"] == "Query: Does imatinib treat leukemia?"


def test_reference_prompts_are_one_user_message_as_the_reference_sends_them() -> None:
    """query_v06 (the reference's enrich default) and query_multihop_v01 (its hotpotqa config): one user message
    with the query after "Query:" and the phrase limit filled in."""
    (msg,) = messages_for("Does imatinib treat leukemia?", 10, "reference")
    assert msg["role"] == "user" and "\nQuery:\nDoes imatinib treat leukemia?\n" in msg["content"]
    assert "Generate at most 10 phrases, 1-4 words each." in msg["content"]
    assert "that a correct answer document would contain but that is MISSING" in msg["content"]
    (multi,) = messages_for("Which university did the director of Jaws attend?", 10, "reference-multihop")
    assert "MULTIPLE documents" in multi["content"] and "Do NOT guess the answer." in multi["content"]
    assert SiraParams().prompt == "reference" and SiraParams().max_phrases == 10
    assert SiraParams(form="sleuth").prompt == "sleuth" and SiraParams(form="sleuth").max_phrases == 6


def test_registry(bm25: BM25Retriever) -> None:
    corpus = bm25.index.corpus
    assert get_retriever("bm25", corpus).search("kinase", 1)[0].doc_id in {"d03.txt", "d07.txt"}
    with pytest.raises(ConfigError):
        get_retriever("sira", corpus)
    with pytest.raises(ConfigError):
        get_retriever("nope", corpus)
    s = get_retriever("sira", corpus, model=ScriptedModel([{"phrases": ["prion disease"]}]),
                      sira={"max_df_ratio": 0.5})
    assert s.search("brain", 2)[0].doc_id == "d11.txt"
    s2 = get_retriever("sira", corpus, model=ScriptedModel([{"phrases": ["prion disease"]}]),
                       sira={"form": "sleuth", "max_df_ratio": 0.5})
    assert s2.params.filter == "sleuth" and s2.params.tiers == ("unigram",)  # type: ignore[attr-defined]


def test_fallback_usage_counts_failed_attempts(bm25: BM25Retriever) -> None:
    s = sira_with(bm25, "not json", "still not json")
    res = s.run("kinase", 3)
    assert res.fallback and res.usage.calls == 2 and res.usage.prompt_tokens > 0


def test_eval_system_counts_sira_model_calls_per_question(bm25: BM25Retriever) -> None:
    """The eval harness hands each question its own tracer: SIRA's model call shows up as tokens, one LLM call
    and a ``sira`` event with the kept phrases (an earlier version reported 0 tokens for SIRA runs)."""
    from sleuth.evals.datasets.base import EvalQuestion
    from sleuth.evals.systems import RetrievalSystem

    shared = MemoryTracer()
    s = sira_with(bm25, {"phrases": ["prion disease"]}, tracer=shared, max_df_ratio=0.5)
    out = RetrievalSystem(s, bm25.index.corpus, k=3)(EvalQuestion(id="q1", question="brain"))
    assert out.ranking[0] == "d11.txt"
    assert out.usage.calls == 1 and out.usage.prompt_tokens > 0 and out.count_llm_calls() == 1
    [ev] = [e for e in out.events if e.kind == "sira"]
    assert ev.data["kept"][0]["phrase"] == "prion disease"
    assert shared.events == []  # the per-question tracer replaced the constructor's for this call


def test_evals_pick_the_reference_prompt_per_set_as_its_configs_do() -> None:
    from sleuth.evals.build import Options, retriever_options, sira_prompt_for

    hot = Options(task="beir", data="/data/hotpotqa/pooled_open_ircot500", method="sira")
    assert sira_prompt_for(hot) == "reference-multihop"
    assert retriever_options(hot)["sira"] == {"prompt": "reference-multihop"}
    assert sira_prompt_for(Options(task="hotpotqa", data="x.jsonl", method="sira")) == "reference-multihop"
    assert sira_prompt_for(Options(task="beir", data="/data/beir/scifact", method="sira")) is None  # query_v06
    assert sira_prompt_for(Options(task="beir", data="/d/hotpotqa/p", method="sira", sira_form="sleuth")) is None
    assert sira_prompt_for(Options(task="beir", data="/d/hotpotqa/p", method="bm25")) is None
