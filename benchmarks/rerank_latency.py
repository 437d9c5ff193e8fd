"""Rerank latency: ICR vs listwise (RankGPT) vs FIRST on the same model weights and the same 20 candidates.

For each of ``--queries`` BEIR queries, BM25 (bm25s, stemmed) retrieves the top ``--depth`` documents; every
method reranks exactly those candidates (same word budget). Prints ms per query per method and the ratios to
listwise, measured in one run (so machine load affects all methods alike, in turn: the methods are interleaved
per query). The paper reports ICR < 40% of RankGPT's latency; sleuth's target is ICR <= 0.3x listwise.

    .venv/bin/python benchmarks/rerank_latency.py --data ../shared/data/beir/scifact --queries 3 [--json out.json]

Listwise and FIRST run on the embedded llama.cpp server (``--model``, default ``local``; Q4_K_M GGUF); ICR runs
the same weights dequantized to bf16 in transformers (torch, CPU). The first ICR call (model load) and one
warm-up call per method are not timed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load_candidates(data: Path, n_queries: int, depth: int) -> list[tuple[str, list[tuple[str, str]]]]:
    import bm25s
    import Stemmer

    docs, ids = [], []
    with (data / "corpus.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            ids.append(str(r["_id"]))
            docs.append(((r.get("title") or "") + "\n\n" + (r.get("text") or "")).strip())
    qrels = {ln.split("\t")[0] for ln in (data / "qrels" / "test.tsv").read_text().splitlines()[1:] if ln.strip()}
    queries = []
    with (data / "queries.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            if str(r["_id"]) in qrels:
                queries.append(r["text"])
            if len(queries) >= n_queries:
                break
    stem = Stemmer.Stemmer("english")
    index = bm25s.BM25()
    index.index(bm25s.tokenize(docs, stopwords="en", stemmer=stem, show_progress=False), show_progress=False)
    out = []
    for q in queries:
        res, _ = index.retrieve(bm25s.tokenize([q], stopwords="en", stemmer=stem, show_progress=False), k=depth,
                                show_progress=False)
        out.append((q, [(ids[i], docs[i]) for i in res[0]]))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "beir" / "scifact"))
    ap.add_argument("--queries", type=int, default=3)
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--model", default="local", help="model spec for listwise/FIRST (sleuth.llm.get_model)")
    ap.add_argument("--methods", default="listwise,first,icr")
    ap.add_argument("--json", default=None, help="write the figures to this file")
    args = ap.parse_args()

    from sleuth.llm import get_model
    from sleuth.records import Hit
    from sleuth.rerank import get_reranker
    from sleuth.tracing.tracer import MemoryTracer

    cands = load_candidates(Path(args.data), args.queries, args.depth)
    model = get_model(args.model)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    rerankers = {m: get_reranker(m, model=model) for m in methods}
    warm = [Hit(doc_id=d, text=t) for d, t in cands[0][1][:3]]
    t0 = time.perf_counter()
    for m, r in rerankers.items():  # model load / server start and one small call per method, untimed
        r.rerank(cands[0][0], warm)
    print(f"warm-up (loads included): {time.perf_counter() - t0:.1f} s", file=sys.stderr)

    times: dict[str, list[float]] = {m: [] for m in methods}
    notes: dict[str, list[dict]] = {m: [] for m in methods}
    tokens: dict[str, list[int]] = {m: [] for m in methods}
    for qi, (q, docs) in enumerate(cands):
        hits = [Hit(doc_id=d, text=t) for d, t in docs]
        for m in methods:
            tr = MemoryTracer()
            t = time.perf_counter()
            rerankers[m].rerank(q, hits, tracer=tr)
            times[m].append(time.perf_counter() - t)
            ev = tr.of_kind("rerank")
            notes[m].append(ev[-1].data if ev else {})
            tokens[m].append(sum(e.usage.total_tokens for e in tr.of_kind("llm") if e.usage is not None))
            print(f"q{qi} {m}: {times[m][-1] * 1000:.0f} ms", file=sys.stderr)

    ms = {m: 1000 * statistics.mean(v) for m, v in times.items()}
    base = ms.get("listwise")
    print(f"{len(cands)} queries x {args.depth} candidates, model {args.model}")
    print(f"{'method':10s} {'ms/query':>10s} {'x listwise':>11s} {'tokens/query':>13s}")
    for m in methods:
        ratio = f"{ms[m] / base:.2f}" if base else "-"
        print(f"{m:10s} {ms[m]:10.0f} {ratio:>11s} {statistics.mean(tokens[m]):13.0f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"queries": len(cands), "depth": args.depth, "model": args.model,
                                               "ms_per_query": ms, "runs_s": times, "tokens": tokens, "trace": notes}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
