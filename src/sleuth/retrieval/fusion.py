"""Fusion formulas for ranked lists, each under its name; :class:`~sleuth.retrieval.hybrid.HybridRetriever` and
``ToolCatalog`` pick one with ``fusion=NAME``.

* ``rrf``: ``score(d) = sum_i w_i / (k + rank_i(d))``, ranks from 1, k = 60, equal weights (Cormack, Clarke and
  Buettcher 2009). Needs no score calibration.
* ``zscore`` / ``minmax``: the convex combination ``sum_i w_i * norm_i(s_i(d))`` with equal weights, each list's
  scores standardised (z-score) or scaled to [0, 1] (min-max); Bruch, Gai and Ingber 2023, "An Analysis of Fusion
  Functions for Hybrid Retrieval". A document missing from a list gets that list's lowest normalised value.
* ``vstash``: RRF (k = 60) with per-query weights from the mean IDF of the query's words (Steffens 2026, "vstash:
  Local-First Hybrid Retrieval with Adaptive Fusion for LLM Agents"; reference: ``stffns/vstash``,
  ``_compute_adaptive_rrf_params``): ``w_lex = 0.1 + 0.5 * sigmoid(2 * (mean_idf - ln(N) / 2))``,
  ``w_dense = 1 - w_lex``, with ``idf = ln(N / (df + 1))`` and ``ln N`` for a word the collection lacks; a query
  of more than 50 words gets 0.1 / 0.9. See :func:`vstash_weights` for where sleuth's input differs.
* ``adaptive``: see :func:`adaptive_weights`.

Every fusion returns a :class:`Fused`: the fused hits, the weight each list got for this query and the signals the
weights came from, so a trace can say why a query leaned one way.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal, NamedTuple, Protocol

from pydantic import BaseModel, ConfigDict, Field

from sleuth.errors import ConfigError
from sleuth.records import Hit

Norm = Literal["minmax", "zscore"]
FusionName = Literal["rrf", "zscore", "minmax", "vstash", "adaptive"]
FUSIONS: tuple[str, ...] = ("rrf", "zscore", "minmax", "vstash", "adaptive")
RRF_K = 60


class Fused(NamedTuple):
    hits: list[Hit]
    weights: list[float]
    signals: dict[str, Any]


class LexicalStats(Protocol):
    """What query-adaptive fusions read from the lexical retriever (``BM25Retriever``, ``ToolBM25``)."""

    def doc_freqs(self, query: str) -> tuple[int, list[tuple[str, int]]]: ...


# --- the fixed formulas -----------------------------------------------------------------------------------------


def check_weights(n: int, weights: Sequence[float] | None) -> list[float]:
    if weights is None:
        return [1.0] * n
    if len(weights) != n or any(w < 0 or math.isnan(w) for w in weights):
        raise ConfigError(f"need {n} non-negative weights, got {list(weights)}", hint="one weight per retriever")
    return [float(w) for w in weights]


def list_names(rankings: Sequence[Sequence[Hit]], names: Sequence[str] | None) -> list[str]:
    if names is not None:
        return list(names)
    out: list[str] = []
    for i, hits in enumerate(rankings):
        src = hits[0].source if hits and hits[0].source else f"list{i}"
        out.append(src if src not in out else f"{src}{i}")
    return out


def merge(rankings: Sequence[Sequence[Hit]], fused: Mapping[str, float], names: Sequence[str]) -> list[Hit]:
    """Fused scores to hits, best first (ties by doc id); each keeps the first list's hit for its text and records
    every list's rank and score in ``metadata["fusion"]``."""
    first: dict[str, Hit] = {}
    detail: dict[str, dict[str, Any]] = {}
    for li, hits in enumerate(rankings):
        for rank, h in enumerate(hits, 1):
            first.setdefault(h.doc_id, h)
            detail.setdefault(h.doc_id, {}).setdefault(names[li], {"rank": rank, "score": h.score})
    out = []
    for doc_id, score in sorted(fused.items(), key=lambda kv: (-kv[1], kv[0])):
        h = first[doc_id]
        meta = dict(h.metadata)
        meta["fusion"] = detail[doc_id]
        out.append(h.model_copy(update={"score": float(score), "source": "hybrid", "metadata": meta}))
    return out


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[Hit]],
    *,
    k: int = RRF_K,
    weights: Sequence[float] | None = None,
    names: Sequence[str] | None = None,
) -> list[Hit]:
    if k < 0:
        raise ConfigError(f"rrf k must be >= 0, got {k}", hint="the usual value is 60")
    w = check_weights(len(rankings), weights)
    fused: dict[str, float] = {}
    for li, hits in enumerate(rankings):
        seen: set[str] = set()
        for rank, h in enumerate(hits, 1):
            if h.doc_id in seen:  # a retriever returning a doc twice counts once, at its best rank
                continue
            seen.add(h.doc_id)
            fused[h.doc_id] = fused.get(h.doc_id, 0.0) + w[li] / (k + rank)
    return merge(rankings, fused, list_names(rankings, names))


