"""Metadata filters on SciFact: what a filtered BM25 search costs next to an unfiltered one (same process), what
resolving a filter costs (the listing, the metadata table, the match), and how many hits a filter applied after the
top k would lose. `PYTHONPATH=src python benchmarks/metadata_filters.py [--data ../shared/data/beir/scifact]`."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from sleuth.corpus import Corpus
from sleuth.importers import import_corpus
from sleuth.retrieval.bm25 import BM25Index, BM25Retriever


def _ms(f, n: int) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    for _ in range(n):
        f()
    return 1000 * (time.perf_counter() - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="../shared/data/beir/scifact")
    ap.add_argument("--where", default="title~*cancer*")
    a = ap.parse_args()
    src = Path(a.data)
    judged = {line.split("\t")[0] for line in (src / "qrels" / "test.tsv").read_text().splitlines()[1:]}
    queries = [r["text"] for r in map(json.loads, (src / "queries.jsonl").read_text().splitlines())
               if r["_id"] in judged]
    with tempfile.TemporaryDirectory() as tmp:
        import_corpus(src, Path(tmp) / "c", "beir")
        corpus = Corpus(Path(tmp) / "c")
        r = BM25Retriever(BM25Index.open(corpus), with_text=False)
        for q in queries[:10]:
            r.search(q, 10)
        first = _ms(lambda: Corpus(corpus.root).filter(a.where), 1)
        listing = _ms(corpus.entries, 20)
        resolve = _ms(lambda: corpus.filter(a.where), 20)
        flt = corpus.filter(a.where)
        assert flt is not None
        it = iter(queries * 3)
        plain = _ms(lambda: r.search(next(it), 10), len(queries))
        it = iter(queries * 3)
        masked = _ms(lambda: r.search(next(it), 10, where=flt), len(queries))
        within = sum(len(r.search(q, 10, where=flt)) for q in queries)
        after = sum(sum(h.doc_id in flt.matching for h in r.search(q, 10)) for q in queries)
    print(f"SciFact, {len(queries)} test queries, filter {a.where!r}: {len(flt.matching)} of {flt.n_docs} documents")
    print(f"resolve the filter: first {first:.0f} ms (a new Corpus: listing + table), then {resolve:.0f} ms "
          f"(the listing alone: {listing:.0f} ms)")
    print(f"BM25 top 10 per query: unfiltered {plain:.2f} ms, filtered {masked:.2f} ms ({masked / plain:.1f}x)")
    print(f"hits in the top 10: filtered {within}, the unfiltered top 10 filtered after {after} "
          f"({within / max(after, 1):.1f}x)")


if __name__ == "__main__":
    main()
