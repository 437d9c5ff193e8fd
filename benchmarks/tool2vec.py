"""tool2vec against bm25, dense and hybrid, with real usage from a train split. No model: embeddings only
(MiniLM, cached).

* ``--set metatool`` (default): MetaTool's single-tool queries split 80/20 by query (seeded; equal texts on one
  side): the 80% are the usage requests, the 20% the test requests.
* ``--set stabletoolbench``: the G1 queries (474) are the usage, G2 and G3 (291) the test requests; only part of
  the G2/G3 gold APIs ever appear in G1 (the others fall back to their descriptions).
* ``--set metatool --multi``: the same usage (the single-tool 80%), scored on MetaTool's 497 multi-tool queries
  (each needs two tools or more): Sufficiency@k, all of a request's tools in the top k, is the measure.
* ``--set stabletoolbench --score-g1``: the G1 queries themselves (the split the issue allows tuning on), for
  methods that use no usage (``--variants bm25,dense,hybrid``).
* ``--set torchhub``: Gorilla APIBench's TorchHub train split (837 instructions, each mapped to the API whose call
  it uses) is the usage, the 186 eval queries the test requests.
* ``--generated FILE``: the usage is a generation file instead (``generated.jsonl`` of ``sleuth tools usage
  generate``; its kept requests); the test requests are as above (all of a set without a train split). Sets with
  no real usage take only this: ``restbench``, ``mtrb-metatool``, ``mtrb-toolbench`` (MTRB's test queries),
  ``huggingface``, ``tensorflowhub`` (Gorilla's eval queries).

    nice -n 10 .venv/bin/python benchmarks/tool2vec.py [--set metatool] [--seed 0] [--sample N] [--json OUT]

``--sample N`` scores a seeded sample of N test requests (all by default). The catalog is built as ``sleuth eval
tools`` builds it (tool name, then its description), scored by ``evaluate_tool_retrieval`` (trec_eval through
``sleuth.evals.metrics``). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

from sleuth.evals.datasets.tools import gorilla_train_usage, load_tools, split_by_query, usage_records
from sleuth.retrieval.tools import ToolCatalog, ToolSpec, evaluate_tool_retrieval
from sleuth.retrieval.tools.usage import UsageRecord
from sleuth.retrieval.tools.usage_gen import generated_usage

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SETS = {  # name -> (folder under shared/data, subset)
    "metatool": ("metatool", None), "stabletoolbench": ("stabletoolbench", None),
    "torchhub": ("gorilla_apibench", "torchhub"), "huggingface": ("gorilla_apibench", "huggingface"),
    "tensorflowhub": ("gorilla_apibench", "tensorflowhub"), "restbench": ("mtrb", "restbench"),
    "mtrb-metatool": ("mtrb", "metatool"), "mtrb-toolbench": ("mtrb", "toolbench"),
}
REAL_USAGE = ("metatool", "stabletoolbench", "torchhub")
VARIANTS = {  # name -> (method, catalog options)
    "bm25": ("bm25", {}),
    "dense": ("dense", {}),
    "hybrid": ("hybrid", {}),
    "tool2vec": ("tool2vec", {}),
    "tool2vec centroid": ("tool2vec", {"usage_form": "centroid"}),
    "tool2vec + dense (rrf)": ("tool2vec", {"usage_fusion": "rrf"}),
    "tool2vec + dense (zscore)": ("tool2vec", {"usage_fusion": "zscore"}),
    "tool2vec centroid + dense (rrf)": ("tool2vec", {"usage_form": "centroid", "usage_fusion": "rrf"}),
    "tool2vec centroid + dense (zscore)": ("tool2vec", {"usage_form": "centroid", "usage_fusion": "zscore"}),
    "tool2vec + hybrid (zscore)": ("tool2vec", {"usage_fusion": "zscore", "usage_fuse_with": "hybrid"}),
    "tool2vec centroid + hybrid (rrf)": ("tool2vec", {"usage_form": "centroid", "usage_fusion": "rrf",
                                                       "usage_fuse_with": "hybrid"}),
    "tool2vec centroid + hybrid (zscore)": ("tool2vec", {"usage_form": "centroid", "usage_fusion": "zscore",
                                                          "usage_fuse_with": "hybrid"}),
}


def load_set(args: argparse.Namespace) -> tuple[Any, list[ToolSpec], dict[str, str], dict[str, list[str]],
                                                 list[UsageRecord], int]:
    """``(embedder, tools, test queries, their gold, usage, number of train queries)`` for ``args.set``, as the
    module doc says; prints the set's header line and fills the vector cache with the usage requests."""
    from sleuth.retrieval.embeddings import CachedEmbedder, get_embedder

    emb = CachedEmbedder(get_embedder(args.embedder), args.cache)
    where, subset = SETS[args.set]
    folder = args.data or DATA / where
    es = load_tools(folder, subset)
    if args.set not in REAL_USAGE or args.set == "torchhub":  # every eval query is a test request
        single = es.questions
        train, test = [], es.questions
    elif args.set == "metatool":
        single = [q for q in es.questions if len(q.relevance) == 1]
        train, test = split_by_query(single, seed=args.seed, train=0.8)
        if args.multi:
            test = [q for q in es.questions if len(q.relevance) > 1]
    else:
        single = es.questions
        train = [q for q in es.questions if q.id.startswith("G1_")]
        test = [q for q in es.questions if not q.id.startswith("G1_")]
        if args.score_g1:
            test = train
    if args.sample and len(test) > args.sample:
        test = random.Random(args.seed).sample(test, args.sample)
    if args.generated:
        usage, train = generated_usage(args.generated), []
    elif args.set == "torchhub":
        usage = gorilla_train_usage(folder, "torchhub")
    else:
        usage = usage_records(train)
    tools = [ToolSpec(name=t.id, description=t.description if t.name == t.id else f"{t.name}. {t.description}")
             for t in es.tools]
    queries = {q.id: q.question for q in test}
    gold = {q.id: list(q.relevance) for q in test}
    print(f"<!-- {es.name}: {len(tools)} tools, {len(single)} queries; seed {args.seed}: "
          f"{len(train) or len(usage)} {'generated' if args.generated else 'train'} (usage), {len(test)} test; "
          f"embedder {emb.name} -->")
    for a in range(0, len(usage), 1000):  # into the vector cache in chunks: a killed run resumes where it was
        emb.embed([u.request for u in usage[a : a + 1000]])
    return emb, tools, queries, gold, usage, len(train)


