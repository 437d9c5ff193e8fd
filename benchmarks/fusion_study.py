"""Hybrid fusion study: BM25 and dense lists per query, cached, then every fusion scored on the same lists.

    PYTHONPATH=src nice -n 10 .venv/bin/python benchmarks/fusion_study.py warm SET [--max-seconds 540]
    PYTHONPATH=src nice -n 10 .venv/bin/python benchmarks/fusion_study.py lists SET
    PYTHONPATH=src .venv/bin/python benchmarks/fusion_study.py table [--sets a,b] [--fusions rrf,zscore,adaptive]

``warm`` embeds a set's documents and queries with MiniLM into the embedding cache (``CachedEmbedder``, SQLite
under ``$SLEUTH_HOME/embeddings``) in chunks, committing each chunk, and stops cleanly after ``--max-seconds``
(rerun it to go on): a dense index costs minutes on 2 shared cores, and a rerun costs nothing. ``lists`` runs the
evaluation's own retrievers (the corpus BM25 index and dense index of ``sleuth eval beir|hotpotqa``, or the
``ToolCatalog`` of ``sleuth eval tools``) for every query and stores each list (ids and scores, to the depth the
hybrid retriever fuses: 100 for corpora, 50 for tool catalogs) plus the query's IDF statistics under
``$SLEUTH_HOME/fusion-study/SET.json``. ``table`` fuses the stored lists with
:func:`sleuth.retrieval.fusion.fuse` (the code ``HybridRetriever`` runs) and scores them with
``sleuth.evals.metrics`` (trec_eval): nDCG@10, Recall@5/10, and Sufficiency@5 for tool sets.

Which sets the adaptive fusion was tuned on (``TUNE``): SciFact *train*, MetaTool (2,000 queries disjoint from the
2,000-query evaluation sample) and StableToolBench. Everything else is held out.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DATA = Path(os.environ.get("SLEUTH_SHARED_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")


@dataclass(frozen=True)
class SetDef:
    task: str  # beir | hotpotqa | tools
    path: str  # relative to DATA
    split: str = "test"
    subset: str | None = None
    sample: str | None = None  # "eval" | "tune" (MetaTool's 21k queries)


SETS: dict[str, SetDef] = {
    "scifact-train": SetDef("beir", "beir/scifact", "train"),
    "scifact-test": SetDef("beir", "beir/scifact", "test"),
    "hotpotqa-reflexion100": SetDef("hotpotqa", "hotpotqa/distractor_dev_reflexion100.jsonl"),
    "metatool-tune": SetDef("tools", "metatool", sample="tune"),
    "metatool": SetDef("tools", "metatool", sample="eval"),
    "stabletoolbench": SetDef("tools", "stabletoolbench"),
    "gorilla-hf": SetDef("tools", "gorilla_apibench", subset="huggingface"),
    "gorilla-tfhub": SetDef("tools", "gorilla_apibench", subset="tensorflowhub"),
    "gorilla-torchhub": SetDef("tools", "gorilla_apibench", subset="torchhub"),
    "mtrb-metatool": SetDef("tools", "mtrb", subset="metatool"),
    "mtrb-restbench": SetDef("tools", "mtrb", subset="restbench"),
}
TUNE = ("scifact-train", "metatool-tune", "stabletoolbench")
SAMPLE = 2000  # MetaTool: `sleuth eval tools --limit 2000 --seed 0` is the evaluation sample; tuning takes the next 2000
CORPUS_DEPTH, TOOL_DEPTH = 100, 50


def out_dir() -> Path:
    from sleuth.config import sleuth_home

    d = sleuth_home() / "fusion-study"
    d.mkdir(parents=True, exist_ok=True)
    return d


class LazyMiniLM:
    """The packaged MiniLM, loaded on the first text the cache does not hold (a fully cached set needs no torch)."""

    name, max_tokens, dim = "minilm", 256, 384

    def __init__(self) -> None:
        self._inner: Any = None

    def embed(self, texts: Any, *, progress: bool | None = False) -> Any:
        if self._inner is None:
            import torch

            torch.set_num_threads(int(os.environ.get("SLEUTH_TORCH_THREADS", "1")))
            from sleuth.retrieval.embeddings import get_embedder

            self._inner = get_embedder("minilm")
        return self._inner.embed(texts, progress=progress)


def embedder() -> Any:
    from sleuth.retrieval.embeddings import CachedEmbedder

    return CachedEmbedder(LazyMiniLM())


def load(name: str) -> Any:
    """The evaluation set (as `sleuth eval` loads it), its questions (MetaTool: the sample)."""
    from sleuth.evals import datasets as D
    from sleuth.evals.datasets.base import seeded_order

    sd = SETS[name]
    p = DATA / sd.path
    if sd.task == "beir":
        es = D.load_beir(p, sd.split)
    elif sd.task == "hotpotqa":
        es = D.load_hotpotqa(p)
    else:
        es = D.load_tools(p, sd.subset)
    if sd.sample:
        order = seeded_order(es.questions, 0)
        es.questions = order[:SAMPLE] if sd.sample == "eval" else order[SAMPLE : 2 * SAMPLE]
    return es


def _corpus(es: Any) -> Any:
    from sleuth.evals.corpora import corpus_for

    return corpus_for(es, progress=False)


def _catalog(es: Any, emb: Any) -> Any:
    from sleuth.evals.build import _tool_catalog

    cat = _tool_catalog(es, None)
    cat.embedder = emb
    return cat


def doc_texts(es: Any, emb: Any) -> list[str]:
    if es.kind == "tools":
        return list(_catalog(es, emb).documents)
    from sleuth.retrieval.dense import _read_texts

    corpus = _corpus(es)
    return _read_texts(corpus, corpus.doc_ids())


def cmd_warm(name: str, max_seconds: float, chunk: int = 128) -> None:
    t0 = time.time()
    emb = embedder()
    es = load(name)
    texts = doc_texts(es, emb) + [q.question for q in es.questions]
    from sleuth.retrieval.embeddings import content_key

    have = {r[0] for r in emb._db.execute("SELECT key FROM vec")}
    todo = list(dict.fromkeys(t for t in texts if content_key(emb.name, t) not in have))
    print(f"{name}: {len(texts)} texts, {len(todo)} not cached", flush=True)
    done = 0
    for a in range(0, len(todo), chunk):
        if time.time() - t0 > max_seconds:
            print(f"{name}: stopped after {time.time() - t0:.0f} s, {len(todo) - done} left (rerun warm)", flush=True)
            sys.exit(3)
        emb.embed(todo[a : a + chunk])
        done += len(todo[a : a + chunk])
        print(f"  {done}/{len(todo)} ({time.time() - t0:.0f} s)", flush=True)
    print(f"{name}: all cached ({time.time() - t0:.0f} s)", flush=True)


def cmd_lists(name: str) -> None:
    """Each query's BM25 and dense list with scores, and the query's IDF statistics, from the eval's retrievers."""
    from sleuth.retrieval.fusion import query_idf

    t0 = time.time()
    emb = embedder()
    es = load(name)
    queries = [q.question for q in es.questions]
    emb.embed(queries)  # one batch (cached after warm); the retrievers' per-query embeds then hit the cache
    if es.kind == "tools":
        cat = _catalog(es, emb)
        bm25, dense, depth = cat.lexical(), cat.dense(queries), TOOL_DEPTH
        n_docs = len(cat.tools)
    else:
        from sleuth.retrieval import get_retriever
        from sleuth.retrieval.dense import DenseIndex, DenseRetriever

        corpus = _corpus(es)
        bm25 = get_retriever("bm25", corpus, build_missing=True)
        dense = DenseRetriever(DenseIndex.open(corpus, emb), emb, with_text=False)
        depth = CORPUS_DEPTH
        n_docs = len(corpus)
        to_orig = corpus.original_id
    rows = []
    for q in es.questions:
        parts = [bm25.run(q.question, depth), dense.run(q.question, depth)]
        lists = []
        for p in parts:
            ids = [h.doc_id for h in p.hits]
            if es.kind != "tools":
                ids = [to_orig(d) for d in ids]
            lists.append({"ids": ids, "scores": [float(h.score or 0.0) for h in p.hits]})
        rows.append({
            "id": q.id, "query": q.question, "relevance": q.relevance, "bm25": lists[0], "dense": lists[1],
            "idf": query_idf(bm25, q.question),
        })
    out = out_dir() / f"{name}.json"
    out.write_text(json.dumps({"set": name, "kind": es.kind, "n_docs": n_docs, "depth": depth, "rows": rows}))
    print(f"{name}: {len(rows)} queries, {n_docs} docs -> {out} ({time.time() - t0:.0f} s)")


