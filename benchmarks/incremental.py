"""An incremental BM25 update of one changed document against a full rebuild, on SciFact (5,183 documents).

Peers in the same run, interleaved, best of R (a different document is changed each round):

* **full rebuild**: ``build_corpus`` (read and tokenize every document, score, write), given the folder listing;
* **overlay update**: ``update_corpus`` with the same listing (what sleuth does: only the changed document is read
  and written, :mod:`sleuth.retrieval.bm25_overlay`); its ratio to the full rebuild is the index work's speed-up;
* **open after a change**, end to end: ``BM25Index.open(corpus, rebuild=True)`` in a process that holds the corpus
  (a long-running host): the listing (one scandir with a stat per file, the document store's bookkeeping), loading
  the old index, the update; against the same path with a full rebuild (``force=True``).

Also the query cost of an overlaid index against the rebuilt one (SciFact's 300 test queries, top 10), since base
documents are scored from term frequencies at query time.

    PYTHONPATH=src python benchmarks/incremental.py --beir ../shared/data/beir/scifact [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path


def _queries(src: Path) -> list[str]:
    qrels = {line.split("\t")[0] for line in (src / "qrels" / "test.tsv").read_text().splitlines()[1:]}
    rows = [json.loads(line) for line in (src / "queries.jsonl").read_text().splitlines()]
    return [r["text"] for r in rows if r["_id"] in qrels]


def main() -> None:
    from sleuth.corpus import Corpus
    from sleuth.importers import import_corpus
    from sleuth.retrieval.bm25 import BM25Index, BM25Retriever
    from sleuth.retrieval.bm25_build import build_corpus, update_corpus

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--beir", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/beir/scifact")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sleuth-incremental-"))
    try:
        root = work / "corpus"
        import_corpus(args.beir, root, "beir")
        corpus = Corpus(root)
        docs = corpus.doc_ids()
        BM25Index.open(corpus)
        rows: dict[str, list[float]] = {k: [] for k in ("full", "update", "open_full", "open_update")}
        for r in range(args.repeat):
            listing = corpus.entries()
            t0 = time.perf_counter()
            build_corpus(corpus, entries=listing)
            rows["full"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            BM25Index.open(corpus, force=True)
            rows["open_full"].append(time.perf_counter() - t0)
            base = BM25Index.open(corpus)
            path = root / docs[100 + r]
            path.write_text(path.read_text(encoding="utf-8") + f"\nround {r}: zebrafish hearts.\n", "utf-8")
            listing = corpus.entries()
            t0 = time.perf_counter()
            stats = update_corpus(corpus, base, entries=listing)
            rows["update"].append(time.perf_counter() - t0)
            assert stats is not None and stats.index is not None and stats.changed == 1
            path.write_text(path.read_text(encoding="utf-8") + "and again.\n", "utf-8")
            t0 = time.perf_counter()
            opened = BM25Index.open(corpus, rebuild=True)
            rows["open_update"].append(time.perf_counter() - t0)
            assert "overlay" in opened.status, opened.status
        queries = _queries(args.beir)
        overlaid = BM25Retriever(BM25Index.open(corpus), with_text=False)
        plain = BM25Retriever(BM25Index.open(corpus, force=True), with_text=False)
        qs: dict[str, list[float]] = {"plain": [], "overlay": []}
        for _ in range(3):
            for name, ret in (("plain", plain), ("overlay", overlaid)):
                t0 = time.perf_counter()
                for q in queries:
                    ret.search(q, 10)
                qs[name].append(time.perf_counter() - t0)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    best = {k: min(v) for k, v in rows.items()}
    print(f"# {platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load "
          f"{os.getloadavg()[0]:.2f}; SciFact {len(docs)} documents; best of {args.repeat}")
    print("| step | full rebuild (s) | one changed document (s) | speed-up |")
    print("|---|---:|---:|---:|")
    print(f"| index work (listing given) | {best['full']:.3f} | {best['update']:.4f} | "
          f"{best['full'] / best['update']:.0f}x |")
    print(f"| open after a change, end to end | {best['open_full']:.3f} | {best['open_update']:.4f} | "
          f"{best['open_full'] / best['open_update']:.0f}x |")
    qp, qo = min(qs["plain"]), min(qs["overlay"])
    print(f"\n300 queries, top 10: plain index {len(queries) / qp:.0f} q/s, overlaid {len(queries) / qo:.0f} q/s "
          f"({qp / qo:.2f}x)")


if __name__ == "__main__":
    main()
