"""Rerank quality table from `sleuth eval beir` run folders: nDCG@10 (the run's own), Recall@2/5 (from each row's
ranking and the dataset's qrels), model tokens and wall seconds per question.

    .venv/bin/python benchmarks/rerank_table.py --qrels DATA/qrels/test.tsv RUN_DIR [RUN_DIR ...]

Only questions present in every given run are counted (so a run cut short is compared on the same questions).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def qrels(path: Path) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for line in path.read_text().splitlines()[1:]:
        parts = line.split("\t")
        if len(parts) >= 3 and float(parts[2]) > 0:
            out.setdefault(parts[0], set()).add(parts[1])
    return out


def rows(run: Path) -> dict[str, dict]:
    out = {}
    for line in (run / "rows.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r.get("status") == "ok":
            out[r["id"]] = r
    return out


def recall(ranking: list[str], gold: set[str], k: int) -> float:
    return len(set(ranking[:k]) & gold) / len(gold) if gold else 0.0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--qrels", required=True)
    ap.add_argument("runs", nargs="+")
    args = ap.parse_args()
    gold = qrels(Path(args.qrels))
    runs = {Path(r).name: rows(Path(r)) for r in args.runs}
    common = set.intersection(*(set(r) for r in runs.values()))
    print(f"{len(common)} questions in common\n")
    print("| run | nDCG@10 | Recall@2 | Recall@5 | tokens/q | s/question | LLM calls/q |")
    print("|---|---|---|---|---|---|---|")
    for name, rs in runs.items():
        sel = [rs[q] for q in sorted(common)]
        nd = statistics.mean(r["metrics"]["ndcg@10"] for r in sel)
        r2 = statistics.mean(recall(r["ranking"], gold.get(r["id"], set()), 2) for r in sel)
        r5 = statistics.mean(recall(r["ranking"], gold.get(r["id"], set()), 5) for r in sel)
        sec = statistics.mean(r["seconds"] for r in sel)
        calls = statistics.mean(r.get("llm_calls", 0) for r in sel)
        tokens = statistics.mean(r.get("tokens", 0) for r in sel)
        print(f"| {name} | {nd:.3f} | {r2:.3f} | {r5:.3f} | {tokens:,.0f} | {sec:.1f} | {calls:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
