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

__all__ = ["PASSAGES_DEFAULT", "RETRIEVERS", "Retriever", "RetrieverBase", "SearchResult", "get_retriever"]


# Whether a method searches passages (sleuth.retrieval.passages) unless told (``passages=``): measured on SciFact
# and HotpotQA, docs/results/chunking.md
PASSAGES_DEFAULT = {"bm25": False, "dense": True}


def _passage_opts(method: str, opts: dict[str, Any]) -> dict[str, Any] | None:
    """The passage options popped from ``opts`` (``chunking``, ``group``) when ``method`` searches passages
    (``passages``, default :data:`PASSAGES_DEFAULT`), else None (and no passage option may be given)."""
    passages = opts.pop("passages", None)
    chunking, group = opts.pop("chunking", None), opts.pop("group", None)
    if passages is None:
        passages = PASSAGES_DEFAULT.get(method, False)
    if not passages:
        if group is not None:
            raise ConfigError("group= ranks passages: it needs passages=True", hint="add passages=True")
        return None
    return {"chunking": chunking, **({"group": group} if group is not None else {})}


def _bm25(corpus: Any, *, model: Any = None, **opts: Any) -> Retriever:
    """Options: rebuild, build_missing, params (BM25Params or dict), with_text, progress, enriched (search the
    in-index SIRA enrichment, :mod:`sleuth.retrieval.enriched`), enrich_weight (>0: fuse the enrichment field
    index with that lambda, sleuth's earlier corpus-side form); passages (search passages, default
    :data:`PASSAGES_DEFAULT`), chunking (a Chunker or {size, overlap}), group ("doc" or "passage")."""
    from sleuth.errors import ConfigError as _ConfigError
    from sleuth.retrieval.bm25 import BM25Params, BM25Retriever

    params = opts.pop("params", None)
    if isinstance(params, dict):
        params = BM25Params(**params)
    passage = _passage_opts("bm25", opts)
    if passage is not None:
        if opts.get("enriched") or opts.get("enrich_weight"):
            raise _ConfigError("the SIRA enrichment indexes whole documents, not passages",
                               hint="drop passages=True (--passages), or drop the enrichment")
        opts.pop("enriched", None)
        opts.pop("enrich_weight", None)
        from sleuth.retrieval.passages import bm25_passage_retriever

        return bm25_passage_retriever(corpus, params=params, **passage, **opts)
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
    if opts.get("passages"):
        raise ConfigError("sira scores whole documents (its df filter counts documents), not passages",
                          hint="drop passages=True (--passages) for --method sira")
    opts.pop("passages", None)
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
    """Options: embedder, rebuild, build_missing, kind, threshold, progress, with_text (see retrieval.dense);
    passages (default :data:`PASSAGES_DEFAULT`: passages), chunking, group (see retrieval.passages)."""
    from sleuth.retrieval.dense import dense_retriever

    passage = _passage_opts("dense", opts)
    if passage is not None:
        from sleuth.retrieval.passages import dense_passage_retriever

        return dense_passage_retriever(corpus, **passage, **opts)
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
