"""SciFact test nDCG@10 of the embedding backends, BM25, and hybrid fusion; one run, prints a Markdown table.

    nice -n 10 .venv/bin/python benchmarks/dense_quality.py [--data ../shared/data/beir/scifact] [--embedders minilm,minilm-static]

Documents are embedded as ``title\\n\\ntext`` (what `sleuth corpus import` writes), each cut to the model window.
BM25 is bm25s with the English stemmer and stopwords (the lexical engineer's settings may differ slightly).
Times are wall clock on a shared 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from sleuth.records import Hit
from sleuth.retrieval.embeddings import get_embedder
from sleuth.retrieval.hybrid import reciprocal_rank_fusion, weighted_score_fusion
from sleuth.retrieval.vector_index import ExactIndex


def load_beir(folder: Path, split: str = "test"):
    docs = [json.loads(line) for line in (folder / "corpus.jsonl").open()]
    queries = {q["_id"]: q["text"] for q in map(json.loads, (folder / "queries.jsonl").open())}
    qrels: dict[str, dict[str, int]] = {}
    with (folder / "qrels" / f"{split}.tsv").open() as fh:
        next(fh)
        for line in fh:
            qid, did, score = line.rstrip("\n").split("\t")
            if int(score) > 0:
                qrels.setdefault(qid, {})[did] = int(score)
    queries = {q: t for q, t in queries.items() if q in qrels}
    return docs, queries, qrels


def ndcg10(run: dict[str, dict[str, float]], qrels) -> float:
    from ranx import Qrels, Run, evaluate

    return float(evaluate(Qrels(qrels), Run(run), "ndcg@10"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[1].parent / "shared/data/beir/scifact"))
    ap.add_argument("--embedders", default="minilm,minilm-static")
    ap.add_argument("--depth", type=int, default=100)
    args = ap.parse_args()
    docs, queries, qrels = load_beir(Path(args.data))
    ids = [d["_id"] for d in docs]
    texts = [(d.get("title", "") + "\n\n" + d["text"]).strip() for d in docs]
    qids = list(queries)
    qtexts = [queries[q] for q in qids]

    import bm25s
    import Stemmer

    stem = Stemmer.Stemmer("english")
    bm = bm25s.BM25()
    bm.index(bm25s.tokenize(texts, stopwords="en", stemmer=stem, show_progress=False), show_progress=False)
    res, sc = bm.retrieve(bm25s.tokenize(qtexts, stopwords="en", stemmer=stem, show_progress=False), k=args.depth,
                          show_progress=False)
    bm25_hits = {q: [Hit(doc_id=ids[i], score=float(s), source="bm25") for i, s in zip(res[n], sc[n])]
                 for n, q in enumerate(qids)}
    rows = [("bm25 (bm25s, stemmed)", ndcg10({q: {h.doc_id: h.score for h in hs} for q, hs in bm25_hits.items()}, qrels), "", "")]
    for spec in args.embedders.split(","):
        t0 = time.perf_counter()
        emb = get_embedder(spec)
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        D = emb.embed(texts)
        doc_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        Q = emb.embed(qtexts)
        q_s = time.perf_counter() - t0
        scores, idx = ExactIndex(D).search(Q, args.depth)
        dense_hits = {q: [Hit(doc_id=ids[i], score=float(s), source="dense") for i, s in zip(idx[n], scores[n])]
                      for n, q in enumerate(qids)}
        speed = f"load {load_s:.1f} s; docs {len(texts) / doc_s:,.0f}/s; queries {len(qtexts) / q_s:,.0f}/s"
        rows.append((f"dense {emb.name}", ndcg10({q: {h.doc_id: h.score for h in hs} for q, hs in dense_hits.items()}, qrels), speed, ""))
        for label, fuse in [
            ("rrf k=60", lambda a, b: reciprocal_rank_fusion([a, b], k=60)),
            ("weighted 0.5 min-max", lambda a, b: weighted_score_fusion([a, b], weights=[0.5, 0.5], norm="minmax")),
            ("weighted 0.5 z-score", lambda a, b: weighted_score_fusion([a, b], weights=[0.5, 0.5], norm="zscore")),
        ]:
            run = {q: {h.doc_id: float(h.score) for h in fuse(bm25_hits[q], dense_hits[q])[:100]} for q in qids}
            rows.append((f"hybrid bm25 + {emb.name}, {label}", ndcg10(run, qrels), "", ""))
    print(f"SciFact test: {len(texts)} docs, {len(qids)} queries\n")
    print("| method | nDCG@10 | speed |\n|---|---|---|")
    for name, v, speed, _ in rows:
        print(f"| {name} | {v:.3f} | {speed} |")


if __name__ == "__main__":
    main()
