"""Embedding throughput and vector search at 100k: usearch HNSW against exact numpy, with recall@10, one run.

    nice -n 10 .venv/bin/python benchmarks/dense_speed.py [--n 100000] [--embedders minilm,minilm-static]

What it measures (all single process, on whatever the machine is doing at the time; ratios are the point):

* embedding throughput (texts/s) of each backend on the first 512 SciFact documents (``title\\n\\ntext``, cut to
  the model window) and on 1,000 SciFact queries (short claims);
* a 100k x 384 set of *real-ish* vectors: the 5,183 real MiniLM embeddings of the SciFact documents, plus
  synthetic ones, each ``normalize(e_i + 0.6 e_j + noise)`` for random real document embeddings ``e_i, e_j`` and
  Gaussian noise (sigma 0.02 per dimension): mixtures that stay on the embedding manifold, unlike uniform random
  vectors (which make every index look good);
* queries: the 300 real MiniLM embeddings of the SciFact test claims;
* exact numpy (one matrix product + argpartition) vs usearch HNSW (M=16, ef_construction=128, ef_search=64):
  build time, single-query latency (median, p95), and recall@10 of HNSW against exact.

MiniLM document vectors are cached in ``--cache`` (SQLite, by content hash), so a rerun skips that step.

``--base-cache FILE`` instead takes the real vectors from an existing embedding cache (a ``CachedEmbedder`` SQLite
file, e.g. the one ``benchmarks/tool_retrieval.py`` fills with MiniLM embeddings of the tool sets' tools and
queries) and holds out 300 of them as the queries: use it when embedding SciFact with MiniLM is too slow (on a
loaded machine). ``--embedders ''`` skips the throughput part.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from sleuth.retrieval.embeddings import CachedEmbedder, get_embedder, normalize
from sleuth.retrieval.vector_index import ExactIndex, HNSWIndex

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "beir" / "scifact"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--embedders", default="minilm,minilm-static")
    ap.add_argument("--cache", default="/tmp/sleuth-bench-embeddings.sqlite")
    ap.add_argument("--threads", type=int, default=0, help="usearch build threads (0 = all cores)")
    ap.add_argument("--base-cache", default="", help="take the real vectors from this embedding cache instead")
    args = ap.parse_args()
    folder = Path(args.data)
    docs = [json.loads(line) for line in (folder / "corpus.jsonl").open()]
    texts = [(d.get("title", "") + "\n\n" + d["text"]).strip() for d in docs]
    queries = [json.loads(line)["text"] for line in (folder / "queries.jsonl").open()]
    test_ids = {line.split("\t")[0] for line in list((folder / "qrels" / "test.tsv").open())[1:]}
    test_q = [json.loads(line)["text"] for line in (folder / "queries.jsonl").open() if json.loads(line)["_id"] in test_ids]

    print("## Embedding throughput\n\n| embedder | dim | window | docs/s (512 SciFact docs) | queries/s (1,000 claims) |")
    print("|---|---|---|---|---|")
    for spec in [e for e in args.embedders.split(",") if e]:
        emb = get_embedder(spec)
        emb.embed(texts[:8])  # warm-up
        t0 = time.perf_counter()
        emb.embed(texts[:512])
        d_rate = 512 / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        emb.embed(queries[:1000])
        q_rate = 1000 / (time.perf_counter() - t0)
        print(f"| {emb.name} | {emb.dim} | {emb.max_tokens} | {d_rate:,.0f} | {q_rate:,.0f} |", flush=True)

    rng = np.random.default_rng(0)
    if args.base_cache:
        import sqlite3

        db = sqlite3.connect(args.base_cache)
        real = np.stack([np.frombuffer(b, dtype=np.float32, count=d) for d, b in db.execute("SELECT dim, v FROM vec")])
        real = real[rng.permutation(len(real))]
        qv, base = real[:300], real[300:]
        source = f"{len(base):,} real MiniLM vectors from {args.base_cache}"
        qsource = "300 held-out real MiniLM vectors from the same cache"
    else:
        minilm = CachedEmbedder(get_embedder("minilm"), args.cache)
        base = minilm.embed(texts)
        qv = minilm.embed(test_q)
        source = f"{len(base):,} real MiniLM SciFact document vectors"
        qsource = f"{len(qv)} real SciFact test-claim vectors"
    extra = args.n - len(base)
    i = rng.integers(0, len(base), extra)
    j = rng.integers(0, len(base), extra)
    synth = normalize(base[i] + 0.6 * base[j] + rng.normal(0, 0.02, size=(extra, base.shape[1])).astype(np.float32))
    vecs = np.ascontiguousarray(np.vstack([base, synth]), dtype=np.float32)
    print(f"\n## Vector search: {len(vecs):,} x {vecs.shape[1]} ({source} + synthetic mixtures); queries: {qsource}\n")

    t0 = time.perf_counter()
    exact = ExactIndex(vecs)
    exact_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    hnsw = HNSWIndex(vecs, threads=args.threads)
    hnsw_build = time.perf_counter() - t0

    def latencies(index, k: int = 10) -> tuple[list[float], np.ndarray]:  # type: ignore[no-untyped-def]
        times, rows = [], []
        for q in qv:
            t = time.perf_counter()
            _, r = index.search(q[None, :], k)
            times.append((time.perf_counter() - t) * 1000)
            rows.append(r[0])
        return times, np.array(rows)

    e_t, e_rows = latencies(exact)
    h_t, h_rows = latencies(hnsw)
    recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(e_rows.tolist(), h_rows.tolist(), strict=True)]))

    def p95(xs: list[float]) -> float:
        return sorted(xs)[int(0.95 * (len(xs) - 1))]

    print("| index | build s | query ms (median) | query ms (p95) | recall@10 vs exact |")
    print("|---|---|---|---|---|")
    print(f"| exact numpy | {exact_build:.2f} | {statistics.median(e_t):.2f} | {p95(e_t):.2f} | 1.000 |")
    print(f"| usearch HNSW (M16, efC128, ef64) | {hnsw_build:.1f} | {statistics.median(h_t):.3f} | {p95(h_t):.3f} | "
          f"{recall:.3f} |")
    print(f"\nHNSW speed-up (median query): {statistics.median(e_t) / statistics.median(h_t):.0f}x")


if __name__ == "__main__":
    main()
