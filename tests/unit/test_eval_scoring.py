"""HotpotQA scoring of citations: supporting-paragraph recall counts the paragraphs the system cited (and was
shown) only; the supporting paragraphs it retrieved without citing are reported apart (``sp_retrieved_not_cited``),
in the row, the summary and the report. Each value is worked out by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from sleuth.evals import metrics as M
from sleuth.evals.datasets.base import EvalQuestion, EvalSet
from sleuth.evals.report import SP_NOTE, write_report
from sleuth.evals.results import read_rows
from sleuth.evals.runner import RunConfig, run_eval
from sleuth.evals.scoring import qa_scorer
from sleuth.evals.systems import SystemOutput
from sleuth.records import TraceEvent

GOLD = ["Rush (band)", "Neil Peart"]
Q = EvalQuestion(id="q1", question="Which band?", answers=["Rush"], supporting_titles=GOLD, gold_doc_ids=GOLD)


def to_doc(title: str) -> str:  # an imported HotpotQA corpus: the doc id of a title is "<title>.txt"
    return f"{title}.txt"


def shown(*titles: str) -> TraceEvent:
    """A retrieval step that put these paragraphs in the model's prompt (what sira and iter-retgen record)."""
    return TraceEvent(kind="retrieval", name="bm25", data={"hits": [{"doc_id": to_doc(t), "score": 1.0} for t in titles]})


def read(title: str) -> TraceEvent:
    return TraceEvent(kind="tool", name="read", args={"doc_id": to_doc(title)})


def score(out: SystemOutput):
    return qa_scorer(to_doc_id=to_doc)(Q, out)


def test_retrieved_not_cited_by_hand():
    # gold {A, B, C}; seen {A, B, X}; cited {A}: B was retrieved and not cited -> 1/3
    assert M.retrieved_not_cited(["A", "B", "C"], ["A", "B", "X"], ["A"]) == {"sp_retrieved_not_cited": 1 / 3}
    assert M.retrieved_not_cited(["A", "A"], ["A"], []) == {"sp_retrieved_not_cited": 1.0}  # gold deduplicated
    assert M.retrieved_not_cited([], ["A"], []) == {}


def test_recall_counts_cited_passages_only():
    # both gold paragraphs shown, one cited: sp_recall 1/2 (not 1), the other one is retrieved-not-cited
    m, details = score(SystemOutput(answer="Rush", cited=["Neil Peart"], events=[shown("Neil Peart", "Rush (band)", "Toto")]))
    assert (m["sp_precision"], m["sp_recall"], m["sp_em"]) == (1.0, 0.5, 0.0)
    assert m["sp_retrieved_not_cited"] == 0.5 and details == {"retrieved_not_cited": ["Rush (band)"]}
    # sp_recall + sp_retrieved_not_cited = the supporting paragraphs the model saw
    assert m["sp_recall"] + m["sp_retrieved_not_cited"] == m["evidence_seen"] == 1.0


def test_a_system_that_cites_nothing_has_zero_sp_recall_and_its_retrievals_apart():
    # iter-retgen in the paper's form: an answer, no citations; both gold paragraphs were in its passages
    m, details = score(SystemOutput(answer="Rush", cited=[], events=[shown("Rush (band)", "Toto"), shown("Neil Peart")]))
    assert (m["sp_precision"], m["sp_recall"], m["sp_f1"]) == (0.0, 0.0, 0.0)
    assert m["sp_retrieved_not_cited"] == 1.0 and details["retrieved_not_cited"] == GOLD
    assert m["em"] == 1.0


def test_a_cited_paragraph_the_model_never_saw_is_not_counted_and_is_noted():
    # it cites both gold titles but only Neil Peart reached it (read); Rush (band) is a guess, not evidence
    m, details = score(SystemOutput(answer="Rush", cited=["Neil Peart", "Rush (band)"], events=[read("Neil Peart")]))
    assert (m["sp_precision"], m["sp_recall"]) == (1.0, 0.5)
    assert details["cited_unseen"] == ["Rush (band)"] and m["sp_retrieved_not_cited"] == 0.0


def test_without_a_trace_citations_count_as_given():
    m, details = score(SystemOutput(answer="Rush", cited=["Neil Peart", "Toto"]))
    assert (m["sp_precision"], m["sp_recall"]) == (0.5, 0.5)
    assert "sp_retrieved_not_cited" not in m and details == {}


def test_retrieval_mode_has_no_sp_metrics():
    m, _ = score(SystemOutput(ranking=[to_doc("Neil Peart")]))
    assert not any(k.startswith("sp_") for k in m)


@pytest.fixture()
def qa_set() -> EvalSet:
    qs = [Q, Q.model_copy(update={"id": "q2"})]
    return EvalSet(name="toy", kind="qa", questions=qs, checksum="abc")


def test_rows_summary_and_report_carry_the_column(tmp_path: Path, qa_set: EvalSet):
    def system(q: EvalQuestion) -> SystemOutput:  # q1 cites one of two seen; q2 cites nothing
        cited = ["Neil Peart"] if q.id == "q1" else []
        return SystemOutput(answer="Rush", cited=cited, events=[shown("Neil Peart", "Rush (band)")])

    config = RunConfig(task="hotpotqa", data_checksum="abc", system={"agent": "iter-retgen"})
    res = run_eval(qa_set, system, qa_scorer(to_doc_id=to_doc), tmp_path / "r1", config, primary="f1", progress=False)
    rows = {r.id: r for r in read_rows(tmp_path / "r1")}
    assert rows["q1"].metrics["sp_recall"] == 0.5 and rows["q1"].metrics["sp_retrieved_not_cited"] == 0.5
    assert rows["q2"].metrics["sp_recall"] == 0.0 and rows["q2"].metrics["sp_retrieved_not_cited"] == 1.0
    assert rows["q2"].details["retrieved_not_cited"] == GOLD
    assert res.summary["metrics"]["sp_recall"] == 0.25 and res.summary["metrics"]["sp_retrieved_not_cited"] == 0.75
    write_report([tmp_path / "r1"], tmp_path / "rep")
    md = (tmp_path / "rep" / "report.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| run |"))
    cols = [c.strip() for c in header.strip("|").split("|")]
    row = next(line for line in md.splitlines() if line.startswith("| r1 |"))
    values = dict(zip(cols, [c.strip() for c in row.strip("|").split("|")], strict=True))
    assert values["sp_recall"] == "0.250" and values["sp_retrieved_not_cited"] == "0.750"
    assert SP_NOTE in md
    assert "sp_retrieved_not_cited is the share" in (tmp_path / "rep" / "report.html").read_text()
