"""Metrics, each checked against a value worked out by hand."""

from __future__ import annotations

import math

import pytest

from sleuth.evals import metrics as M
from sleuth.records import TraceEvent


def test_normalize_answer_official_rules():
    # lower-case, punctuation removed, articles removed, whitespace collapsed
    assert M.normalize_answer("The  Eiffel-Tower!") == "eiffeltower"
    assert M.normalize_answer("An apple, a day") == "apple day"
    assert M.normalize_answer("Theatre") == "theatre"  # 'the' only as a whole word


def test_exact_match_and_f1_by_hand():
    assert M.exact_match("the Eiffel Tower.", "Eiffel Tower") == 1.0
    # pred tokens [barack, obama, jr], gold [barack, obama]: P = 2/3, R = 1, F1 = 2*(2/3)/(5/3) = 0.8
    f1, p, r = M.answer_f1("Barack Obama Jr", "Barack Obama")
    assert (round(f1, 6), round(p, 6), r) == (0.8, round(2 / 3, 6), 1.0)
    # yes/no: any mismatch is 0 even when tokens overlap
    assert M.answer_f1("yes", "no")[0] == 0.0
    assert M.answer_f1("no it is not", "no")[0] == 0.0
    assert M.answer_f1("no", "no")[0] == 1.0


def test_answer_scores_take_the_best_gold_and_handle_missing():
    s = M.answer_scores("Chief of Protocol", ["ambassador", "Chief of Protocol of the United States"])
    # best gold: 3 shared tokens [chief, of, protocol] of pred 3, gold 7 (the removed): P 1, R 3/6
    assert s["em"] == 0.0 and s["answer_precision"] == 1.0 and s["answer_recall"] == pytest.approx(3 / 6)
    assert M.answer_scores(None, ["x"])["f1"] == 0.0


def test_supporting_paragraphs_prf():
    s = M.supporting_paragraphs(["A", "B", "C"], ["A", "D"])
    assert s == {"sp_precision": 1 / 3, "sp_recall": 0.5, "sp_f1": pytest.approx(0.4), "sp_em": 0.0}
    assert M.supporting_paragraphs(["A", "D"], ["D", "A"])["sp_em"] == 1.0
    assert M.supporting_facts([["A", 0], ["B", 1]], [("A", 0)])["sf_precision"] == 0.5


def test_ndcg_at_10_by_hand():
    # relevant d1 at rank 1, d3 at rank 3: DCG = 1 + 1/log2(4) = 1.5; IDCG = 1 + 1/log2(3)
    got = M.ranking_scores({"d1": 1, "d3": 1}, ["d1", "d2", "d3"], ["ndcg@10"])["ndcg@10"]
    assert got == pytest.approx(1.5 / (1 + 1 / math.log2(3)))
    # graded (trec_eval linear gain): d2 rel 2 at rank 2, d1 rel 1 at rank 1: DCG = 1 + 2/log2(3); IDCG = 2 + 1/log2(3)
    got = M.ranking_scores({"d1": 1, "d2": 2}, ["d1", "d2"], ["ndcg@10"])["ndcg@10"]
    assert got == pytest.approx((1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3)))


def test_recall_at_k_and_mrr_by_hand():
    rel = {"a": 1, "b": 1, "c": 1, "d": 1}
    s = M.ranking_scores(rel, ["x", "a", "y", "b", "c"], ["recall@2", "recall@5", "mrr@10"])
    assert s["recall@2"] == 0.25  # 1 of 4 relevant in the top 2
    assert s["recall@5"] == 0.75
    assert s["mrr@10"] == 0.5  # first relevant at rank 2
    assert M.ranking_scores({"a": 1}, ["x", "y", "a"], ["mrr@10"])["mrr@10"] == pytest.approx(1 / 3)
    assert M.ranking_scores({"a": 1}, [], ["mrr@10"]) == {"mrr@10": 0.0}
    assert M.ranking_scores({}, ["a"], ["mrr@10"]) == {}


def test_ranking_order_is_the_systems_even_with_equal_scores():
    # rank-derived scores: the second of two documents stays second
    assert M.rank_scores(["b", "a", "b"]) == {"b": 3.0, "a": 2.0}
    assert M.ranking_scores({"a": 1}, ["b", "a"], ["mrr@10"])["mrr@10"] == 0.5


def test_ranking_scores_many_keeps_query_order():
    out = M.ranking_scores_many({"z": {"a": 1}, "b": {"c": 1}}, {"z": ["a"], "b": ["x", "c"]}, ["mrr@10"])
    assert out == {"mrr@10": [1.0, 0.5]}


def test_sufficiency_at_k():
    assert M.sufficiency_at_k(["t1", "t2"], ["t2", "x", "t1"], 3) == 1.0
    assert M.sufficiency_at_k(["t1", "t2"], ["t2", "x", "t1"], 2) == 0.0
    assert M.sufficiency_at_k([], ["t1"], 5) == 0.0


