"""Rerank search results with ICR (in-context reranking by attention) and compare with the first-stage order.

BM25 retrieves candidates; ``get_reranker("icr")`` reorders them by how much attention the local model's query
tokens pay to each document (Chen et al. 2024), on the CPU, with the same Qwen2.5-Coder-0.5B weights the embedded
model uses (needs ``pip install 'sleuth-search[attention]'``; the first run dequantizes the GGUF once, ~1-3 min,
later runs reload a cached copy in seconds). The same reranker is what the ``rerank`` tool of the agent and of
``sleuth mcp --reranker icr`` uses.

    python examples/rerank_icr.py
    python examples/rerank_icr.py --query "Which ship kept a log in 2012?" --depth 8
    python examples/rerank_icr.py --reranker listwise     # RankGPT-style, through the chat model instead
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
DEFAULT_QUERY = "Who is the engineer that designed the bridge at Dunmore?"


def run(corpus_dir: Path, query: str, depth: int, reranker_name: str, model_spec: str) -> dict[str, Any]:
    from sleuth.corpus import Corpus
    from sleuth.rerank import get_reranker
    from sleuth.retrieval import get_retriever

    corpus = Corpus(corpus_dir)
    hits = get_retriever("bm25", corpus).search(query, depth)
    print(f"bm25 top {len(hits)} for {query!r}:")
    for i, h in enumerate(hits, 1):
        print(f"  {i}. {h.doc_id}  {h.score:.3f}")
    reranker = get_reranker(reranker_name, model=None if reranker_name == "icr" else model_spec)
    t0 = time.perf_counter()
    ranked = reranker.rerank(query, hits, len(hits))
    seconds = time.perf_counter() - t0
    print(f"{reranker_name} order ({seconds:.1f} s):")
    for i, h in enumerate(ranked, 1):
        before = next(j for j, x in enumerate(hits, 1) if x.doc_id == h.doc_id)
        score = f"{h.score:.4f}" if h.score is not None else "-"
        print(f"  {i}. {h.doc_id}  {score}  (bm25 rank {before})")
    return {
        "query": query,
        "bm25": [h.doc_id for h in hits],
        "reranked": [h.doc_id for h in ranked],
        "reranker": reranker_name,
        "seconds": round(seconds, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=str(HERE / "corpus"))
    parser.add_argument("--query", default=DEFAULT_QUERY)
    parser.add_argument("--depth", type=int, default=6, help="How many BM25 hits to rerank.")
    parser.add_argument("--reranker", default="icr", help="icr, listwise or first.")
    parser.add_argument("--model", default="local", help="Chat model for listwise/first (ICR uses its own copy).")
    args = parser.parse_args(argv)

    from sleuth.errors import SleuthError

    src = Path(args.corpus)
    try:
        with tempfile.TemporaryDirectory(prefix="sleuth-example-") as tmp:
            work = Path(tmp) / src.name
            shutil.copytree(src, work, ignore=shutil.ignore_patterns(".sleuth"))
            run(work, args.query, args.depth, args.reranker, args.model)
    except SleuthError as e:
        print(f"error ({type(e).__name__}): {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