def parser() -> argparse.ArgumentParser:
    """The options (shared with ``tool2vec_alternatives.py``)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", default="metatool", choices=list(SETS))
    ap.add_argument("--generated", default=None, help="usage from this generated.jsonl instead of a train split")
    ap.add_argument("--data", default=None, help="the set's folder (default: ../shared/data/<set>)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sample", type=int, default=0)
    ap.add_argument("--multi", action="store_true", help="metatool: score the multi-tool queries (Sufficiency@k)")
    ap.add_argument("--score-g1", action="store_true",
                    help="stabletoolbench: score the G1 queries (the tuning split; methods without usage only)")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--embedder", default="minilm")
    ap.add_argument("--cache", default="/tmp/sleuth-tool-eval-embeddings.sqlite")
    ap.add_argument("--json", default=None, help="write the figures here too")
    return ap


def main() -> None:
    ap = parser()
    args = ap.parse_args()
    if args.set not in REAL_USAGE and not args.generated and any(v.startswith("tool2vec") for v in
                                                                   args.variants.split(",")):
        ap.error(f"--set {args.set} has no train split: pass --generated FILE, or --variants bm25,dense,hybrid")
    emb, tools, queries, gold, usage, n_train = load_set(args)
    print("| method | R@1 | R@3 | R@5 | R@10 | nDCG@10 | Suff@3 | Suff@5 | Suff@10 | s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    out = []
    for name in args.variants.split(","):
        method, opts = VARIANTS[name]
        cat = ToolCatalog(tools, embedder=emb, **opts)
        t0 = time.perf_counter()
        if method == "tool2vec":
            rep = cat.add_usage(usage)
            print(f"<!-- {name}: {rep.summary()} -->", flush=True)
        r = evaluate_tool_retrieval(cat, queries, gold, method, (1, 3, 5, 10))
        dt = time.perf_counter() - t0
        r |= {"variant": name, "seconds": round(dt, 1), "train": n_train, "seed": args.seed}
        out.append(r)
        print(f"| {name} | {r['recall@1']:.4f} | {r['recall@3']:.4f} | {r['recall@5']:.4f} | {r['recall@10']:.4f} | "
              f"{r['ndcg@10']:.4f} | {r['sufficiency@3']:.4f} | {r['sufficiency@5']:.4f} | "
              f"{r['sufficiency@10']:.4f} | {dt:.0f} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