def normalize_scores(scores: Sequence[float], method: Norm = "minmax") -> list[float]:
    if not scores:
        return []
    xs = [float(s) for s in scores]
    if method == "minmax":
        lo, hi = min(xs), max(xs)
        return [1.0] * len(xs) if hi == lo else [(x - lo) / (hi - lo) for x in xs]
    if method == "zscore":
        mean = sum(xs) / len(xs)
        sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / len(xs))
        return [0.0] * len(xs) if sd == 0 else [(x - mean) / sd for x in xs]
    raise ConfigError(f"unknown normalisation {method!r}", hint="use minmax or zscore")


def best_scores(hits: Sequence[Hit]) -> dict[str, float]:
    """Each document's best score in a list (a missing score counts 0), in list order."""
    best: dict[str, float] = {}
    for h in hits:
        s = float(h.score) if h.score is not None else 0.0
        best[h.doc_id] = max(best.get(h.doc_id, -math.inf), s)
    return best


def weighted_score_fusion(
    rankings: Sequence[Sequence[Hit]],
    *,
    weights: Sequence[float] | None = None,
    norm: Norm = "minmax",
    names: Sequence[str] | None = None,
) -> list[Hit]:
    w = check_weights(len(rankings), weights)
    per_list: list[dict[str, float]] = []
    floors: list[float] = []
    for hits in rankings:
        best = best_scores(hits)
        normed = normalize_scores(list(best.values()), norm)
        per_list.append(dict(zip(best, normed, strict=True)))
        floors.append(min(normed) if normed else 0.0)
    all_ids = {d for m in per_list for d in m}
    fused = {d: sum(w[i] * per_list[i].get(d, floors[i]) for i in range(len(per_list))) for d in all_ids}
    return merge(rankings, fused, list_names(rankings, names))


# --- vstash: RRF weighted by the query's mean IDF ---------------------------------------------------------------

VSTASH_LONG_QUERY = 50  # words; longer queries get fixed weights


def query_idf(lexical: LexicalStats, query: str) -> dict[str, Any]:
    """The inputs of :func:`vstash_weights`: ``n_docs``, ``n_words`` (whitespace words of the query, as vstash
    counts them) and ``idf`` (vstash's ``ln(N / (df + 1))`` per analyzed query token; ``ln N`` for a token no
    document holds)."""
    n, dfs = lexical.doc_freqs(query)
    top = math.log(n) if n > 1 else 0.0
    idfs = [math.log(n / (df + 1)) if df > 0 else top for _, df in dfs] if n > 1 else []
    return {"n_docs": n, "n_words": len(query.split()), "idf": [round(x, 4) for x in idfs]}


def vstash_weights(stats: Mapping[str, Any]) -> tuple[float, float, dict[str, Any]]:
    """``(w_lexical, w_dense, signals)`` as the reference computes them (rounded to 3 decimals as there).

    Where sleuth's input differs from the reference's: vstash stems every whitespace word of two or more
    characters with SQLite FTS5's Porter tokenizer and keeps stopwords; sleuth's BM25 analyzer (``\\w\\w+``,
    English stopwords dropped, Snowball English stemmer) has no document frequency for a stopword, so stopwords do
    not enter the mean (which raises it: a stopword's IDF is near 0). The reference's fallbacks are kept: fewer
    than 2 documents, or no token, give its default 0.4 / 0.6."""
    n, n_words, idfs = int(stats["n_docs"]), int(stats["n_words"]), list(stats["idf"])
    if n_words > VSTASH_LONG_QUERY:
        return 0.1, 0.9, {"rule": "long query", "n_words": n_words}
    if n < 2 or not idfs:
        return 0.4, 0.6, {"rule": "default", "n_docs": n, "tokens": len(idfs)}
    mean_idf = sum(idfs) / len(idfs)
    threshold = math.log(n) / 2
    signal = 1.0 / (1.0 + math.exp(-2.0 * (mean_idf - threshold)))
    w_lex = 0.1 + 0.5 * signal
    return round(w_lex, 3), round(1.0 - w_lex, 3), {"rule": "idf", "mean_idf": round(mean_idf, 4),
                                                     "threshold": round(threshold, 4)}


