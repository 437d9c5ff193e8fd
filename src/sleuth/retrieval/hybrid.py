"""Fusing ranked lists from several retrievers (BM25 + dense, or any :class:`Retriever`).

:class:`HybridRetriever` runs each retriever to ``depth`` and fuses the lists with one of the fusions of
:mod:`sleuth.retrieval.fusion`, chosen by name (``fusion=``): ``rrf`` (Cormack et al. 2009, k = 60), ``zscore`` or
``minmax`` (equal-weight convex combination of normalised scores, Bruch et al. 2023), ``vstash`` (RRF with weights
from the query's mean IDF, Steffens 2026), ``adaptive`` (sleuth's: per-query weights from the two lists' score
distributions; :func:`sleuth.retrieval.fusion.adaptive_weights`).

Fused hits keep the first list's text/metadata for a document and record each list's rank and score in
``metadata["fusion"]``; ``source`` is ``"hybrid"``. :meth:`HybridRetriever.run` returns a :class:`HybridResult`
holding each retriever's own result (a SIRA list's kept phrases, say), the fusion that ran, the weight each list
got for this query and the signals behind them, and the summed usage; with a tracer it also emits one
``retrieval`` event named ``hybrid`` with the same fusion, weights and signals.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import Field, SerializeAsAny, field_validator

from sleuth.errors import ConfigError
from sleuth.records import SearchResult, TraceEvent, Usage
from sleuth.retrieval.base import Retriever, RetrieverBase, run_filtered, where_filter
from sleuth.retrieval.fusion import (
    FUSIONS,
    RRF_K,
    AdaptiveParams,
    FusionPrior,
    Norm,
    calibrate_prior,
    calibration_fold,
    check_weights,
    fuse,
    list_names,
    normalize_scores,
    query_idf,
    reciprocal_rank_fusion,
    weighted_score_fusion,
)

if TYPE_CHECKING:
    from sleuth.tracing import Tracer

__all__ = [
    "DEFAULT_FUSION",
    "HybridResult",
    "HybridRetriever",
    "hybrid_retriever",
    "normalize_scores",
    "reciprocal_rank_fusion",
    "weighted_score_fusion",
]

DEFAULT_FUSION = "zscore"


class HybridResult(SearchResult):
    """A fused search: the fused hits; each retriever's own result (to ``depth``) in ``parts``; the fusion that ran,
    the weight each list got for this query (by list name) and the signals the weights came from."""

    method: str = "hybrid"
    fusion: str = DEFAULT_FUSION
    weights: dict[str, float] = Field(default_factory=dict)
    signals: dict[str, Any] = Field(default_factory=dict)
    parts: list[SerializeAsAny[SearchResult]] = Field(default_factory=list)

    @field_validator("parts", mode="before")
    @classmethod
    def _parts_as_their_own_records(cls, v: Any) -> Any:
        """A dumped part is read back as the record its method wrote (a ``SiraResult`` keeps its phrases)."""
        if isinstance(v, list):
            return [SearchResult.from_dump(p) if isinstance(p, dict) else p for p in v]
        return v

    def decided(self) -> dict[str, Any]:
        out: dict[str, Any] = {p.method: d for p in self.parts if (d := p.decided())}
        out["fusion"] = {"name": self.fusion, "weights": self.weights, "signals": self.signals}
        return out

    def note(self) -> str:
        return "; ".join(f"{p.method}: {n}" for p in self.parts if (n := p.note()))


def _lexical_position(retrievers: Sequence[Retriever]) -> int | None:
    """The position of the one retriever that reports document frequencies (BM25), else ``None``."""
    found = [i for i, r in enumerate(retrievers) if callable(getattr(r, "doc_freqs", None))]
    return found[0] if len(found) == 1 else None


class HybridRetriever(RetrieverBase):
    """Runs each retriever to ``depth`` and fuses their lists with the fusion named ``fusion`` (one of
    :data:`sleuth.retrieval.fusion.FUSIONS`; default :data:`DEFAULT_FUSION`). ``weights`` are the fixed per-list
    weights of ``rrf``/``zscore``/``minmax``; ``vstash`` and ``adaptive`` weigh a BM25 list (the retriever with
    ``doc_freqs``) against a dense one per query. ``fusion="weighted"`` with ``norm=`` is the older spelling of
    ``zscore``/``minmax``."""

    name = "hybrid"

    def __init__(
        self,
        retrievers: Sequence[Retriever],
        *,
        fusion: str = DEFAULT_FUSION,
        weights: Sequence[float] | None = None,
        norm: Norm | None = None,
        depth: int = 100,
        rrf_k: int = RRF_K,
        params: AdaptiveParams | None = None,
        prior: FusionPrior | None = None,
    ) -> None:
        if len(retrievers) < 1:
            raise ConfigError("hybrid needs at least one retriever", hint="pass e.g. [bm25, dense]")
        if fusion == "weighted":
            fusion = norm or "zscore"
        elif norm is not None and norm != fusion:
            raise ConfigError(f"norm={norm!r} goes with fusion='weighted', not {fusion!r}",
                              hint=f"use fusion={norm!r}")
        if fusion not in FUSIONS:
            raise ConfigError(f"unknown fusion {fusion!r}", hint=f"use one of {', '.join(FUSIONS)}")
        if fusion in ("zscore", "minmax"):
            normalize_scores([1.0], fusion)  # type: ignore[arg-type]
        self.retrievers = list(retrievers)
        self.weights = check_weights(len(self.retrievers), weights)
        self.fusion = fusion
        self.depth = depth
        self.rrf_k = rrf_k
        self.params = params or AdaptiveParams()
        self.prior = prior  # adaptive fusion's collection calibration (see calibrate)
        self.lexical = _lexical_position(self.retrievers)
        if fusion == "vstash" and (len(self.retrievers) != 2 or self.lexical is None):
            raise ConfigError(
                "fusion 'vstash' weighs one BM25 list against one dense list",
                hint="pass [bm25, dense] (the BM25 retriever reports doc_freqs), or use rrf/zscore/minmax",
            )

    def calibrate(self, queries: Sequence[str], *, limit: int = 200) -> FusionPrior:
        """Calibrate ``adaptive`` fusion to this collection: run every retriever on up to ``limit`` of ``queries``
        (unlabelled; the first ``limit``) and keep each list's mean top-z as :attr:`prior`. Returns it."""
        qs = [q for q in queries if isinstance(q, str) and q.strip()][: max(1, limit)]
        if not qs:
            raise ConfigError("calibration needs at least one non-empty query",
                              hint="pass a sample of the queries this collection will get")
        names = [r.name or f"r{i}" for i, r in enumerate(self.retrievers)]
        lists = [[r.run(q, self.depth).hits for r in self.retrievers] for q in qs]
        self.prior = calibrate_prior(lists, self.params, names)
        return self.prior

    def cross_calibrated(self, queries: Sequence[str], *, limit: int = 1000) -> CrossCalibrated:
        """A retriever that answers each query with the prior of the *other* half of ``queries`` (halves by
        :func:`~sleuth.retrieval.fusion.calibration_fold` of the query text, up to ``limit`` queries each): how an
        evaluation measures calibrated ``adaptive`` fusion without any query calibrating its own fusion."""
        halves: dict[int, list[str]] = {0: [], 1: []}
        for q in dict.fromkeys(q for q in queries if isinstance(q, str) and q.strip()):
            halves[calibration_fold(q)].append(q)
        by_fold = {}
        for fold in (0, 1):
            other = halves[1 - fold] or halves[fold]
            twin = HybridRetriever(self.retrievers, fusion=self.fusion, weights=self.weights, depth=self.depth,
                                   rrf_k=self.rrf_k, params=self.params)
            twin.calibrate(other, limit=limit)
            by_fold[fold] = twin
        return CrossCalibrated(by_fold)

    @property
    def norm(self) -> str | None:
        """The score normalisation of ``zscore``/``minmax`` fusion (``None`` for the others)."""
        return self.fusion if self.fusion in ("zscore", "minmax") else None

    @property
    def filters(self) -> bool:  # type: ignore[override]
        """Filterable when every fused retriever is."""
        return all(getattr(r, "filters", False) for r in self.retrievers)

    def run(self, query: str, k: int = 10, *, tracer: Tracer | None = None, where: Any = None) -> HybridResult:
        """Each retriever's ``run`` to ``depth`` (``tracer`` is passed to each), then the fusion. ``where``: a
        metadata filter (a :class:`~sleuth.filters.DocFilter`) applied by each retriever before its top
        ``depth``, so the fusion ranks matching documents only."""
        t0 = time.perf_counter()
        depth = max(self.depth, k)
        if where is not None:  # resolved once, for every part
            corpora = [getattr(getattr(r, "index", None), "corpus", None) for r in self.retrievers]
            where = where_filter(where, next((c for c in corpora if c is not None), None))
        parts = [run_filtered(r, query, depth, tracer=tracer, where=where) for r in self.retrievers]
        rankings = [p.hits for p in parts]
        names = list_names(rankings, [r.name or f"r{i}" for i, r in enumerate(self.retrievers)])
        idf = None
        if self.fusion == "vstash" and self.lexical is not None:
            idf = query_idf(self.retrievers[self.lexical], query)  # type: ignore[arg-type]
        fused = fuse(self.fusion, rankings, names=names, weights=self.weights, rrf_k=self.rrf_k,
                     lexical=self.lexical, idf=idf, params=self.params, prior=self.prior)
        usage = sum((p.usage for p in parts), Usage())
        weights = {n: round(w, 4) for n, w in zip(names, fused.weights, strict=True)}
        result = HybridResult(
            query=query, k=k, hits=fused.hits[:k], usage=usage, latency_s=time.perf_counter() - t0,
            fusion=self.fusion, weights=weights, signals=fused.signals, parts=parts,
        )
        if tracer is not None:
            tracer.emit(TraceEvent(
                kind="retrieval", name="hybrid", args={"query": query, "k": k, "depth": depth},
                result_chars=sum(len(h.text) for h in result.hits), latency_s=result.latency_s,
                preview=f"{self.fusion}: " + ", ".join(f"{n} {w:.3f}" for n, w in weights.items()),
                data={"fusion": self.fusion, "weights": weights, "signals": fused.signals,
                      "lists": {n: len(h) for n, h in zip(names, rankings, strict=True)}},
            ))
        return result


