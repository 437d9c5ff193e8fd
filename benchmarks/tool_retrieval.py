"""Tool retrieval quality on the shared tool sets: Recall@1/3/5/10, nDCG@10, Sufficiency@k per method.

    nice -n 10 .venv/bin/python benchmarks/tool_retrieval.py [--methods bm25,dense,hybrid] [--limit N]
    nice -n 10 .venv/bin/python benchmarks/tool_retrieval.py --methods bm25,dense,hybrid,llm-query --limit 20 \
        --sets metatool,stabletoolbench,mtrb-restbench --model local

Sets (from ../shared/data, see its MANIFEST.md):
  metatool            beir_format: 199 tools (name + description), 21,111 queries (20,614 single-tool, 497 multi)
  stabletoolbench     beir_format: 2,479 pooled APIs, 765 queries (1-n gold APIs each)
  gorilla-{hf,tfhub,torchhub}  beir_format: API doc pools (JSON text), one gold API per query
  mtrb-metatool       MTRB test: 90 queries over 199 MetaTool tools (MTRB's rewritten descriptions)
  mtrb-restbench      MTRB test: 90 queries over 54 TMDB endpoints (tool name = "GET /path", original description)
(MTRB's ToolBench tool list is absent from the shared data, so mtrb-toolbench is not run.)

``--limit N`` takes the first N queries (file order) of each set, for the slow llm-query method; ``--sample N`` a
seeded random sample of N (used for MetaTool's 21k queries). ``--fusion`` picks hybrid's fusion. Prints Markdown.
Scored by ``evaluate_tool_retrieval``, i.e. ``sleuth.evals.metrics`` (trec_eval), the code that scores ``sleuth eval
tools``; the catalogs here index each tool as its name and description (``sleuth eval tools`` writes "name.
description" for MTRB, hence its slightly different RestBench figures, docs/results/dense.md).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from sleuth.retrieval.tools import ToolCatalog, ToolSpec, evaluate_tool_retrieval

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _beir(folder: Path) -> tuple[list[ToolSpec], dict[str, str], dict[str, list[str]]]:
    tools = []
    for line in (folder / "corpus.jsonl").open(encoding="utf-8"):
        d = json.loads(line)
        tools.append(ToolSpec(name=d["_id"], description=(d.get("title", "") + "\n" + d["text"]).strip()))
    queries = {q["_id"]: q["text"] for q in map(json.loads, (folder / "queries.jsonl").open(encoding="utf-8"))}
    gold: dict[str, list[str]] = {}
    with (folder / "qrels" / "test.tsv").open() as fh:
        next(fh)
        for line in fh:
            qid, did, score = line.rstrip("\n").split("\t")
            if int(score) > 0:
                gold.setdefault(qid, []).append(did)
    return tools, queries, gold


def _mtrb_queries(tools: list[ToolSpec], test: list[dict]):  # type: ignore[no-untyped-def]
    queries = {str(i): t["query"] for i, t in enumerate(test)}
    return tools, queries, {str(i): t["relevant Tools"] for i, t in enumerate(test)}


def _mtrb_metatool(root: Path):  # type: ignore[no-untyped-def]
    api = json.loads((root / "mtrb/metatool/ts_metatool_api_list_rewrite.json").read_text())
    tools = [ToolSpec(name=n, description=d) for n, d in api.items()]
    test = json.loads((root / "mtrb/metatool/mtr_metatool_test.json").read_text())
    return _mtrb_queries(tools, test)


def _mtrb_restbench(root: Path):  # type: ignore[no-untyped-def]
    api = json.loads((root / "mtrb/restbench/tmdb_tool_rewrite.json").read_text())
    tools = [ToolSpec(name=t["tool_usage"], description=t["tool_description"]) for t in api]
    test = json.loads((root / "mtrb/restbench/mtr_restbench_test.json").read_text())
    return _mtrb_queries(tools, test)


LOADERS = {
    "metatool": lambda r: _beir(r / "metatool/beir_format"),
    "stabletoolbench": lambda r: _beir(r / "stabletoolbench/beir_format"),
    "gorilla-hf": lambda r: _beir(r / "gorilla_apibench/beir_format/huggingface"),
    "gorilla-tfhub": lambda r: _beir(r / "gorilla_apibench/beir_format/tensorflowhub"),
    "gorilla-torchhub": lambda r: _beir(r / "gorilla_apibench/beir_format/torchhub"),
    "mtrb-metatool": _mtrb_metatool,
    "mtrb-restbench": _mtrb_restbench,
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(DATA))
    ap.add_argument("--sets", default=",".join(LOADERS))
    ap.add_argument("--methods", default="bm25,dense,hybrid")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--sample", type=int, default=0, help="a seeded random sample of N queries per set (0 = all)")
    ap.add_argument("--fusion", default="zscore", help="hybrid fusion: zscore (the default), rrf, minmax, vstash, adaptive")
    ap.add_argument("--embedder", default="minilm")
    ap.add_argument("--model", default=None, help="chat model for llm-query (sleuth.llm.get_model spec)")
    ap.add_argument("--cache", default="/tmp/sleuth-tool-eval-embeddings.sqlite")
    args = ap.parse_args()
    from sleuth.retrieval.embeddings import CachedEmbedder, get_embedder

    emb = CachedEmbedder(get_embedder(args.embedder), args.cache)
    chat = None
    if "llm-query" in args.methods:
        from sleuth.llm import get_model

        chat = get_model(args.model)
    ks = (1, 3, 5, 10)
    print("| set | tools | queries | method | R@1 | R@3 | R@5 | R@10 | nDCG@10 | Suff@3 | Suff@5 | Suff@10 | s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.sets.split(","):
        tools, queries, gold = LOADERS[name](Path(args.data))
        if args.limit:
            keep = [q for q in queries if q in gold][: args.limit]
            queries = {q: queries[q] for q in keep}
        if args.sample and len(queries) > args.sample:
            import random

            pool = sorted(q for q in queries if q in gold)
            queries = {q: queries[q] for q in random.Random(0).sample(pool, args.sample)}
        cat = ToolCatalog(tools, embedder=emb, model=chat, fusion=args.fusion)
        for method in args.methods.split(","):
            t0 = time.perf_counter()
            r = evaluate_tool_retrieval(cat, queries, gold, method, ks)
            dt = time.perf_counter() - t0
            print(
                f"| {name} | {len(tools)} | {r['n']} | {method} | {r['recall@1']:.3f} | {r['recall@3']:.3f} | "
                f"{r['recall@5']:.3f} | {r['recall@10']:.3f} | {r['ndcg@10']:.3f} | {r['sufficiency@3']:.3f} | "
                f"{r['sufficiency@5']:.3f} | {r['sufficiency@10']:.3f} | {dt:.0f} |",
                flush=True,
            )
        if chat is not None:
            print(f"<!-- {name}: llm usage so far {cat.usage.model_dump_json()} -->", flush=True)


if __name__ == "__main__":
    main()