def read_lists(name: str) -> dict[str, Any]:
    path = out_dir() / f"{name}.json"
    if not path.is_file():
        raise SystemExit(f"no lists for {name}: run `fusion_study.py lists {name}` first")
    return json.loads(path.read_text())


def as_hits(lst: dict[str, Any], source: str) -> list[Any]:
    from sleuth.records import Hit

    return [Hit(doc_id=d, score=s, source=source) for d, s in zip(lst["ids"], lst["scores"], strict=True)]


def fold_priors(data: dict[str, Any], params: Any, limit: int = 1000) -> dict[int, Any]:
    """Cross-calibration as ``HybridRetriever.cross_calibrated`` / ``ToolCatalog.calibrate(cross=True)`` do it:
    queries split in two halves by their text, each half's prior computed on (up to ``limit`` distinct queries of)
    the other half. Labels are not used."""
    from sleuth.retrieval.fusion import calibrate_prior, calibration_fold

    halves: dict[int, list[Any]] = {0: [], 1: []}
    seen: set[str] = set()
    for r in data["rows"]:
        if r["query"] in seen or not r["query"].strip():
            continue
        seen.add(r["query"])
        halves[calibration_fold(r["query"])].append([as_hits(r["bm25"], "bm25"), as_hits(r["dense"], "dense")])
    return {f: calibrate_prior((halves[1 - f] or halves[f])[:limit], params, ["bm25", "dense"]) for f in (0, 1)}