# --- adaptive: weights from each list's score distribution ----------------------------------------------------


class AdaptiveParams(BaseModel):
    """The knobs of :func:`adaptive_weights` (defaults tuned on SciFact train, MetaTool and StableToolBench only:
    docs/results/fusion.md). ``gamma = collection_gain = 0`` gives equal weights, i.e. plain ``zscore`` fusion."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gamma: float = Field(default=3.0, ge=0.0, le=16.0)  # strength of this query's own signal
    top_m: int = Field(default=3, ge=1, le=20)  # how many head scores make a list's top-z
    collection_gain: float = Field(default=8.0, ge=0.0, le=32.0)  # strength of the collection prior, when given
    min_weight: float = Field(default=0.0, ge=0.0, le=0.5)


class FusionPrior(BaseModel):
    """A collection's calibration for ``adaptive`` fusion: each list's mean :func:`top_z` over ``n_queries``
    queries of that collection (no relevance labels are used). Made by ``HybridRetriever.calibrate`` or
    ``ToolCatalog.calibrate``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    top_z: list[float]
    n_queries: int = Field(ge=1)
    names: list[str] = Field(default_factory=list)


def top_z(hits: Sequence[Hit], m: int = 1) -> float:
    """The mean z-score of a list's ``m`` best scores, standardised over the whole list (each document once): how
    far its head stands out from its own tail. 0 for fewer than two documents or equal scores."""
    xs = list(best_scores(hits).values())
    if len(xs) < 2:
        return 0.0
    mean = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / len(xs))
    if sd == 0:
        return 0.0
    head = sorted(xs, reverse=True)[: max(1, m)]
    return sum((x - mean) / sd for x in head) / len(head)


def adaptive_weights(
    rankings: Sequence[Sequence[Hit]], params: AdaptiveParams, prior: FusionPrior | None = None
) -> tuple[list[float], dict[str, Any]]:
    """Per-query weights ``w_i ∝ z_i ** gamma * zbar_i ** collection_gain``, normalised to sum 1, where ``z_i`` is
    :func:`top_z` of list ``i`` for this query (how far its best hits stand above the rest of its own list) and
    ``zbar_i`` the same averaged over the collection's calibration queries (``prior``; left out when ``None``).
    A list whose head stands out is a retriever that can tell its candidates apart on this query (and, through the
    prior, on this collection); one whose scores are flat cannot. When some list's head cannot be measured (fewer
    than two hits, equal scores) the query's own term is left out; with neither term the weights are equal. Each
    weight is at least ``min_weight``."""
    n = len(rankings)
    z = [top_z(h, params.top_m) for h in rankings]
    log_w = [0.0] * n
    used_query = params.gamma > 0 and all(x > 0 for x in z)
    if used_query:
        log_w = [params.gamma * math.log(x) for x in z]
    used_prior = prior is not None and params.collection_gain > 0 and len(prior.top_z) == n
    if prior is not None and used_prior and all(x > 0 for x in prior.top_z):
        log_w = [lw + params.collection_gain * math.log(x) for lw, x in zip(log_w, prior.top_z, strict=True)]
    else:
        used_prior = False
    top = max(log_w)
    e = [math.exp(x - top) for x in log_w]
    w = [x / sum(e) for x in e]
    lo = params.min_weight
    if lo > 0:
        w = [lo + (1 - lo * n) * x for x in w]
    signals: dict[str, Any] = {"top_z": [round(x, 4) for x in z], "query_term": used_query,
                               "gamma": params.gamma, "top_m": params.top_m}
    if prior is not None:
        signals |= {"prior_top_z": [round(x, 4) for x in prior.top_z], "prior_queries": prior.n_queries,
                    "prior_term": used_prior, "collection_gain": params.collection_gain}
    return w, signals


