"""SIRA's BM25 tiers chosen per collection, as the reference chooses them, on a tuning split.

The reference (facebookresearch/sira ``scripts/eval_bm25.py``, ``bm25.max_n_candidates: [1, 2]``) builds a
1-gram and a 2-gram index of each collection and keeps the one whose plain BM25 scores best (its
``selection_metric``, nDCG@10); SIRA then runs on that index. It selects on the split it reports. sleuth makes
the same choice on a *tuning* split instead, so that the reported split stays unseen: the BEIR folder's ``train``
split when it has one, or the set given with ``--sira-tune`` (a BEIR folder, ``PATH:SPLIT``, or a HotpotQA
file, whose pooled paragraphs are the corpus). The choice, the split it was made on and both scores go into the
run's configuration (``sira_tier_choice``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sleuth.errors import ConfigError
from sleuth.evals.datasets.base import EvalSet

CANDIDATES: tuple[tuple[str, ...], ...] = (("unigram",), ("unigram", "bigram"))
SELECTION_METRIC = "ndcg@10"
AUTO = "auto"


def tuning_set(task: str, data: str, tune: str | None) -> EvalSet | None:
    """The tuning split: ``tune`` (``PATH`` or ``PATH:SPLIT`` for a BEIR folder, default split ``train``; a
    HotpotQA JSON/JSONL file) when given, else the ``train`` split of the BEIR folder ``data`` when it has one,
    else None."""
    from sleuth.evals import datasets as D

    if tune:
        path, _, split = tune.partition(":") if not Path(tune).exists() else (tune, "", "")
        p = Path(path)
        if p.is_dir():
            return D.load_beir(p, split or "train")
        if p.is_file():
            return D.load_hotpotqa(p)
        raise ConfigError(f"--sira-tune {tune!r}: no such folder or file",
                          hint="pass a BEIR folder (PATH or PATH:SPLIT) or a HotpotQA JSON/JSONL file")
    root = Path(data)
    if task == "beir" and (root / "qrels" / "train.tsv").is_file():
        return D.load_beir(root, "train")
    return None


def choose(tune: EvalSet, cache_dir: str | None = None, *, progress: bool | None = None) -> dict[str, Any]:
    """Plain BM25 ``SELECTION_METRIC`` of every candidate tier set on ``tune``; the best one (the first on a
    tie, i.e. unigrams). Returns ``{"tiers", "tune", "questions", "scores"}``."""
    from sleuth.evals import metrics as M
    from sleuth.evals.corpora import corpus_for
    from sleuth.retrieval import get_retriever
    from sleuth.retrieval.bm25_ngrams import ensure_bigrams
    from sleuth.retrieval.sira import plain_tier_topk

    corpus = corpus_for(tune, cache_dir, progress=progress)
    index = ensure_bigrams(get_retriever("bm25", corpus).index)  # type: ignore[attr-defined]
    qrels = {q.id: q.relevance for q in tune.questions if q.relevance}
    if not qrels:
        raise ConfigError(f"the tuning set {tune.name} has no relevance judgements",
                          hint="pass --sira-tune with a BEIR split that has qrels, or a HotpotQA file")
    questions = [q for q in tune.questions if q.id in qrels]
    scores: dict[str, float] = {}
    for tiers in CANDIDATES:
        runs: dict[str, list[str]] = {}
        for q in questions:
            _, idx = plain_tier_topk(index, q.question, tiers, 100)
            ranking = [corpus.original_id(index.doc_ids[int(i)]) for i in idx]
            runs[q.id] = M.drop_identical(q.id, list(dict.fromkeys(ranking)))  # as the BEIR scorer does
        values = M.ranking_scores_many(qrels, runs, [SELECTION_METRIC])[SELECTION_METRIC]
        scores[",".join(tiers)] = round(sum(values) / len(values), 4) if values else 0.0
    best = max(scores, key=lambda t: scores[t])  # max keeps the first of equals: unigrams on a tie
    return {"tiers": best, "tune": f"{tune.name}:{tune.info.get('split', 'all')}", "questions": len(questions),
            "metric": SELECTION_METRIC, "scores": scores}