class CrossCalibrated(RetrieverBase):
    """Two calibrated copies of one :class:`HybridRetriever`; a query is answered by the copy calibrated on the
    half of the queries it is not in (see :meth:`HybridRetriever.cross_calibrated`)."""

    name = "hybrid"

    def __init__(self, by_fold: dict[int, HybridRetriever]) -> None:
        self.by_fold = by_fold
        self.fusion = by_fold[0].fusion

    def run(self, query: str, k: int = 10, *, tracer: Tracer | None = None) -> HybridResult:
        return self.by_fold[calibration_fold(query)].run(query, k, tracer=tracer)


def hybrid_retriever(corpus: Any, *, model: Any = None, **opts: Any) -> HybridRetriever:
    """Registry factory: BM25 + dense over ``corpus``. Options: ``fusion`` (one of ``FUSIONS``), ``weights``,
    ``norm`` (with ``fusion="weighted"``), ``depth``, ``rrf_k``, ``adaptive`` (an ``AdaptiveParams``),
    ``embedder``, ``progress``, ``rebuild``, ``passages``, ``chunking`` (both; each list is a document ranking, a
    passage list's documents scored by their best passage), ``params`` / ``enrich_weight`` (BM25),
    and ``bm25`` / ``dense`` dicts of options passed to those retrievers' factories."""
    from sleuth.retrieval import get_retriever

    fusion_opts: dict[str, Any] = {k: opts.pop(k) for k in ("fusion", "weights", "norm", "depth", "rrf_k") if k in opts}
    if "adaptive" in opts:
        fusion_opts["params"] = opts.pop("adaptive")
    shared = {k: opts.pop(k) for k in ("progress", "rebuild", "build_missing", "with_text", "passages", "chunking")
              if k in opts}
    dense_opts = {**shared, **opts.pop("dense", {})}
    if "embedder" in opts:
        dense_opts["embedder"] = opts.pop("embedder")
    bm25_opts = {**shared, **{k: opts.pop(k) for k in ("params", "enrich_weight") if k in opts}, **opts.pop("bm25", {})}
    if opts:
        raise ConfigError(f"unknown hybrid options {sorted(opts)}", hint="see sleuth.retrieval.hybrid.hybrid_retriever")
    bm25 = get_retriever("bm25", corpus, model=model, **bm25_opts)
    return HybridRetriever([bm25, get_retriever("dense", corpus, **dense_opts)], **fusion_opts)
