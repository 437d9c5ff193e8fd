"""Retrieval quality of BM25 and SIRA (query side) on BEIR-format data, with ranx.

    python benchmarks/lexical_quality.py bm25 --data ../shared/data/beir/scifact --split test
    python benchmarks/lexical_quality.py propose --data DIR --split train --limit 100 --model local --cache F.jsonl
    python benchmarks/lexical_quality.py tune --data DIR --split train --cache F.jsonl
    python benchmarks/lexical_quality.py sira --data DIR --split test --cache F.jsonl [--max-df-ratio R --weight W]

`propose` makes the one LLM call per query and appends {query id, phrases, fallback, usage} to a JSONL cache
(resumable: queries already in the cache are skipped). `tune` and `sira` replay the cached proposals through the
df filter and the weighted BM25 call, so a parameter grid costs no model calls. The corpus is imported into
/tmp/sleuth-lexical/<name> on first use.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path("/tmp/sleuth-lexical")


def load_split(data: Path, split: str) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    qrels: dict[str, dict[str, int]] = {}
    with (data / "qrels" / f"{split}.tsv").open() as fh:
        next(fh)
        for line in fh:
            q, d, s = line.rstrip("\n").split("\t")
            qrels.setdefault(q, {})[d] = int(s)
    qfile = data / ("queries.jsonl" if split == "test" else f"queries_{split}.jsonl")
    queries = {}
    for line in qfile.open():
        o = json.loads(line)
        if o["_id"] in qrels:
            queries[o["_id"]] = o["text"]
    return queries, qrels


def corpus_for(data: Path):  # type: ignore[no-untyped-def]
    from sleuth.corpus import Corpus
    from sleuth.importers import import_corpus

    dest = ROOT / (data.parent.name + "-" + data.name)
    if not (dest / ".sleuth" / "corpus.json").is_file():
        import_corpus(data / "corpus.jsonl", dest, progress=False)
    return Corpus(dest)


def evaluate(run: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]]) -> dict[str, float]:
    from ranx import Qrels, Run, evaluate as ev

    qrels = {q: qrels[q] for q in run}
    run = {q: (r or {"__none__": 0.0}) for q, r in run.items()}
    out = ev(Qrels(qrels), Run(run), ["ndcg@10", "recall@100"])
    return {k: round(float(v), 4) for k, v in out.items()}


def bm25_run(corpus, retriever, queries: dict[str, str], k: int = 100) -> dict[str, dict[str, float]]:  # type: ignore[no-untyped-def]
    run = {}
    for q, text in queries.items():
        run[q] = {corpus.original_id(h.doc_id): h.score for h in retriever.search(text, k)}
    return run


def read_cache(path: Path) -> dict[str, dict]:
    out: dict[str, dict] = {}
    if path.is_file():
        for line in path.open():
            try:
                o = json.loads(line)
                out[o["qid"]] = o
            except (json.JSONDecodeError, KeyError):
                continue
    return out


def cmd_bm25(a: argparse.Namespace) -> dict:
    from sleuth.retrieval.bm25 import BM25Retriever

    corpus = corpus_for(a.data)
    r = BM25Retriever.open(corpus, rebuild=True)
    queries, qrels = load_split(a.data, a.split)
    if a.limit:
        queries = dict(list(queries.items())[: a.limit])
    t0 = time.perf_counter()
    run = bm25_run(corpus, r, queries)
    return {"method": "bm25", "data": str(a.data), "split": a.split, "queries": len(queries),
            "seconds": round(time.perf_counter() - t0, 2), **evaluate(run, qrels)}


def cmd_propose(a: argparse.Namespace) -> dict:
    from sleuth.llm import get_model
    from sleuth.retrieval.bm25 import BM25Retriever
    from sleuth.retrieval.sira import SiraParams, SiraRetriever

    corpus = corpus_for(a.data)
    queries, _ = load_split(a.data, a.split)
    queries = dict(list(queries.items())[: a.limit]) if a.limit else queries
    cache = read_cache(a.cache)
    todo = [(q, t) for q, t in queries.items() if q not in cache]
    sira = SiraRetriever(BM25Retriever.open(corpus, rebuild=True), get_model(a.model, timeout_s=a.timeout),
                         params=SiraParams())
    a.cache.parent.mkdir(parents=True, exist_ok=True)

    def one(item: tuple[str, str]) -> dict:
        q, text = item
        t0 = time.perf_counter()
        phrases, usage, fallback = sira.propose(text)
        return {"qid": q, "query": text, "phrases": [p.model_dump() for p in phrases], "fallback": fallback,
                "usage": usage.model_dump(), "seconds": round(time.perf_counter() - t0, 2)}

    done = 0
    with a.cache.open("a") as fh, ThreadPoolExecutor(a.workers) as pool:
        for row in pool.map(one, todo):
            fh.write(json.dumps(row) + "\n")
            fh.flush()
            done += 1
            print(f"{done}/{len(todo)} {row['seconds']}s {row['fallback'] or [p['text'] for p in row['phrases']]}",
                  file=sys.stderr, flush=True)
    return {"proposed": done, "cached": len(cache) + done}


def sira_runs(a: argparse.Namespace, grid: list[tuple[float, float, bool]]):  # type: ignore[no-untyped-def]
    from sleuth.llm.fake import ScriptedModel
    from sleuth.retrieval.bm25 import BM25Retriever
    from sleuth.retrieval.sira import SiraParams, SiraRetriever, WeightedPhrase

    corpus = corpus_for(a.data)
    queries, qrels = load_split(a.data, a.split)
    cache = read_cache(a.cache)
    qids = [q for q in queries if q in cache]
    if a.limit:
        qids = qids[: a.limit]
    bm25 = BM25Retriever.open(corpus, rebuild=True)
    sira = SiraRetriever(bm25, ScriptedModel())  # proposals come from the cache, never from this model
    base = evaluate(bm25_run(corpus, bm25, {q: queries[q] for q in qids}), qrels)
    rows = []
    for ratio, weight, use_mw in grid:
        p = SiraParams(max_df_ratio=ratio, weight=weight, use_model_weights=use_mw)
        run = {}
        kept = 0
        for q in qids:
            phrases = [WeightedPhrase(**x) for x in cache[q]["phrases"]]
            dec = sira.decide(queries[q], phrases, p)
            kept += sum(d.kept for d in dec)
            sira.params = p
            run[q] = {corpus.original_id(h.doc_id): h.score for h in sira.combine(queries[q], dec, 100)}
        rows.append({"max_df_ratio": ratio, "weight": weight, "use_model_weights": use_mw,
                     "kept_per_query": round(kept / max(len(qids), 1), 2), **evaluate(run, qrels)})
    fallbacks = sum(1 for q in qids if cache[q]["fallback"])
    return {"queries": len(qids), "bm25": base, "fallbacks": fallbacks, "rows": rows}


def cmd_tune(a: argparse.Namespace) -> dict:
    grid = [(r, w, True) for r in (0.005, 0.01, 0.02, 0.05, 0.1, 0.2) for w in (0.1, 0.2, 0.3, 0.5, 0.75, 1.0)]
    out = sira_runs(a, grid)
    out["rows"].sort(key=lambda r: -r["ndcg@10"])
    out["best"] = out["rows"][0]
    out["rows"] = out["rows"][: a.top]
    return out


def cmd_sira(a: argparse.Namespace) -> dict:
    return sira_runs(a, [(a.max_df_ratio, a.weight, True)])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd", choices=["bm25", "propose", "tune", "sira"])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--model", default="local")
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds per model call (a busy shared server)")
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("--max-df-ratio", type=float, default=None)
    ap.add_argument("--weight", type=float, default=None)
    a = ap.parse_args()
    if a.cmd == "sira" and (a.max_df_ratio is None or a.weight is None):
        from sleuth.retrieval.sira import SiraParams

        d = SiraParams()
        a.max_df_ratio = d.max_df_ratio if a.max_df_ratio is None else a.max_df_ratio
        a.weight = d.weight if a.weight is None else a.weight
    out = {"propose": cmd_propose, "bm25": cmd_bm25, "tune": cmd_tune, "sira": cmd_sira}[a.cmd](a)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
