"""Per-question scoring for each task kind. A scorer is ``(EvalQuestion, SystemOutput) -> (metrics, details)``.

``metrics`` are numbers averaged over questions in reports; ``details`` are stored in the row as they are
(judge verdicts and reasons, evidence lists).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sleuth.evals import metrics as M
from sleuth.evals.datasets.base import EvalQuestion
from sleuth.evals.systems import SystemOutput

Scored = tuple[dict[str, float], dict[str, Any]]
Scorer = Callable[[EvalQuestion, SystemOutput], Scored]

PRIMARY = {"qa": "f1", "retrieval": "ndcg@10", "tools": "ndcg@10", "browsecomp": "accuracy"}
RETRIEVAL_METRICS = ("ndcg@10", "mrr@10", "recall@10", "recall@100")
TOOL_METRICS = ("ndcg@10", "recall@5", "recall@10")
SUFFICIENCY_KS = (5, 10)


def _evidence(q: EvalQuestion, out: SystemOutput, to_doc_id: Callable[[str], str] | None) -> dict[str, float]:
    if not out.events or not q.gold_doc_ids:
        return {}
    return M.evidence_recall(out.events, q.gold_doc_ids, to_doc_id=to_doc_id)


def _safe(fn: Callable[[str], str] | None) -> Callable[[str], str] | None:
    if fn is None:
        return None

    def wrapped(x: str) -> str:
        try:
            return fn(x)
        except Exception:
            return x

    return wrapped


def _supporting(q: EvalQuestion, out: SystemOutput, to_doc: Callable[[str], str] | None) -> Scored:
    """Supporting-paragraph P/R/F1/EM of the titles the system cited, and ``sp_retrieved_not_cited``.

    Only the system's own citations count, and of those only the ones whose text reached the model according to
    its trace (shown by a search or retrieval step, or read); a cited title it was never shown is not counted and is
    listed in ``details["cited_unseen"]``. A system without trace events cannot be checked: its citations count as
    given, and no ``sp_retrieved_not_cited`` is reported."""
    doc = to_doc or (lambda x: x)
    details: dict[str, Any] = {}
    cited = list(out.cited)
    seen: set[str] | None = set(M.docs_seen(out.events)) if out.events else None
    if seen is not None:
        unseen = [c for c in cited if doc(c) not in seen]
        cited = [c for c in cited if doc(c) in seen]
        if unseen:
            details["cited_unseen"] = unseen
    m = M.supporting_paragraphs(cited, q.supporting_titles)
    if seen is not None:
        cited_docs = {doc(c) for c in cited}
        m |= M.retrieved_not_cited([doc(g) for g in q.supporting_titles], seen, cited_docs)
        missed = [g for g in q.supporting_titles if doc(g) in seen and doc(g) not in cited_docs]
        if missed:
            details["retrieved_not_cited"] = missed
    return m, details


def qa_scorer(
    to_doc_id: Callable[[str], str] | None = None,
    ranking_metrics: Sequence[str] = ("recall@2", "recall@5", "recall@10"),
) -> Scorer:
    """HotpotQA: answer EM/F1 (when the system answered), supporting-paragraph P/R/F1 of the cited titles and the
    supporting paragraphs retrieved but not cited (:func:`_supporting`), recall@k of the ranking against the
    supporting titles (retrieval systems, which give no answer), and evidence read/seen from the trace."""
    to_doc = _safe(to_doc_id)

    def score(q: EvalQuestion, out: SystemOutput) -> Scored:
        m: dict[str, float] = {}
        details: dict[str, Any] = {}
        if out.answer is not None:
            m |= M.answer_scores(out.answer, q.answers)
        if out.cited or out.answer is not None:
            sp, details = _supporting(q, out, to_doc)
            m |= sp
        if out.ranking and out.answer is None:  # retrieval mode; an agent's reads are scored as evidence instead
            m |= M.ranking_scores(q.relevance, out.ranking, list(ranking_metrics))
        m |= _evidence(q, out, to_doc)
        return m, details

    return score


def retrieval_scorer(names: Sequence[str] = RETRIEVAL_METRICS, *, ignore_identical_ids: bool = True) -> Scorer:
    """BEIR: ranking metrics against the qrels; a retrieved document whose id is the query id is ignored, as
    BEIR's ``EvaluateRetrieval.evaluate`` does by default (``ignore_identical_ids=True``)."""

    def score(q: EvalQuestion, out: SystemOutput) -> Scored:
        ranking = M.drop_identical(q.id, out.ranking) if ignore_identical_ids else out.ranking
        return M.ranking_scores(q.relevance, ranking, list(names)), {}

    return score


def tools_scorer(names: Sequence[str] = TOOL_METRICS, ks: Sequence[int] = SUFFICIENCY_KS) -> Scorer:
    def score(q: EvalQuestion, out: SystemOutput) -> Scored:
        m = M.ranking_scores(q.relevance, out.ranking, list(names))
        for k in ks:
            m[f"sufficiency@{k}"] = M.sufficiency_at_k(q.relevance, out.ranking, k)
        return m, {}

    return score


def browsecomp_scorer(
    judge_model: Any = None,
    to_doc_id: Callable[[str], str] | None = None,
    names: Sequence[str] = ("recall@5", "recall@100", "ndcg@10"),
) -> Scorer:
    """Judge accuracy (when the question has a reference answer and a judge model is given; a verdict that could
    not be parsed or a judge that failed scores 0, and the summary counts the failures as ``n_judge_errors``),
    ranking metrics against the evidence documents, and evidence read/seen from the trace (against the gold
    documents)."""
    from sleuth.evals.judge import judge_answer

    to_doc = _safe(to_doc_id)

    def score(q: EvalQuestion, out: SystemOutput) -> Scored:
        m: dict[str, float] = {}
        details: dict[str, Any] = {}
        if out.ranking and q.relevance:
            m |= M.ranking_scores(q.relevance, out.ranking, list(names))
        m |= _evidence(q, out, to_doc)
        if out.answer is not None and q.answers and judge_model is not None:
            verdict = judge_answer(judge_model, q.question, out.answer, q.answers[0])
            details["judge"] = verdict.model_dump(mode="json")
            if verdict.status in ("judged", "unparsed", "error"):  # a failed judge scores 0, counted apart
                m["accuracy"] = verdict.score
                m["judge_unparsed"] = float(verdict.status == "unparsed")
        return m, details

    return score
