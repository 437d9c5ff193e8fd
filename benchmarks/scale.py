"""Scaling on one machine (issue #13): sharded BM25 build time and query throughput, sharded grep throughput, and
the workspace tool's cost against whole-corpus grep, on generated documents. Printed as ratios to the unsharded
figure (and to whole-corpus grep for the workspace).

    python benchmarks/scale.py [--docs 10000[,100000]] [--shards 1,2,4] [--queries 50] [--dir /tmp/sleuth-scale]
                               [--reuse-indexes]

Documents: 120 words each from a Zipf(1.1) vocabulary of 50k pseudo-words, 1,000 files per folder (so grep's shards
are folders). Queries: 5 words of a random document. Rows:

* ``bm25 build``: ``BM25Index.open`` from scratch (tokenizing included); sharded builds use one worker process per
  shard (at most the cores).
* ``bm25 qps``: ``BM25Retriever.search(query, 10)``, one query at a time (a sharded index fans out to threads).
* ``grep``: the grep tool's line mode (``max_matches`` 50, ``--stats`` totals: every file is read) for a word
  ~1% of documents hold, whole corpus vs ``--shards N``.
* ``workspace``: ``workspace_grep`` (BM25 top 100 for the query, then grep inside) vs grep over the whole corpus
  for the query's rarest word.

Runs are interleaved and the best of ``--repeat`` is kept. The figures depend on the machine's cores and load:
run it on a quiet machine. Everything is written under ``--dir``: the corpus is reused when present, the indexes
are rebuilt (timed) unless ``--reuse-indexes``. Every index answers the queries once, and the corpus is grepped
once, before anything is timed, so no row pays the cold page cache alone.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import shutil
import sys
import time
from pathlib import Path


def pseudo_words(n: int, rng: random.Random) -> list[str]:
    letters, vowels = "bcdfghjklmnprstvwz", "aeiou"
    out: set[str] = set()
    while len(out) < n:
        out.add("".join(rng.choice(letters) + rng.choice(vowels) for _ in range(rng.randint(2, 4))))
    return sorted(out)


def generate(root: Path, docs: int, seed: int = 5) -> list[list[str]]:
    """The corpus (written once) and its documents' words (for queries)."""
    rng = random.Random(seed)
    vocab = pseudo_words(50_000, rng)
    cum = list(itertools.accumulate(1.0 / (i + 1) ** 1.1 for i in range(len(vocab))))  # once, not per document
    texts = [rng.choices(vocab, cum_weights=cum, k=120) for _ in range(docs)]  # = choices(vocab, weights, ...)
    marker = root / ".complete"
    if not marker.exists():
        shutil.rmtree(root, ignore_errors=True)
        for i, words in enumerate(texts):
            p = root / f"d{i // 1000:04d}" / f"doc{i:07d}.txt"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text("\n".join(" ".join(words[j:j + 12]) for j in range(0, len(words), 12)), encoding="utf-8")
        marker.write_text("ok")
    return texts


def best(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def run_size(base: Path, docs: int, shard_counts: list[int], n_queries: int, repeat: int,
             reuse_indexes: bool = False) -> None:
    from sleuth.corpus import Corpus
    from sleuth.retrieval.bm25 import BM25Index, BM25Retriever
    from sleuth.retrieval.df import DocFrequency
    from sleuth.tools.grep import GrepArgs, grep
    from sleuth.tools.grep_shards import grep_sharded
    from sleuth.tools.workspace import workspace_tool

    root = base / f"corpus-{docs}"
    texts = generate(root, docs)
    rng = random.Random(1)
    queries = [" ".join(rng.sample(texts[rng.randrange(docs)], 5)) for _ in range(n_queries)]
    print(f"\n== {docs} documents ({sum(f.stat().st_size for f in root.rglob('*.txt')) / 1e6:.0f} MB), "
          f"{os.cpu_count()} cores", flush=True)

    rows: list[tuple[str, float, str]] = []
    indexes = {}
    for n in [0, *shard_counts]:  # 0: one unsharded index
        state = base / f"state-{docs}-{n}"
        if not reuse_indexes:
            shutil.rmtree(state, ignore_errors=True)
        corpus = Corpus(root, state_dir=state)
        t0 = time.perf_counter()
        index = BM25Index.open(corpus, shards=n or None)
        indexes[n] = (corpus, index)
        if not reuse_indexes:
            rows.append((f"bm25 build, {f'{n} shards' if n else 'one index'}", time.perf_counter() - t0, "s"))
    retrievers = {n: BM25Retriever(index) for n, (_, index) in indexes.items()}
    for r in retrievers.values():  # kernels loaded, every index warm in the page cache for these queries
        for q in queries:
            r.search(q, 10)
    for n, r in retrievers.items():
        secs = best(lambda r=r: [r.search(q, 10) for q in queries], repeat)
        rows.append((f"bm25 qps, {f'{n} shards' if n else 'one index'}", len(queries) / secs, "q/s"))

    corpus, index = indexes[0]
    docfreq = DocFrequency(index)
    target = docs // 100
    word = min((abs(docfreq.df(t).df - target), t) for t in index.analyzer.words(" ".join(texts[0] + texts[1])))[1]
    args = GrepArgs(pattern=word, fixed_strings=True, word_regexp=True)
    grep(corpus, args, timeout=600)  # the files warm in the page cache, so no row pays the cold read alone
    whole = best(lambda: grep(corpus, args, timeout=600), repeat)
    rows.append((f"grep {word!r} (df {docfreq.df(word).df}), whole corpus", whole, "s"))
    for n in shard_counts:
        secs = best(lambda n=n: grep_sharded(corpus, args, shards=n, timeout=600), repeat)
        rows.append((f"grep, {n} shards", secs, "s"))

    tool = workspace_tool(corpus, BM25Retriever(index))
    ws_total = all_total = 0.0
    for q in queries[:10]:
        rare = min((docfreq.df(w).df, w) for w in index.analyzer.words(q))[1]
        ws_total += best(lambda q=q, rare=rare: tool.invoke({"query": q, "n": 100, "pattern": rare}), repeat)
        all_total += best(lambda rare=rare: grep(corpus, GrepArgs(pattern=rare), timeout=600), repeat)
    rows.append(("workspace_grep (top 100), 10 queries", ws_total, "s"))
    rows.append(("grep whole corpus, same 10 patterns", all_total, "s"))

    ref = {"bm25 build": rows[0][1] if not reuse_indexes else 1.0,
           "bm25 qps": next(v for k, v, _ in rows if k.startswith("bm25 qps")),
           "grep": whole}
    for name, value, unit in rows:
        family = next((f for f in ref if name.startswith(f) and "same 10" not in name), None)
        ratio = f"{value / ref[family]:.2f}x" if family else ""
        if name.startswith("workspace"):
            ratio = f"{value / all_total:.3f}x of whole-corpus grep"
        print(f"  {name:<48} {value:10.3f} {unit:<4} {ratio}", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--docs", default="10000", help="comma-separated corpus sizes")
    ap.add_argument("--shards", default="1,2,4", help="comma-separated shard counts")
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/sleuth-scale"))
    ap.add_argument("--reuse-indexes", action="store_true",
                    help="open the indexes a previous run built under --dir (no build rows): re-time the queries")
    a = ap.parse_args()
    shard_counts = [int(x) for x in a.shards.split(",")]
    for docs in (int(x) for x in a.docs.split(",")):
        run_size(a.dir, docs, shard_counts, a.queries, a.repeat, a.reuse_indexes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