def test_evidence_recall_from_trace_events():
    events = [
        TraceEvent(kind="tool", name="grep", args={"pattern": "x"}, preview="Alpha.txt:3: ... Beta.txt:9: ...",
                   data={"truncated": False, "doc_ids": ["Alpha.txt", "Beta.txt"]}),
        TraceEvent(kind="tool", name="read", args={"doc_id": "Alpha.txt"}, preview="Alpha ..."),
        TraceEvent(kind="tool", name="read", args={"doc_id": "Gamma.txt"}, error="DocumentNotFoundError"),
        TraceEvent(kind="llm", name="chat", args={"doc_id": "Gamma.txt"}),
    ]
    assert M.docs_read(events) == ["Alpha.txt"]
    got = M.evidence_recall(events, ["Alpha", "Beta", "Gamma"], to_doc_id=lambda t: f"{t}.txt")
    assert got == {"evidence_read": pytest.approx(1 / 3), "evidence_seen": pytest.approx(2 / 3)}
    assert M.evidence_recall(events, []) == {}
    # a strategy graph's retrieval step (sira, iter-retgen) shows its passages to the model: seen, not read
    retrieval = TraceEvent(kind="retrieval", name="bm25", data={"hits": [{"doc_id": "Gamma.txt", "score": 1.0}]})
    got = M.evidence_recall([*events, retrieval], ["Alpha", "Beta", "Gamma"], to_doc_id=lambda t: f"{t}.txt")
    assert got == {"evidence_read": pytest.approx(1 / 3), "evidence_seen": pytest.approx(1.0)}


def test_precision_map_and_unknown_metric():
    s = M.ranking_scores({"a": 1, "b": 1}, ["a", "x", "b", "y"], ["precision@2", "map@10"])
    assert s["precision@2"] == 0.5
    assert s["map@10"] == pytest.approx((1 / 1 + 2 / 3) / 2)  # AP: precision at each relevant rank, over 2 relevant
    from sleuth.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown ranking metric"):
        M.ranking_scores({"a": 1}, ["a"], ["ndcg"])


def test_evidence_seen_is_exact_doc_ids_not_substrings():
    # bug: "Texas.txt" counted as seen when "Paris, Texas.txt" was shown (substring search over the text)
    shown = TraceEvent(kind="tool", name="search", args={"query": "texas"},
                       preview="1. Paris, Texas.txt (score 3.1): ...", data={"doc_ids": ["Paris, Texas.txt"]})
    retrieval = TraceEvent(kind="retrieval", name="bm25", preview="Paris, Texas.txt",
                           data={"hits": [{"doc_id": "Paris, Texas.txt", "score": 2.0}]})
    for events in ([shown], [retrieval]):
        assert M.evidence_recall(events, ["Texas.txt"])["evidence_seen"] == 0.0
        assert M.evidence_recall(events, ["Paris, Texas.txt"])["evidence_seen"] == 1.0
    # a result's text (beyond the 300-character preview too) is not searched; only its structured doc ids count
    text_only = TraceEvent(kind="tool", name="grep", preview="Texas.txt:1: ...")
    assert M.evidence_recall([text_only], ["Texas.txt"])["evidence_seen"] == 0.0
    # a failed call, and an ls listing (names, not text), show no evidence
    failed = TraceEvent(kind="tool", name="search", error="bad", data={"doc_ids": ["Texas.txt"]})
    listing = TraceEvent(kind="tool", name="ls", data={"doc_ids": ["Texas.txt"]})
    assert M.evidence_recall([failed, listing], ["Texas.txt"])["evidence_seen"] == 0.0


def test_tool_events_record_the_doc_ids_a_real_search_showed(tmp_path):
    from sleuth.corpus import Corpus
    from sleuth.retrieval.bm25 import BM25Retriever
    from sleuth.tools.base import Toolkit
    from sleuth.tools.grep import grep_tool
    from sleuth.tools.search import search_tools
    from sleuth.tracing.tracer import MemoryTracer

    (tmp_path / "Paris, Texas.txt").write_text("Paris, Texas is a 1984 road movie by Wim Wenders.\n" * 30, "utf-8")
    (tmp_path / "Texas.txt").write_text("Texas is a state in the South Central United States.\n", "utf-8")
    (tmp_path / "Wim Wenders.txt").write_text("Wim Wenders is a German filmmaker; he directed a road movie.\n", "utf-8")
    corpus = Corpus(tmp_path)
    kit = Toolkit([*search_tools(corpus, {"bm25": BM25Retriever.open(corpus)}), grep_tool(corpus)])
    tracer = MemoryTracer()
    kit.invoke("search", {"query": "road movie Wenders", "k": 2}, tracer=tracer)
    kit.invoke("grep", {"pattern": "filmmaker"}, tracer=tracer)
    search_ev, grep_ev = tracer.events
    assert set(search_ev.data["doc_ids"]) == {"Paris, Texas.txt", "Wim Wenders.txt"}
    assert grep_ev.data["doc_ids"] == ["Wim Wenders.txt"]
    got = M.evidence_recall(tracer.events, ["Texas.txt", "Wim Wenders.txt"])
    assert got == {"evidence_read": 0.0, "evidence_seen": 0.5}


def test_means_count_errored_questions_as_zero():
    got = M.means([{"f1": 1.0, "em": 1.0}, {"f1": 0.5}], n_errors=2)
    assert got == {"f1": 0.375, "em": pytest.approx(1 / 3, abs=1e-4)}
    assert M.means([{"judge_unparsed": 1.0}], n_errors=3) == {"judge_unparsed": 1.0}  # a diagnostic, not a score
    assert M.means([], n_errors=2) == {}


def test_drop_identical_ids_as_beir_does():
    assert M.drop_identical("q1", ["q1", "d2", "q1x"]) == ["d2", "q1x"]
