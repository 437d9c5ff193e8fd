"""Evaluation metrics.

* Answer EM / F1 with the official HotpotQA normalization (lower-case, drop punctuation, drop the articles
  a/an/the, collapse whitespace; F1 is 0 when either side normalizes to yes/no/noanswer and they differ), the
  logic of ``hotpot_evaluate_v1.py``, re-written here. With several gold answers the best one counts.
* Supporting-paragraph precision / recall / F1 / EM over titles (the official ``update_sp`` logic applied to
  paragraphs instead of sentences), and the official sentence-level version for ``[title, idx]`` facts. They score
  the paragraphs the system *cited*, nothing else (no default citation); ``sp_retrieved_not_cited`` is apart: the
  share of the supporting paragraphs that reached the model but that it did not cite.
* Ranking metrics (nDCG@k, Recall@k, MRR@k, Precision@k, MAP@k) with trec_eval itself, through
  ``pytrec_eval`` (the ``pytrec-eval-terrier`` wheel). Chosen over ranx (also tried, and used in a test as a
  cross-check: the two agree on SciFact) because ranx's numba kernels and typed containers compile in every new
  process, 10 s quiet and 80-250 s on this loaded machine, before the first question is scored, and numba's
  default threading layer aborts the process when two threads run them at once; trec_eval is the reference
  definition, has no start-up cost and returns per-query values from plain dicts. ir-measures would wrap the
  same pytrec_eval. Rankings are passed as rank-derived scores so trec_eval never re-orders a system's ties.
* Sufficiency@k for tool retrieval: 1 when every gold tool is in the top k, else 0.
* Evidence recall from a trace: which gold documents the agent read (``read`` tool calls), and which it at
  least saw (a search/grep result or a retrieval step), by exact doc id from the events' structured data.
* Means over questions: an errored question counts as 0 in every mean (the official HotpotQA script's rule);
  the runner reports the number of errors apart.
* BEIR's identical-id rule: a retrieved document whose id equals the query id is ignored (``EvaluateRetrieval
  .evaluate(ignore_identical_ids=True)``, BEIR's default), see :func:`drop_identical`.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sleuth.records import TraceEvent

YES_NO = ("yes", "no", "noanswer")


# -- answers (HotpotQA official) --------------------------------------------------------------------------------


def normalize_answer(s: str) -> str:
    """Official HotpotQA/SQuAD normalization: lower, strip punctuation, remove articles, fix whitespace."""
    text = s.lower()
    exclude = set(string.punctuation)
    text = "".join(ch for ch in text if ch not in exclude)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def answer_f1(prediction: str, gold: str) -> tuple[float, float, float]:
    """``(f1, precision, recall)`` on normalized tokens, as the official script computes them."""
    pred, truth = normalize_answer(prediction), normalize_answer(gold)
    zero = (0.0, 0.0, 0.0)
    if pred in YES_NO and pred != truth:
        return zero
    if truth in YES_NO and pred != truth:
        return zero
    p_tokens, g_tokens = pred.split(), truth.split()
    common = Counter(p_tokens) & Counter(g_tokens)
    same = sum(common.values())
    if same == 0:
        return zero
    precision = same / len(p_tokens)
    recall = same / len(g_tokens)
    return 2 * precision * recall / (precision + recall), precision, recall


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def answer_scores(prediction: str | None, golds: Sequence[str]) -> dict[str, float]:
    """Best EM/F1/precision/recall over the gold answers (a missing prediction scores 0)."""
    best = {"em": 0.0, "f1": 0.0, "answer_precision": 0.0, "answer_recall": 0.0}
    if prediction is None or not golds:
        return best
    for g in golds:
        f1, p, r = answer_f1(prediction, g)
        best["em"] = max(best["em"], exact_match(prediction, g))
        best["f1"] = max(best["f1"], f1)
        best["answer_precision"] = max(best["answer_precision"], p)
        best["answer_recall"] = max(best["answer_recall"], r)
    return best


# -- supporting paragraphs / facts ----------------------------------------------------------------------------


def set_prf(predicted: Iterable[Any], gold: Iterable[Any], prefix: str = "sp") -> dict[str, float]:
    """Official ``update_sp`` logic on sets: precision, recall, F1 and exact match."""
    pred, truth = set(predicted), set(gold)
    tp = len(pred & truth)
    fp = len(pred - truth)
    fn = len(truth - pred)
    prec = tp / (tp + fp) if tp + fp > 0 else 0.0
    rec = tp / (tp + fn) if tp + fn > 0 else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec > 0 else 0.0
    em = float(fp + fn == 0)
    return {f"{prefix}_precision": prec, f"{prefix}_recall": rec, f"{prefix}_f1": f1, f"{prefix}_em": em}


def supporting_paragraphs(predicted_titles: Iterable[str], gold_titles: Iterable[str]) -> dict[str, float]:
    return set_prf(predicted_titles, gold_titles, "sp")


def retrieved_not_cited(gold: Iterable[str], seen: Iterable[str], cited: Iterable[str]) -> dict[str, float]:
    """``sp_retrieved_not_cited``: the share of the ``gold`` supporting paragraphs that are in ``seen`` (shown to
    or read by the model) and not in ``cited``. With ``sp_recall`` (cited and gold) it splits the supporting
    paragraphs the system found into the ones it cited and the ones it only retrieved. No gold → {}."""
    truth = list(dict.fromkeys(gold))
    if not truth:
        return {}
    seen_set, cited_set = set(seen), set(cited)
    n = sum(1 for g in truth if g in seen_set and g not in cited_set)
    return {"sp_retrieved_not_cited": n / len(truth)}


def supporting_facts(predicted: Iterable[Sequence[Any]], gold: Iterable[Sequence[Any]]) -> dict[str, float]:
    return set_prf(map(tuple, predicted), map(tuple, gold), "sf")


# -- ranking (trec_eval through pytrec_eval) ------------------------------------------------------------------

_NAMES = {"ndcg": "ndcg_cut", "recall": "recall", "precision": "P", "p": "P", "map": "map_cut"}


def _pytrec() -> Any:
    try:
        import pytrec_eval
    except ImportError:
        from sleuth.errors import MissingExtraError

        raise MissingExtraError("eval", "pytrec-eval-terrier", "ranking metrics") from None
    return pytrec_eval


def _parse(metric: str) -> tuple[str, int]:
    name, _, k = metric.lower().partition("@")
    if not k.isdigit() or int(k) < 1 or (name not in _NAMES and name != "mrr"):
        from sleuth.errors import ConfigError

        raise ConfigError(
            f"unknown ranking metric {metric!r}", hint="use ndcg@K, recall@K, precision@K, map@K or mrr@K"
        )
    return name, int(k)


def rank_scores(ranking: Sequence[str]) -> dict[str, float]:
    """Rank-derived scores (n, n-1, ...): trec_eval sorts by score (ties by doc id), so this keeps the system's
    order exactly; a document listed twice keeps its first rank."""
    out: dict[str, float] = {}
    n = len(ranking)
    for i, d in enumerate(ranking):
        out.setdefault(d, float(n - i))
    return out


def drop_identical(query_id: str, ranking: Sequence[str]) -> list[str]:
    """The ranking without the document whose id is the query's own (BEIR ignores it: in ArguAna, Quora,
    CQADupStack ... the query text is itself a corpus document)."""
    return [d for d in ranking if d != query_id]


def ranking_scores(
    relevance: dict[str, int], ranking: Sequence[str], metrics: Sequence[str] = ("ndcg@10", "mrr@10", "recall@100")
) -> dict[str, float]:
    """Per-question ranking metrics. Empty ranking → zeros; no relevant documents → {}."""
    many = ranking_scores_many({"q": relevance}, {"q": list(ranking)}, metrics)
    return {m: v[0] for m, v in many.items()}


def ranking_scores_many(
    qrels: Mapping[str, Mapping[str, int]], rankings: Mapping[str, Sequence[str]], metrics: Sequence[str]
) -> dict[str, list[float]]:
    """Per-query values, in ``qrels`` order, for the queries with at least one relevant document (a query
    without a ranking scores 0). trec_eval's definitions: linear-gain nDCG, relevant = grade ≥ 1."""
    pytrec_eval = _pytrec()
    q = {qid: {d: int(s) for d, s in r.items() if s > 0} for qid, r in qrels.items()}
    q = {qid: r for qid, r in q.items() if r}
    if not q:
        return {}
    parsed = {m: _parse(m) for m in metrics}
    out: dict[str, list[float]] = {m: [0.0] * len(q) for m in metrics}
    pos = {qid: i for i, qid in enumerate(q)}
    # MRR@k: trec_eval's recip_rank on the ranking cut at k; other measures take their cut as a parameter
    by_cut: dict[int | None, list[str]] = {}
    for m, (name, k) in parsed.items():
        by_cut.setdefault(k if name == "mrr" else None, []).append(m)
    for cut, names in by_cut.items():
        run = {qid: rank_scores(list(rankings.get(qid) or [])[:cut] if cut else list(rankings.get(qid) or []))
               for qid in q}
        run = {qid: r for qid, r in run.items() if r}
        if not run:
            continue
        measures = {"recip_rank"} if cut else {f"{_NAMES[parsed[m][0]]}.{parsed[m][1]}" for m in names}
        result = pytrec_eval.RelevanceEvaluator(q, measures).evaluate(run)
        for qid, values in result.items():
            for m in names:
                name, k = parsed[m]
                key = "recip_rank" if cut else f"{_NAMES[name]}_{k}"
                out[m][pos[qid]] = float(values[key])
    return out


