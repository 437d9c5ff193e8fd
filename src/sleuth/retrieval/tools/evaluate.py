"""Tool-retrieval quality of a catalog on labelled requests, with the metrics of :mod:`sleuth.evals.metrics`
(trec_eval's nDCG@10 and Recall@k through pytrec_eval, and Sufficiency@k) — the same code that scores
``sleuth eval tools``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sleuth.errors import DataError
from sleuth.retrieval.tools.catalog import ToolCatalog


def evaluate_tool_retrieval(
    catalog: ToolCatalog,
    queries: Mapping[str, str],
    gold: Mapping[str, Iterable[str]],
    method: str = "bm25",
    ks: Sequence[int] = (1, 3, 5, 10),
    *,
    batch_size: int = 256,
    **kw: Any,
) -> dict[str, Any]:
    """Recall@k (share of a query's gold tools in the top k, averaged), Sufficiency@k (all gold tools in the top
    k), nDCG@10 (binary gains) over the queries that have gold tools. Gold names absent from the catalog count
    as misses. Returns ``{"n": .., "method": .., "recall@1": .., ..., "ndcg@10": .., "sufficiency@1": ..}``."""
    from sleuth.evals import metrics as M

    qrels = {q: {g: 1 for g in gold.get(q, [])} for q in queries}
    qids = [q for q in queries if qrels[q]]
    if not qids:
        raise DataError("no query has gold tools", hint="check that the qrels ids match the query ids")
    depth = max(max(ks), 10)
    rankings: dict[str, list[str]] = {}
    for a in range(0, len(qids), batch_size):
        chunk = qids[a : a + batch_size]
        results = catalog.search_many([queries[q] for q in chunk], depth, method, **kw)
        rankings.update({q: [h.doc_id for h in hits] for q, hits in zip(chunk, results, strict=True)})
    names = [f"recall@{k}" for k in ks]
    per_query = M.ranking_scores_many({q: qrels[q] for q in qids}, rankings, [*names, "ndcg@10"])
    n = len(qids)
    out: dict[str, Any] = {"n": n, "method": method}
    out |= {m: round(sum(per_query[m]) / n, 4) for m in names}
    for k in ks:
        out[f"sufficiency@{k}"] = round(sum(M.sufficiency_at_k(qrels[q], rankings[q], k) for q in qids) / n, 4)
    out["ndcg@10"] = round(sum(per_query["ndcg@10"]) / n, 4)
    return out