def fused_rankings(
    data: dict[str, Any], fusion: str, params: Any = None
) -> tuple[dict[str, list[str]], list[list[float]]]:
    """Each query's ranking (doc ids) under ``fusion`` (``bm25``/``dense``: that list alone), and its weights.
    ``adaptive``: calibrated per collection by 2-fold cross-calibration; ``adaptive-query``: no prior."""
    from sleuth.retrieval.fusion import AdaptiveParams, calibration_fold, fuse

    params = params or AdaptiveParams()
    priors = fold_priors(data, params) if fusion == "adaptive" else {}
    name = "adaptive" if fusion == "adaptive-query" else fusion
    out: dict[str, list[str]] = {}
    weights: list[list[float]] = []
    for r in data["rows"]:
        if fusion in ("bm25", "dense"):
            out[r["id"]] = list(r[fusion]["ids"])
            continue
        f = fuse(name, [as_hits(r["bm25"], "bm25"), as_hits(r["dense"], "dense")], names=["bm25", "dense"],
                 lexical=0, idf=r["idf"], params=params, prior=priors.get(calibration_fold(r["query"])))
        out[r["id"]] = [h.doc_id for h in f.hits]
        weights.append(f.weights)
    return out, weights


def gold(data: dict[str, Any]) -> dict[str, dict[str, int]]:
    return {r["id"]: {d: int(g) for d, g in r["relevance"].items() if int(g) > 0} for r in data["rows"]}


def scores(data: dict[str, Any], rankings: dict[str, list[str]]) -> dict[str, float]:
    from sleuth.evals import metrics as M

    qrels = gold(data)
    per = M.ranking_scores_many(qrels, rankings, ["ndcg@10", "recall@5", "recall@10"])
    n = len(next(iter(per.values())))
    out = {m: sum(v) / n for m, v in per.items()} | {"n": n}
    if data["kind"] == "tools":
        out["sufficiency@5"] = sum(M.sufficiency_at_k(qrels[q], rankings.get(q, []), 5) for q in qrels) / len(qrels)
    return out


def per_query(data: dict[str, Any], rankings: dict[str, list[str]]) -> list[float]:
    from sleuth.evals import metrics as M

    return M.ranking_scores_many(gold(data), rankings, ["ndcg@10"])["ndcg@10"]