def calibrate_prior(rankings_per_query: Sequence[Sequence[Sequence[Hit]]], params: AdaptiveParams,
                    names: Sequence[str] = ()) -> FusionPrior:
    """The :class:`FusionPrior` of a collection from its lists for a sample of (unlabelled) queries: each list's
    mean :func:`top_z`."""
    if not rankings_per_query:
        raise ConfigError("calibration needs at least one query", hint="pass a sample of the collection's queries")
    n = len(rankings_per_query[0])
    sums = [0.0] * n
    for lists in rankings_per_query:
        if len(lists) != n:
            raise ConfigError("every calibration query needs one list per retriever")
        for i, h in enumerate(lists):
            sums[i] += top_z(h, params.top_m)
    q = len(rankings_per_query)
    return FusionPrior(top_z=[round(x / q, 6) for x in sums], n_queries=q, names=list(names))


def calibration_fold(query_id: str) -> int:
    """0 or 1 from the sha256 of a query id: the two halves of a set for cross-calibration (each query's prior
    comes from the other half, so no query calibrates its own fusion)."""
    return hashlib.sha256(query_id.encode("utf-8")).digest()[0] & 1


def adaptive_fusion(
    rankings: Sequence[Sequence[Hit]], *, names: Sequence[str], params: AdaptiveParams | None = None,
    prior: FusionPrior | None = None,
) -> Fused:
    """:func:`adaptive_weights`, then the convex combination of z-scored lists with those weights."""
    w, signals = adaptive_weights(rankings, params or AdaptiveParams(), prior)
    return Fused(weighted_score_fusion(rankings, weights=w, norm="zscore", names=names), w, signals)


# --- dispatch -----------------------------------------------------------------------------------------------------


def _static(rankings: Sequence[Sequence[Hit]], fusion: str, weights: list[float], names: list[str], rrf_k: int,
            ) -> Fused:
    if fusion == "rrf":
        return Fused(reciprocal_rank_fusion(rankings, k=rrf_k, weights=weights, names=names), weights, {})
    norm: Norm = "minmax" if fusion == "minmax" else "zscore"
    return Fused(weighted_score_fusion(rankings, weights=weights, norm=norm, names=names), weights, {})


def fuse(
    fusion: str,
    rankings: Sequence[Sequence[Hit]],
    *,
    names: Sequence[str] | None = None,
    weights: Sequence[float] | None = None,
    rrf_k: int = RRF_K,
    lexical: int | None = None,
    idf: Mapping[str, Any] | None = None,
    params: AdaptiveParams | None = None,
    prior: FusionPrior | None = None,
) -> Fused:
    """Fuse ``rankings`` with the fusion named ``fusion``. ``weights`` are the fixed per-list weights of ``rrf``,
    ``zscore`` and ``minmax`` (equal when ``None``); ``vstash`` and ``adaptive`` compute theirs per query and need
    two lists, ``lexical`` being the position of the BM25 one; ``vstash`` also needs ``idf`` (:func:`query_idf`),
    ``adaptive`` takes ``params`` (:class:`AdaptiveParams`)."""
    nm = list_names(rankings, names)
    if fusion in ("rrf", "zscore", "minmax"):
        return _static(rankings, fusion, check_weights(len(rankings), weights), nm, rrf_k)
    if fusion == "adaptive":
        return adaptive_fusion(rankings, names=nm, params=params, prior=prior)
    if fusion != "vstash":
        raise ConfigError(f"unknown fusion {fusion!r}", hint=f"use one of {', '.join(FUSIONS)}")
    if len(rankings) != 2 or lexical not in (0, 1):
        raise ConfigError(
            "fusion 'vstash' weighs a lexical list against a dense one: it needs exactly two lists and the lexical "
            "one's position", hint="fuse [bm25, dense], or use another fusion for other combinations",
        )
    if idf is None:
        raise ConfigError("fusion 'vstash' needs the query's IDF statistics", hint="pass idf=query_idf(bm25, q)")
    w_lex, w_dense, sig = vstash_weights(idf)
    w = [w_lex, w_dense] if lexical == 0 else [w_dense, w_lex]
    # vstash counts ranks from 0 (1 / (60 + r), r = 0, 1, ...): k - 1 with ranks from 1 is the same sum
    return Fused(reciprocal_rank_fusion(rankings, k=rrf_k - 1, weights=w, names=nm), w, sig)

