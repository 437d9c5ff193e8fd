"""Build a BM25 index over a folder of documents, search it, then run SIRA: corpus-side enrichment and
query-side expansion with a language model.

Steps (each one is the Python API behind a `sleuth` command):

1. ``get_retriever("bm25", corpus)`` builds CORPUS/.sleuth/bm25 (``sleuth index CORPUS``) and searches it;
   ``df`` tells rare words from common ones (``sleuth df``).
2. With a model: ``enrich_corpus`` asks the model, per document, for search vocabulary the text lacks, keeps the
   phrases the df filter admits, and builds a second index (``sleuth enrich CORPUS --model local``).
3. ``get_retriever("bm25", corpus, enrich_weight=0.3)`` fuses both indexes; ``get_retriever("sira", corpus,
   model=...)`` expands each query with model-proposed phrases in one weighted BM25 pass.

    python examples/index_and_enrich.py --no-model          # index + search + df only (seconds)
    python examples/index_and_enrich.py --limit 3           # + SIRA with the embedded model on 3 documents

The example works on a copy of the corpus in a temporary folder unless --in-place is given.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
QUERIES = ["who designed the longest bridge in Norvand", "ship log from 2012"]


def show(title: str, hits: list[Any]) -> None:
    print(f"  {title}")
    for h in hits:
        print(f"    {h.doc_id}  {h.score:.3f}")


def run(corpus_dir: Path, model_spec: str | None, limit: int) -> dict[str, Any]:
    from sleuth.corpus import Corpus
    from sleuth.retrieval import get_retriever
    from sleuth.retrieval.df import DocFrequency

    corpus = Corpus(corpus_dir)
    out: dict[str, Any] = {"documents": len(corpus)}
    t0 = time.perf_counter()
    bm25 = get_retriever("bm25", corpus)  # builds the index when missing
    out["index_seconds"] = round(time.perf_counter() - t0, 2)
    print(f"BM25 index over {len(corpus)} documents in {out['index_seconds']} s ({corpus.state_dir / 'bm25'})")
    out["bm25"] = {}
    for q in QUERIES:
        hits = bm25.search(q, 3)
        show(f"bm25 {q!r}", hits)
        out["bm25"][q] = [h.doc_id for h in hits]
    df = DocFrequency(bm25.index).many(["bridge", "Norvand", "cable-stayed"])
    print("  df: " + ", ".join(f"{r.term}={r.df}" for r in df))
    out["df"] = {r.term: r.df for r in df}
    if model_spec is None:
        return out

    from sleuth.llm import get_model
    from sleuth.retrieval.enrich import EnrichParams, enrich_corpus

    model = get_model(model_spec)
    try:
        report = enrich_corpus(corpus, model, params=EnrichParams(concurrency=1), limit=limit)
        print(f"SIRA enrichment: {report.summary()}")
        out["enrich"] = report.model_dump(mode="json")
        enriched = get_retriever("bm25", corpus, enriched=True)  # the kept phrases appended in the index
        sira = get_retriever("sira", corpus, model=model)
        out["enriched"], out["sira"] = {}, {}
        for q in QUERIES:
            hits = enriched.search(q, 3)
            show(f"bm25 over the enriched index {q!r}", hits)
            out["enriched"][q] = [h.doc_id for h in hits]
            result = sira.run(q, 3)  # the hits and what SIRA decided (proposed, kept, rejected phrases)
            hits, kept = result.hits, result.decided()["kept"]
            show(f"sira {q!r} (expanded with {kept})", hits)
            out["sira"][q] = {"doc_ids": [h.doc_id for h in hits], "phrases": kept}
    finally:
        close = getattr(model, "close", None)
        if close:
            close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=str(HERE / "corpus"))
    parser.add_argument("--model", default="local")
    parser.add_argument("--no-model", action="store_true", help="Index, search and df only.")
    parser.add_argument("--limit", type=int, default=3, help="Documents to enrich (SIRA corpus side).")
    parser.add_argument("--in-place", action="store_true", help="Write the indexes into the corpus itself.")
    args = parser.parse_args(argv)

    from sleuth.errors import SleuthError

    src = Path(args.corpus)
    try:
        if args.in_place:
            run(src, None if args.no_model else args.model, args.limit)
        else:
            with tempfile.TemporaryDirectory(prefix="sleuth-example-") as tmp:
                work = Path(tmp) / src.name
                shutil.copytree(src, work, ignore=shutil.ignore_patterns(".sleuth"))
                run(work, None if args.no_model else args.model, args.limit)
    except SleuthError as e:
        print(f"error ({type(e).__name__}): {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
