"""The BrowseComp judge: verdicts stored with reasons; unparseable or failed verdicts never crash a run."""

from __future__ import annotations

from sleuth.errors import ModelConnectionError
from sleuth.evals.datasets.base import EvalQuestion
from sleuth.evals.judge import Verdict, judge_answer, judge_messages
from sleuth.evals.scoring import browsecomp_scorer
from sleuth.evals.systems import SystemOutput
from sleuth.llm.fake import ScriptedModel


def test_prompt_is_package_data_and_filled():
    msgs = judge_messages("Which school?", "It is Hill School.", "The Hill School")
    text = msgs[0]["content"]
    assert "Which school?" in text and "It is Hill School." in text and "The Hill School" in text
    assert '"correct"' in text and "{question}" not in text


def test_judged_verdict_is_recorded():
    model = ScriptedModel([{"correct": True, "reason": "same school", "extracted_answer": "Hill School"}])
    r = judge_answer(model, "Which school?", "It is Hill School.", "The Hill School")
    got = (r.status, r.correct, r.reason, r.extracted_answer, r.score)
    assert got == ("judged", True, "same school", "Hill School", 1.0)
    assert r.usage.calls == 1
    assert "The Hill School" in model.calls[0]["messages"][0]["content"]


def test_unparseable_verdict_is_recorded_as_unparsed():
    model = ScriptedModel(["I think it is right", "still prose", "more prose"])
    r = judge_answer(model, "q", "a", "b", retries=2)
    assert r.status == "unparsed" and r.correct is False and r.score == 0.0 and r.error
    assert r.usage.calls == 3  # the failed attempts are counted
    assert len(model.calls) == 3  # the retries were used


def test_model_failure_is_recorded_as_error_and_empty_response_is_wrong():
    r = judge_answer(ScriptedModel([ModelConnectionError("server died")]), "q", "a", "b")
    assert r.status == "error" and r.correct is None and "server died" in (r.error or "")
    r = judge_answer(ScriptedModel([]), "q", "  ", "b")
    assert r.status == "judged" and r.correct is False and r.reason == "no response"
    assert judge_answer(ScriptedModel([]), "q", "a", "").status == "skipped"


def test_browsecomp_scorer_counts_unparsed_as_wrong():
    q = EvalQuestion(id="1", question="Which school?", answers=["Hill School"], relevance={"a": 1}, gold_doc_ids=["a"])
    judge = ScriptedModel(["no json here"] * 2 + [Verdict(correct=True, reason="ok", extracted_answer="Hill School")])
    score = browsecomp_scorer(judge)
    m, details = score(q, SystemOutput(answer="Hill", ranking=["b", "a"]))
    assert m["accuracy"] == 0.0 and m["judge_unparsed"] == 1.0 and details["judge"]["status"] == "unparsed"
    assert m["recall@5"] == 1.0
    m, details = score(q, SystemOutput(answer="Hill School", ranking=["a"]))
    assert m["accuracy"] == 1.0 and details["judge"]["reason"] == "ok"


def test_a_failed_judge_scores_zero_and_is_counted_apart():
    # bug: a judge error dropped the question from the accuracy mean (accuracy over the judged ones only)
    from sleuth.evals.results import EvalRow, summarize

    q = EvalQuestion(id="1", question="Which school?", answers=["Hill School"], relevance={"a": 1}, gold_doc_ids=["a"])
    ok = browsecomp_scorer(ScriptedModel([Verdict(correct=True, reason="ok", extracted_answer="Hill School")]))
    failed = browsecomp_scorer(ScriptedModel([ModelConnectionError("judge server died")]))
    rows = []
    for i, scorer in enumerate([ok, failed]):
        m, details = scorer(q, SystemOutput(answer="Hill School", ranking=["a"]))
        rows.append(EvalRow(id=str(i), status="ok", metrics=m, details=details))
    assert rows[1].metrics["accuracy"] == 0.0 and rows[1].details["judge"]["status"] == "error"
    s = summarize(rows)
    assert s["metrics"]["accuracy"] == 0.5 and s["n_judge_errors"] == 1 and s["n_errors"] == 0