# -- tools ------------------------------------------------------------------------------------------------------


def sufficiency_at_k(gold: Iterable[str], ranking: Sequence[str], k: int) -> float:
    """1.0 when every gold tool is among the top ``k``, else 0.0 (no gold tools → 0.0)."""
    need = set(gold)
    return float(bool(need) and need <= set(ranking[:k]))


# -- evidence from a trace ------------------------------------------------------------------------------------

READ_TOOLS = ("read", "read_document", "open")
SEARCH_TOOLS = ("grep", "search", "bm25", "dense", "hybrid", "sira")
DOC_ARG_KEYS = ("doc_id", "doc_ids", "path", "paths", "id", "ids", "document")


def _arg_doc_ids(args: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for key in DOC_ARG_KEYS:
        v = args.get(key)
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, list):
            out.extend(str(x) for x in v if isinstance(x, str | int))
    return out


def docs_read(events: Iterable[TraceEvent]) -> list[str]:
    """Doc ids passed to successful ``read``-like tool calls, in order, deduplicated."""
    seen: dict[str, None] = {}
    for e in events:
        if e.kind == "tool" and e.name in READ_TOOLS and not e.error:
            for d in _arg_doc_ids(e.args):
                seen.setdefault(d, None)
    return list(seen)


def docs_shown(events: Iterable[TraceEvent]) -> list[str]:
    """Doc ids whose text reached the model, from the events' structured data only: a successful search-like
    tool call's ``data["doc_ids"]`` (recorded by :meth:`sleuth.tools.base.Tool.invoke`: a search hit's
    snippet, a grep match's line) and a strategy's retrieval step's ``data["hits"][i]["doc_id"]`` (sira,
    iter-retgen: passages put in the prompt). In order, deduplicated. ``ls`` listings show names, not text,
    and do not count; a trace written before tool events carried ``doc_ids`` yields only its retrieval steps."""
    seen: dict[str, None] = {}
    for e in events:
        if e.error:
            continue
        if e.kind == "tool" and e.name in SEARCH_TOOLS:
            ids = e.data.get("doc_ids")
            for d in ids if isinstance(ids, list) else []:
                if isinstance(d, str):
                    seen.setdefault(d, None)
        elif e.kind == "retrieval":
            hits = e.data.get("hits")
            for h in hits if isinstance(hits, list) else []:
                if isinstance(h, dict) and isinstance(h.get("doc_id"), str):
                    seen.setdefault(h["doc_id"], None)
    return list(seen)


