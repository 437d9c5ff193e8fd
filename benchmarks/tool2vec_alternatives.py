"""Two forms of usage that sleuth measured and did not adopt, beside the adopted one (no model; MiniLM, cached).

* **Expansion** (doc2query-style): the BM25 text of each tool is its description followed by its usage requests,
  alone (``bm25 expanded``), in hybrid, and as the lexical list of tool2vec centroid + hybrid (z-score).
* **Max** (multi-view, as in Re-Invoke): a tool scores the best cosine of its requests, not of their average.

The same sets and options as ``tool2vec.py`` (``--set``, ``--generated``, ``--seed``, ``--sample``;
``--variants`` names this script's forms)::

    nice -n 10 .venv/bin/python benchmarks/tool2vec_alternatives.py --set metatool --generated FILE
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from tool2vec import REAL_USAGE, load_set, parser

from sleuth.retrieval.tools import ToolCatalog, evaluate_tool_retrieval
from sleuth.retrieval.tools.rankers import ToolBM25, ToolDense


class MaxDense(ToolDense):
    """Rows of ``vectors`` are requests; ``owner[j]`` is request j's tool; a tool without one scores its
    description (``fallback``)."""

    def __init__(self, *a: Any, owner: np.ndarray, fallback: np.ndarray, **k: Any) -> None:
        super().__init__(*a, **k)
        self.owner, self.fallback = owner, fallback

    def rank_vectors(self, q: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        s = q @ self.vectors.T
        best = q @ self.fallback.T
        for j in range(len(self.fallback)):
            m = self.owner == j
            if m.any():
                best[:, j] = s[:, m].max(axis=1)
        order = np.argsort(-best, axis=1)[:, :k]
        return [[(int(i), float(row[i])) for i in o] for row, o in zip(best, order, strict=True)]


class Alternatives(ToolCatalog):
    """``expand``: BM25 over description + requests; ``max_form``: the tool2vec list is :class:`MaxDense`."""

    def __init__(self, *a: Any, by_tool: dict[str, list[str]], expand: bool = False, max_form: bool = False,
                 **k: Any) -> None:
        super().__init__(*a, **k)
        self.by_tool, self.expand, self.max_form = by_tool, expand, max_form

    def lexical(self) -> ToolBM25:
        if self._bm25 is None:
            docs = self.documents
            if self.expand:
                docs = [d + "\n" + "\n".join(self.by_tool.get(t.name, [])) for d, t in zip(docs, self.tools,
                                                                                          strict=True)]
            self._bm25 = ToolBM25([t.name for t in self.tools], docs)
        return self._bm25

    def tool2vec(self, requests: Sequence[str] = ()) -> ToolDense:
        if not self.max_form:
            return super().tool2vec(requests)
        idx = self.usage_index()
        pos = {t.name: i for i, t in enumerate(self.tools)}
        keep = [j for j, r in enumerate(idx.records) if r.tool in pos]
        owner = np.array([pos[idx.records[j].tool] for j in keep], np.int64)
        self._t2v_counts = np.bincount(owner, minlength=len(self.tools))
        emb = self._get_embedder()
        qv = dict(zip(requests, emb.embed(list(requests)), strict=True)) if requests else {}
        t2v = MaxDense([t.name for t in self.tools], self.documents, idx.vectors[keep], emb, qv, owner=owner,
                       fallback=self._doc_vectors())
        t2v.name = "tool2vec"
        return t2v


FUSED = {"usage_form": "centroid", "usage_fusion": "zscore", "usage_fuse_with": "hybrid"}
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {  # names without commas: --variants splits at them
    "bm25": ("bm25", {}),
    "bm25 expanded": ("bm25", {"expand": True}),
    "hybrid": ("hybrid", {}),
    "hybrid (bm25 expanded)": ("hybrid", {"expand": True}),
    "tool2vec centroid": ("tool2vec", {"usage_form": "centroid"}),
    "tool2vec max": ("tool2vec", {"max_form": True}),
    "tool2vec centroid + hybrid (zscore) [adopted]": ("tool2vec", FUSED),
    "tool2vec centroid + hybrid (zscore) with bm25 expanded": ("tool2vec", FUSED | {"expand": True}),
    "tool2vec max + hybrid (zscore)": ("tool2vec", {"max_form": True, "usage_fusion": "zscore",
                                                    "usage_fuse_with": "hybrid"}),
}


def main() -> None:
    ap = parser()
    ap.set_defaults(variants=",".join(VARIANTS))  # --variants names this script's forms
    args = ap.parse_args()
    if not args.generated and args.set not in REAL_USAGE:
        ap.error(f"--set {args.set} has no train split: pass --generated FILE")
    unknown = [v for v in args.variants.split(",") if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown --variants {', '.join(unknown)}: use some of {', '.join(VARIANTS)}")
    emb, tools, queries, gold, usage, _ = load_set(args)
    by_tool: dict[str, list[str]] = {}
    for u in usage:
        by_tool.setdefault(u.tool, []).append(u.request)
    print("| form | R@1 | R@5 | nDCG@10 |\n|---|---|---|---|")
    for name in args.variants.split(","):
        method, opts = VARIANTS[name]
        cat = Alternatives(tools, embedder=emb, by_tool=by_tool, **opts)
        if method == "tool2vec":
            cat.add_usage(usage)
        r = evaluate_tool_retrieval(cat, queries, gold, method, (1, 5, 10))
        print(f"| {name} | {r['recall@1']:.4f} | {r['recall@5']:.4f} | {r['ndcg@10']:.4f} |", flush=True)


if __name__ == "__main__":
    main()