def paired_ci(a: list[float], b: list[float], n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of a - b and its 95% paired bootstrap interval (queries resampled with replacement)."""
    rng = random.Random(seed)
    d = [x - y for x, y in zip(a, b, strict=True)]
    n = len(d)
    means = sorted(sum(d[rng.randrange(n)] for _ in range(n)) / n for _ in range(n_boot))
    return sum(d) / n, means[int(0.025 * n_boot)], means[int(0.975 * n_boot) - 1]


def details(sets: list[str], fusions: list[str], against: str = "adaptive") -> None:
    """Per set and method: nDCG@10, Recall@5/10 (Sufficiency@5 for tools); then ``against`` minus the better part
    and minus each other fusion, with 95% paired bootstrap intervals."""
    cols = ["bm25", "dense", *fusions]
    print("| set | method | nDCG@10 | R@5 | R@10 | Suff@5 |")
    print("|---|---|---|---|---|---|")
    diffs = []
    for name in sets:
        if not (out_dir() / f"{name}.json").is_file():
            continue
        data = read_lists(name)
        runs = {f: fused_rankings(data, f)[0] for f in cols}
        for f in cols:
            sc = scores(data, runs[f])
            suff = f"{sc['sufficiency@5']:.4f}" if "sufficiency@5" in sc else "—"
            print(f"| {name} | {f} | {sc['ndcg@10']:.4f} | {sc['recall@5']:.4f} | {sc['recall@10']:.4f} | {suff} |")
        pq = {f: per_query(data, runs[f]) for f in cols}
        best = max(("bm25", "dense"), key=lambda f: sum(pq[f]))
        row = [name, best, paired_ci(pq[against], pq[best])]
        row += [paired_ci(pq[against], pq[f]) for f in fusions if f != against]
        diffs.append(row)
    others = [f for f in fusions if f != against]
    print(f"\n| set | better part | {against} − better part [95% CI] | "
          + " | ".join(f"{against} − {f}" for f in others) + " |")
    print("|---|---|---|" + "---|" * len(others))
    for name, best, *cis in diffs:
        cells = [f"{m:+.4f} [{lo:+.4f}, {hi:+.4f}]" for m, lo, hi in cis]
        print(f"| {name} | {best} | " + " | ".join(cells) + " |")


def table(sets: list[str], fusions: list[str]) -> None:
    cols = ["bm25", "dense", *fusions]
    print("| set | queries | docs | " + " | ".join(cols) + " | best part |")
    print("|---|---|---|" + "---|" * len(cols) + "---|")
    for name in sets:
        if not (out_dir() / f"{name}.json").is_file():
            continue
        data = read_lists(name)
        row = {f: scores(data, fused_rankings(data, f)[0]) for f in cols}
        best = max(row["bm25"]["ndcg@10"], row["dense"]["ndcg@10"])
        cells = []
        for f in cols:
            v = row[f]["ndcg@10"]
            mark = "" if f in ("bm25", "dense") else (" ✓" if v >= best - 1e-9 else " ✗")
            cells.append(f"{v:.4f}{mark}")
        tag = " (tuning)" if name in TUNE else ""
        print(f"| {name}{tag} | {row['bm25']['n']} | {data['n_docs']} | " + " | ".join(cells) + f" | {best:.4f} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("warm")
    w.add_argument("set", choices=sorted(SETS))
    w.add_argument("--max-seconds", type=float, default=540)
    ls = sub.add_parser("lists")
    ls.add_argument("set", choices=sorted(SETS))
    tb = sub.add_parser("table")
    tb.add_argument("--sets", default=",".join(SETS))
    tb.add_argument("--fusions", default="rrf,zscore,minmax,vstash,adaptive-query,adaptive")
    tb.add_argument("--details", action="store_true", help="every metric, and paired bootstrap intervals")
    args = ap.parse_args()
    random.seed(0)
    if args.cmd == "warm":
        cmd_warm(args.set, args.max_seconds)
    elif args.cmd == "lists":
        cmd_lists(args.set)
    else:
        (details if args.details else table)(args.sets.split(","), args.fusions.split(","))


if __name__ == "__main__":
    main()
