"""Retrievers behind one Protocol (:class:`~sleuth.retrieval.base.Retriever`) and a small registry.

``get_retriever(method, corpus, *, model=None, **opts)`` builds one by name from ``RETRIEVERS``, a plain dict of
``name -> factory(corpus, *, model=None, **opts)``: other backends add themselves with
``RETRIEVERS["dense"] = factory``. Heavy modules are imported inside the factories.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sleuth.errors import ConfigError
from sleuth.retrieval.base import Retriever, RetrieverBase, SearchResult

__all__ = ["RETRIEVERS", "Retriever", "RetrieverBase", "SearchResult", "get_retriever"]


def _bm25(corpus: Any, *, model: Any = None, **opts: Any) -> Retriever:
    """Options: rebuild, build_missing, params (BM25Params or dict), with_text, progress, enriched (search the
    in-index SIRA enrichment, :mod:`sleuth.retrieval.enriched`), enrich_weight (>0: fuse the enrichment field
    index with that lambda, sleuth's earlier corpus-side form)."""
    from sleuth.errors import ConfigError as _ConfigError
    from sleuth.retrieval.bm25 import BM25Params, BM25Retriever

    params = opts.pop("params", None)
    if isinstance(params, dict):
        params = BM25Params(**params)
    enrich_weight = float(opts.pop("enrich_weight", 0.0) or 0.0)
    enriched = bool(opts.pop("enriched", False))
    retriever = BM25Retriever.open(corpus, params=params, **opts)
    if enriched:
        if enrich_weight > 0:
            raise _ConfigError("enriched and enrich_weight are two forms of the corpus side: pick one",
                               hint="enriched=True (the reference's in-index form) or enrich_weight=L (fused field)")
        from sleuth.retrieval.enriched import open_enriched

        return BM25Retriever(open_enriched(corpus, retriever.index), with_text=retriever.with_text)
    if enrich_weight > 0:
        from sleuth.retrieval.enrich import EnrichedBM25Retriever

        return EnrichedBM25Retriever.open(corpus, retriever, weight=enrich_weight)
    return retriever


def _sira(corpus: Any, *, model: Any = None, **opts: Any) -> Retriever:
    """Options: tracer, sira (SiraParams or dict: form, filter, tiers, weight, max_df_ratio, ...), and the bm25
    options (``enriched=True``: over the in-index enrichment)."""
    from sleuth.retrieval.sira import SiraParams, SiraRetriever

    if model is None:
        raise ConfigError("method 'sira' needs a model", hint="pass --model local (or any litellm model string)")
    tracer = opts.pop("tracer", None)
    sira = opts.pop("sira", None)
    if isinstance(sira, dict):
        from pydantic import ValidationError

        try:
            sira = SiraParams(**sira)
        except ValidationError as e:
            err = e.errors()[0]
            raise ConfigError(f"bad SIRA option {'.'.join(map(str, err['loc']))}: {err['msg']}",
                              hint="form: reference or sleuth; filter: reference or sleuth; tiers: unigram, "
                                   "bigram") from None
    add_bigrams = bool(opts.get("build_missing", True))  # adding the bigram tier writes into the index folder
    bm25 = _bm25(corpus, **opts)
    return SiraRetriever(bm25, model, params=sira, tracer=tracer, add_bigrams=add_bigrams)


def _dense(corpus: Any, *, model: Any = None, **opts: Any) -> Retriever:
    """Options: embedder, rebuild, build_missing, kind, threshold, progress, with_text (see retrieval.dense)."""
    from sleuth.retrieval.dense import dense_retriever

    return dense_retriever(corpus, **opts)


def _hybrid(corpus: Any, *, model: Any = None, **opts: Any) -> Retriever:
    """BM25 + dense fused; options: fusion, weights, norm, depth, rrf_k, embedder, bm25={}, dense={}."""
    from sleuth.retrieval.hybrid import hybrid_retriever

    return hybrid_retriever(corpus, model=model, **opts)


RETRIEVERS: dict[str, Callable[..., Retriever]] = {
    "bm25": _bm25,
    "sira": _sira,
    "dense": _dense,
    "hybrid": _hybrid,
}


def get_retriever(method: str, corpus: Any, *, model: Any = None, **opts: Any) -> Retriever:
    """A retriever by name over ``corpus`` (a :class:`~sleuth.corpus.Corpus` or a folder path)."""
    factory = RETRIEVERS.get(method)
    if factory is None:
        raise ConfigError(f"unknown retrieval method {method!r}", hint=f"one of {', '.join(sorted(RETRIEVERS))}")
    if isinstance(corpus, str | Path):
        from sleuth.corpus import Corpus

        corpus = Corpus(corpus)
    return factory(corpus, model=model, **opts)
