"""Queries per second of sleuth's BM25 (plain and weighted) against raw bm25s on the same index, single thread.

    NUMBA_NUM_THREADS=1 python benchmarks/bm25_speed.py --sizes 5k,100k[,1m] [--rank-bm25]

Sizes: ``5k`` is SciFact (its 300 test queries), ``100k``/``1m`` are generated documents (100 words drawn from a
Zipf(1.1) vocabulary of 200k pseudo-words; queries are 5 words drawn from random documents). One index per size,
built by sleuth and loaded memory-mapped by both sleuth and ``bm25s.BM25.load(dir, mmap=True)``.

Rows (all one query at a time, top 10):
* engine, plain: sleuth ``index.topk_ids(token ids, weights=1)`` vs bm25s ``retrieve([tokens])`` with the same
  analyzed tokens (both get the tokens; bm25s maps strings to ids itself).
* engine, weighted: the query plus 10 two-word phrases (25 tokens) with per-phrase weights, sleuth's one-pass
  weighted kernel vs bm25s's plain retrieve of the same 25 tokens (bm25s cannot weight terms).
* end to end: ``BM25Retriever.search(text)`` (analysis + hits with their stored text) vs
  ``bm25s.tokenize(text, stemmer) + retrieve`` (documented bm25s usage, returns indices only).
* rank_bm25 (``BM25Okapi.get_scores`` + argsort), where it finishes (a few queries at 100k; not at 1M).
Ratios are printed against bm25s in the same process; figures go to docs/results/lexical.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path("/tmp/sleuth-bm25-bench")
SCIFACT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "beir" / "scifact"


def pseudo_words(n: int, rng: random.Random) -> list[str]:
    letters = "bcdfghjklmnprstvwz"
    vowels = "aeiou"
    out = set()
    while len(out) < n:
        out.add("".join(rng.choice(letters) + rng.choice(vowels) for _ in range(rng.randint(2, 4))))
    return sorted(out)


def generated(n_docs: int, seed: int = 0):  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    vocab = np.array(pseudo_words(200_000, rng))
    p = 1.0 / np.arange(1, len(vocab) + 1) ** 1.1
    p /= p.sum()
    nprng = np.random.default_rng(seed)

    def texts():  # type: ignore[no-untyped-def]
        for start in range(0, n_docs, 10_000):
            m = min(10_000, n_docs - start)
            words = vocab[nprng.choice(len(vocab), size=(m, 100), p=p)]
            for row in words:
                yield " ".join(row)

    return [f"g{i:07d}" for i in range(n_docs)], texts


def build(size: str):  # type: ignore[no-untyped-def]
    from sleuth.retrieval.bm25 import BM25Index, build_index

    path = ROOT / size / "bm25"
    if size == "5k":
        from sleuth.corpus import Corpus
        from sleuth.importers import import_corpus
        from sleuth.retrieval.bm25 import build_corpus

        dest = ROOT / "scifact-corpus"
        if not (dest / ".sleuth" / "corpus.json").is_file():
            import_corpus(SCIFACT / "corpus.jsonl", dest, progress=False)
        c = Corpus(dest)
        t0 = time.perf_counter()
        build_corpus(c)
        secs = time.perf_counter() - t0
        index = BM25Index.open(c)
        queries = [json.loads(x)["text"] for x in (SCIFACT / "queries.jsonl").open()]
        return index, queries, secs
    n = {"100k": 100_000, "1m": 1_000_000}[size]
    ids, texts = generated(n)
    meta_ok = (path / "meta.json").is_file()
    secs = float("nan")
    if not meta_ok:
        t0 = time.perf_counter()
        build_index(path, ids, texts(), progress=sys.stderr.isatty())
        secs = time.perf_counter() - t0
    index = BM25Index.load(path)
    rng = random.Random(1)
    queries = []
    toks = index.tokens
    offs = index.doc_offsets
    inv = {v: k for k, v in index.vocab.items()}
    for _ in range(1000):
        d = rng.randrange(index.n_docs)
        span = toks[offs[d] : offs[d + 1]]
        queries.append(" ".join(inv[int(t)] for t in rng.sample(list(span), 5)))
    return index, queries, secs


def qps(fn, items, min_seconds: float = 2.0, max_items: int | None = None) -> float:  # type: ignore[no-untyped-def]
    items = items[:max_items] if max_items else items
    fn(items[0])  # warm-up (numba compile, page cache)
    n, t0 = 0, time.perf_counter()
    while True:
        for it in items:
            fn(it)
            n += 1
        el = time.perf_counter() - t0
        if el >= min_seconds or max_items:
            return n / el


def run_size(size: str, with_rank_bm25: bool) -> dict:
    import bm25s
    import Stemmer

    from sleuth.retrieval.bm25 import BM25Retriever

    index, queries, build_s = build(size)
    raw = bm25s.BM25.load(index.path, mmap=True)
    raw.backend = "numba"
    analyzer = index.analyzer
    rng = random.Random(2)
    qtoks = [analyzer.tokens(q) for q in queries]
    qtoks = [t for t in qtoks if any(x in index.vocab for x in t)]
    all_words = [q.split() for q in queries]
    # weighted: query + 10 two-word phrases taken from other queries, weights in (0, 1]
    weighted = []
    for i, q in enumerate(queries[: len(qtoks)]):
        phrases = []
        for _ in range(10):
            src = all_words[rng.randrange(len(all_words))]
            j = rng.randrange(max(1, len(src) - 1))
            phrases.append((" ".join(src[j : j + 2]), round(rng.uniform(0.1, 1.0), 2)))
        weighted.append([(q, 1.0), *phrases])
    w_ids = [index.weighted_token_ids(t) for t in weighted]
    w_flat_tokens = [sum((analyzer.tokens(t) for t, _ in terms), []) for terms in weighted]

    ids_plain = [index.weighted_token_ids([(q, 1.0)]) for q in queries[: len(qtoks)]]
    out = {"size": size, "docs": index.n_docs, "vocab": len(index.vocab), "queries": len(qtoks),
           "build_s": round(build_s, 1), "backend": index.backend}
    k = 10

    def raw_tokens(t):  # type: ignore[no-untyped-def]
        return raw.retrieve([t], k=k, show_progress=False, n_threads=1)

    out["raw_bm25s_engine_qps"] = qps(raw_tokens, qtoks)
    out["sleuth_engine_qps"] = qps(lambda tw: index.topk_ids(tw[0], tw[1], k), ids_plain)
    out["raw_bm25s_25tok_qps"] = qps(raw_tokens, w_flat_tokens)
    out["sleuth_weighted_qps"] = qps(lambda tw: index.topk_ids(tw[0], tw[1], k), w_ids)
    # weighted including analysis of the 11 terms (what search_weighted does) but without hit texts
    out["sleuth_weighted_e2e_qps"] = qps(lambda terms: index.topk_ids(*index.weighted_token_ids(terms), k), weighted)

    stemmer = Stemmer.Stemmer("english")
    retriever = BM25Retriever(index)

    def raw_e2e(q):  # type: ignore[no-untyped-def]
        return raw.retrieve(bm25s.tokenize(q, stopwords="en", stemmer=stemmer, show_progress=False), k=k,
                            show_progress=False, n_threads=1)

    good = queries[: len(qtoks)]
    out["raw_bm25s_e2e_qps"] = qps(raw_e2e, good)
    out["sleuth_search_e2e_qps"] = qps(lambda q: retriever.search(q, k), good)
    out["sleuth_search_e2e_notext_qps"] = qps(lambda q: BM25Retriever(index, with_text=False).search(q, k), good)
    if with_rank_bm25 and size != "1m":
        from rank_bm25 import BM25Okapi

        t0 = time.perf_counter()
        offs = index.doc_offsets
        inv = np.array(sorted(index.vocab, key=index.vocab.get), dtype=object)
        corpus_tokens = [list(inv[np.asarray(index.tokens[offs[i] : offs[i + 1]])]) for i in range(index.n_docs)]
        rb = BM25Okapi(corpus_tokens, k1=index.params.k1, b=index.params.b)
        out["rank_bm25_build_s"] = round(time.perf_counter() - t0, 1)
        del corpus_tokens
        out["rank_bm25_qps"] = qps(lambda t: np.argsort(-rb.get_scores(t))[:k], qtoks,
                                   max_items=20 if size != "5k" else None)
    for key in list(out):
        if key.endswith("_qps"):
            out[key] = round(out[key], 1)
    out["ratio_engine_plain"] = round(out["sleuth_engine_qps"] / out["raw_bm25s_engine_qps"], 3)
    out["ratio_weighted_vs_plain_25tok"] = round(out["sleuth_weighted_qps"] / out["raw_bm25s_25tok_qps"], 3)
    out["ratio_e2e"] = round(out["sleuth_search_e2e_qps"] / out["raw_bm25s_e2e_qps"], 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="5k,100k")
    ap.add_argument("--rank-bm25", action="store_true")
    a = ap.parse_args()
    for size in a.sizes.split(","):
        res = run_size(size, a.rank_bm25)
        print(json.dumps(res), flush=True)


if __name__ == "__main__":
    main()