def docs_seen(events: Iterable[TraceEvent]) -> list[str]:
    """Doc ids the model read or was shown (:func:`docs_read` then :func:`docs_shown`), deduplicated."""
    events = list(events)
    return list(dict.fromkeys([*docs_read(events), *docs_shown(events)]))


def evidence_recall(
    events: Sequence[TraceEvent], gold_doc_ids: Iterable[str], *, to_doc_id: Any = None
) -> dict[str, float]:
    """``evidence_read``: share of gold docs the agent read; ``evidence_seen``: share it read or was shown
    (:func:`docs_shown`). Doc ids are compared exactly (``Texas.txt`` is not ``Paris, Texas.txt``).

    ``gold_doc_ids`` are corpus doc ids; pass ``to_doc_id`` (original id → doc id) when they are original ids.
    """
    gold = [to_doc_id(g) if to_doc_id else g for g in gold_doc_ids]
    if not gold:
        return {}
    read = set(docs_read(events))
    seen = set(docs_seen(events))
    n_read = sum(1 for g in gold if g in read)
    n_seen = sum(1 for g in gold if g in seen)
    return {"evidence_read": n_read / len(gold), "evidence_seen": n_seen / len(gold)}


# -- means over questions ----------------------------------------------------------------------------------------

DIAGNOSTIC_PREFIX = "judge_"  # rates about the judge itself (judge_unparsed): an errored question has none


def mean(values: Iterable[float | None]) -> float | None:
    vals = [v for v in values if isinstance(v, int | float)]
    return sum(vals) / len(vals) if vals else None


def means(
    per_question: Sequence[Mapping[str, float]], n_errors: int = 0, digits: int | None = 4
) -> dict[str, float | None]:
    """Mean of each metric over the questions that have it, with every errored question counted as 0 (as the
    official HotpotQA script scores a question without a prediction), except the ``judge_*`` diagnostics.
    ``per_question`` holds the metrics of the questions that ran; ``n_errors`` counts those that failed."""
    names: dict[str, None] = {}
    for m in per_question:
        for k in m:
            names.setdefault(k, None)
    out: dict[str, float | None] = {}
    for k in names:
        vals = [float(m[k]) for m in per_question if k in m]
        n = len(vals) + (0 if k.startswith(DIAGNOSTIC_PREFIX) else n_errors)
        v = sum(vals) / n if n else None
        out[k] = round(v, digits) if v is not None and digits is not None else v
    return out
