"""SIRA, query side: one LLM call proposes evidence phrases the query lacks; a document-frequency filter keeps the
informative ones; one BM25 call scores the query and the kept phrases.

By default this is the reference's form (facebookresearch/sira: ``scripts/enrich_query_and_retrieve.py`` and
``bm25x`` ``filter_query_expansion`` / ``search_with_expansion``):

* **Filter** (``filter="reference"``): a phrase is kept when any of its 1..``max_n`` sub-n-grams (adjacent
  analyzed tokens; ``max_n`` = 2, the index's n-gram order) has ``0 < df <= int(N * max_df_ratio)``, without
  looking at the query. (As in the reference, ``int(N * ratio) = 0``, i.e. fewer than 1/ratio documents, means
  no upper bound.)
* **Scoring** (one expansion weight, ``use_model_weights=False``), over the unigram **and** the bigram tier
  (``tiers=("unigram", "bigram")``, :mod:`sleuth.retrieval.bm25_ngrams`)::

      score(d) = sum_{t in U(q)} s(t, d) + sum_{g in B(q)} s(g, d)
                 + weight * (sum_{t in U(e)} s(t, d) + sum_{g in B(e)} s(g, d))

  where ``e`` is the kept phrases' stems concatenated in order, ``U(x)`` the distinct unigrams of ``x`` that the
  index holds, ``B(x)`` the distinct bigrams of adjacent stems of ``x`` that it holds (so a bigram across two kept
  phrases counts, as in the reference), and ``s`` the BM25 "lucene" score of one term. Defaults: ``weight`` 0.5,
  ``max_df_ratio`` 0.05 (the reference's ``expansion_weight`` and ``max_df_ratio``).

sleuth's earlier rules stay as named options, and ``form="sleuth"`` selects all of them at once: ``filter="sleuth"``
(the whole phrase as a contiguous n-gram with ``0 < df < max_df_ratio * N``, phrases whose words are all in the
query dropped, duplicates dropped, at most ``max_phrases`` kept), ``use_model_weights=True`` (``score = BM25(q) +
sum_p w_p * BM25(p)`` with the model's own 0..1 weight per phrase times ``weight``, repeated tokens counted
again), ``tiers=("unigram",)`` and ``weight`` 0.2. Each field can also be set alone; the resolved values are in
every result's ``params``/``stats`` and its ``kind="sira"`` trace event.

Both forms keep at most ``max_expansion_tokens`` stems of expansion (the query budget; 64, above the 10 phrases x
4 words the reference's prompt asks for): a phrase that does not fit is rejected with that reason. Every query
records what was proposed, kept and rejected with the reason. When the model's output is unusable (no JSON, wrong
shape, weights that are not numbers) or it proposes nothing, the query alone is scored and ``fallback`` says why.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, Field, ValidationError, create_model, field_validator, model_validator

from sleuth.errors import ConfigError, IndexBusyError, ModelOutputError, ToolArgumentError
from sleuth.llm.base import ChatModel
from sleuth.records import Hit, SearchResult, TraceEvent, Usage
from sleuth.retrieval.base import RetrieverBase, where_filter
from sleuth.retrieval.bm25 import BM25Index, BM25Retriever
from sleuth.retrieval.bm25_ngrams import MAX_N, TIERS, ensure_bigrams, ngram_dfs, targets
from sleuth.retrieval.df import DocFrequency
from sleuth.usagetap import UsageTap

if TYPE_CHECKING:
    from sleuth.tracing import Tracer

__all__ = [
    "FORMS", "PhraseDecision", "SiraParams", "SiraProposal", "SiraResult", "SiraRetriever", "UsageTap",
    "WeightedPhrase",
]

PROMPT = "sira_expand"
# the query prompt by name: the reference's (its enrich default, query_v06; and query_multihop_v01, which its
# hotpotqa config picks) or sleuth's own (few-shot, a system message, 6 phrases of 1-3 words)
PROMPTS: dict[str, str] = {
    "reference": "sira_expand_reference",
    "reference-multihop": "sira_expand_reference_multihop",
    "sleuth": PROMPT,
}
MAX_PHRASE_WORDS = 8  # the sleuth filter's limit per phrase

Tier = Literal["unigram", "bigram"]
# what form="reference" / form="sleuth" set, for every field the caller leaves out
FORMS: dict[str, dict[str, Any]] = {
    "reference": {"filter": "reference", "tiers": ("unigram", "bigram"), "use_model_weights": False, "weight": 0.5,
                  "prompt": "reference", "max_phrases": 10, "max_tokens": 160},
    "sleuth": {"filter": "sleuth", "tiers": ("unigram",), "use_model_weights": True, "weight": 0.2,
               "prompt": "sleuth", "max_phrases": 6, "max_tokens": 120},
}


class WeightedPhrase(BaseModel):
    text: str
    weight: float = Field(1.0, ge=0.0, le=1.0)


class SiraProposal(BaseModel):
    """What the model returns. Plain strings or ``{"text", "weight"}`` objects."""

    phrases: list[str | WeightedPhrase] = Field(default_factory=list, max_length=10)


@lru_cache(maxsize=16)
def proposal_schema(max_phrases: int) -> type[SiraProposal]:
    """:class:`SiraProposal` with at most ``max_phrases`` items, so schema-constrained decoding stops there."""
    if max_phrases == 10:
        return SiraProposal
    return create_model(
        "SiraProposal",
        __base__=SiraProposal,
        phrases=(list[str | WeightedPhrase], Field(default_factory=list, max_length=max_phrases)),
    )


class SiraParams(BaseModel):
    form: Literal["reference", "sleuth"] = "reference"
    # unset fields take the form's value (FORMS)
    filter: Literal["reference", "sleuth"] = "reference"
    tiers: tuple[Tier, ...] = ("unigram", "bigram")
    use_model_weights: bool = False
    weight: float = Field(0.5, ge=0.0)
    # the query prompt (PROMPTS): the reference's by default; "reference-multihop" is the reference's choice for
    # HotpotQA (evals pick it for HotpotQA data); "sleuth" is sleuth's earlier few-shot prompt
    prompt: Literal["reference", "reference-multihop", "sleuth"] = "reference"
    # the reference asks for at most 10; the sleuth form asks for 6 (the embedded 0.5B model starts repeating itself
    # after ~6 phrases, and every phrase costs ~6 generated tokens, the dominant cost on CPU)
    max_phrases: int = Field(10, ge=1, le=10)
    max_df_ratio: float = Field(0.05, gt=0.0, le=1.0)
    max_expansion_tokens: int = Field(64, ge=1)  # the query budget: stems of expansion kept at most
    max_tokens: int = Field(160, ge=16)
    retries: int = Field(1, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _form_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            form = data.get("form", "reference")
            if form in FORMS:
                data = {**FORMS[form], **{k: v for k, v in data.items() if v is not None}}
        return data

    @field_validator("tiers")
    @classmethod
    def _tiers(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            raise ValueError("tiers needs at least one of 'unigram', 'bigram'")
        return tuple(t for t in TIERS if t in v)


class PhraseDecision(BaseModel):
    phrase: str
    tokens: list[str] = Field(default_factory=list)
    df: int | None = None
    ngram: str | None = None  # reference filter: the sub-n-gram that made the phrase informative
    kept: bool = False
    reason: str = ""
    weight: float | None = None


class SiraResult(SearchResult):
    """One SIRA search: the hits, the phrases the model proposed, the filter's decision on each (kept or rejected,
    with the reason), the fallback reason when the query alone was scored, the model call's usage, and ``stats``:
    the form, filter, tiers and weights that ran (a tier the index lacks is named in ``stats["tier_note"]``)."""

    method: str = "sira"
    proposed: list[str] = Field(default_factory=list)
    decisions: list[PhraseDecision] = Field(default_factory=list)
    fallback: str | None = None  # why the query alone was scored, when it was
    n_docs: int = 0
    params: dict[str, Any] = Field(default_factory=dict)
    stats: dict[str, Any] = Field(default_factory=dict)

    @property
    def kept(self) -> list[PhraseDecision]:
        return [d for d in self.decisions if d.kept]

    @property
    def rejected(self) -> list[PhraseDecision]:
        return [d for d in self.decisions if not d.kept]

    def kept_phrases(self) -> list[str]:
        return [d.phrase for d in self.kept]

    def decided(self) -> dict[str, Any]:
        return {
            "kept": self.kept_phrases(),
            "rejected": [{"phrase": d.phrase, "reason": d.reason} for d in self.rejected],
            "fallback": self.fallback,
        }

    def note(self) -> str:
        if self.kept:
            return f"expanded with: {', '.join(self.kept_phrases())}"
        return f"not expanded: {self.fallback}" if self.fallback else ""


def messages_for(query: str, max_phrases: int, prompt: str) -> list[dict[str, str]]:
    """The expansion call's messages; the reference's prompts are one user message, as the reference sends them."""
    from sleuth.prompts import load

    system, _, user = load(PROMPTS[prompt]).partition("=== user ===")
    # sleuth's prompt: listing the query's words as forbidden was tried and made Qwen2.5-0.5B copy exactly those
    # words (3 of 3 queries); see docs/results/lexical.md. The sleuth filter rejects echoes anyway ("adds nothing").
    fill = {"query": query, "max_phrases": max_phrases}
    out = [{"role": "system", "content": system.strip().format(**fill)}] if system.strip() else []
    return [*out, {"role": "user", "content": user.strip().format(**fill)}]


def reference_max_df(n_docs: int, ratio: float) -> int:
    """The reference's ``max_df = int(N * max_df_ratio)``; 0 means no upper bound (its ``max_df == 0`` rule)."""
    return int(n_docs * ratio)


class SiraRetriever(RetrieverBase):
    """One model call per query. ``run(query, k)`` returns the full :class:`SiraResult` (what was proposed, kept
    and rejected); ``search(query, k)`` its hits. Nothing about a call is kept on the retriever.

    ``add_bigrams``: when the tiers include ``bigram`` and the index has no bigram tier, add it to the index
    folder (:func:`~sleuth.retrieval.bm25_ngrams.ensure_bigrams`); without it, or when the folder is read-only,
    the search runs on the unigram tier and says so in ``stats["tier_note"]``."""

    name = "sira"
    filters = True

    def __init__(
        self,
        bm25: Any,
        model: ChatModel,
        *,
        params: SiraParams | None = None,
        tracer: Any = None,
        docfreq: DocFrequency | None = None,
        add_bigrams: bool = True,
    ) -> None:
        if model is None:
            raise ConfigError("SIRA needs a model", hint="pass --model (e.g. local) or get_retriever(..., model=m)")
        self.bm25 = bm25
        self.model = model
        self.params = params or SiraParams()
        self.tracer = tracer
        p = self.params
        if not isinstance(bm25, BM25Retriever) and (p.tiers != ("unigram",) or not p.use_model_weights):
            raise ConfigError(
                "SIRA's bigram tier and one-weight scoring run on one index; the fused enrichment field "
                f"({type(bm25).__name__}) supports form='sleuth' only",
                hint="use in-index enrichment (enriched=True, `--enriched`) or SiraParams(form='sleuth')",
            )
        self.tier_note: str | None = None
        self.tiers: tuple[str, ...] = p.tiers
        if "bigram" in p.tiers and bm25.index.bigrams is None:
            self._bigram_tier(add_bigrams)
        self.docfreq = docfreq or DocFrequency(bm25.index)

    def _bigram_tier(self, add: bool) -> None:
        index: BM25Index = self.bm25.index
        if add:
            try:
                self.bm25.index = ensure_bigrams(index)
                self.tier_note = f"bigram tier added on demand to {index.path} (the index predated it)"
                return
            except (OSError, IndexBusyError) as e:
                why = f"it could not be added ({type(e).__name__}: {str(e)[:160]})"
        else:
            why = "building is not allowed here"
        self.tiers = self.usable_tiers(self.params.tiers)
        self.tier_note = (f"the index at {index.path} has no bigram tier and {why}: scored on unigrams only "
                          f"(`sleuth index CORPUS` adds the tier)")

    def usable_tiers(self, tiers: tuple[str, ...]) -> tuple[str, ...]:
        """``tiers`` without the bigram tier when the index has none (unigrams then)."""
        if self.bm25.index.bigrams is None:
            return tuple(t for t in tiers if t != "bigram") or ("unigram",)
        return tiers

    def max_n_for(self, p: SiraParams) -> int:
        """The reference filter's n-gram order: the index's (2 with a bigram tier in use, else 1)."""
        return MAX_N if "bigram" in self.usable_tiers(p.tiers) else 1

    @property
    def max_n(self) -> int:
        return self.max_n_for(self.params)

    # -- the three steps ---------------------------------------------------------------------------------------
    def propose(self, query: str, *, tracer: Any = None) -> tuple[list[WeightedPhrase], Usage, str | None]:
        """One model call. Returns (phrases, usage, fallback reason or None)."""
        p = self.params
        tap = UsageTap(tracer if tracer is not None else self.tracer)
        try:
            proposal, result = self.model.structured(
                messages_for(query, p.max_phrases, p.prompt), proposal_schema(p.max_phrases), retries=p.retries,
                max_tokens=p.max_tokens,
                tracer=tap, name="sira_expand",
            )
        except (ModelOutputError, ValidationError, ValueError) as e:
            return [], tap.usage, f"model output unusable ({type(e).__name__}): {str(e)[:200]}"
        phrases = [x if isinstance(x, WeightedPhrase) else WeightedPhrase(text=x) for x in proposal.phrases]
        return phrases, result.usage, None if phrases else "model proposed no phrases"

    def decide(
        self, query: str, phrases: list[WeightedPhrase], params: SiraParams | None = None
    ) -> list[PhraseDecision]:
        """Apply the filter, then the query budget; every proposed phrase gets a decision with its reason."""
        p = params or self.params
        out = self._reference_filter(phrases, p) if p.filter == "reference" else self._sleuth_filter(
            query, phrases, p)
        used = 0
        for d, ph in zip(out, phrases, strict=True):
            if not d.kept:
                continue
            if used + len(d.tokens) > p.max_expansion_tokens:
                d.kept, d.ngram = False, None
                d.reason = (f"over the query budget: {len(d.tokens)} stems, {p.max_expansion_tokens - used} of "
                            f"max_expansion_tokens = {p.max_expansion_tokens} left")
                continue
            used += len(d.tokens)
            d.weight = p.weight * (ph.weight if p.use_model_weights else 1.0)
        return out

    def _reference_filter(self, phrases: list[WeightedPhrase], p: SiraParams) -> list[PhraseDecision]:
        index = self.bm25.index
        n, max_n = index.n_docs, self.max_n_for(p)
        max_df = reference_max_df(n, p.max_df_ratio)
        bound = f"int({p.max_df_ratio:g} x {n}) = {max_df}" + (" (no upper bound)" if max_df == 0 else "")
        out: list[PhraseDecision] = []
        for ph in phrases:
            d = PhraseDecision(phrase=" ".join(ph.text.split()))
            out.append(d)
            d.tokens = index.analyzer.tokens(d.phrase)
            if not d.tokens:
                d.reason = "no indexable words (stopwords or punctuation only)"
                continue
            grams = ngram_dfs(index, d.tokens, max_n)
            hit = next(((g, k, df) for g, k, df in grams if df > 0 and (max_df == 0 or df <= max_df)), None)
            if hit is None:
                seen = [df for _, _, df in grams if df > 0]
                d.df = min(seen) if seen else 0
                d.reason = (f"too common: its rarest 1..{max_n}-gram has df = {d.df} > {bound}" if seen else
                            f"absent from the corpus: every 1..{max_n}-gram has df = 0")
                continue
            d.ngram, _, d.df = hit
            d.kept = True
            d.reason = f"its {hit[1]}-gram {hit[0]!r} has 0 < df = {hit[2]} <= {bound}"
        return out

    def _sleuth_filter(self, query: str, phrases: list[WeightedPhrase], p: SiraParams) -> list[PhraseDecision]:
        index = self.bm25.index
        query_tokens = set(index.analyzer.tokens(query))
        n = index.n_docs
        limit = p.max_df_ratio * n
        seen: set[tuple[str, ...]] = set()
        out: list[PhraseDecision] = []
        n_kept = 0
        for ph in phrases:
            text = " ".join(ph.text.split())
            d = PhraseDecision(phrase=text)
            out.append(d)
            if not text:
                d.reason = "empty"
                continue
            if len(text.split()) > MAX_PHRASE_WORDS:
                d.reason = f"too long (> {MAX_PHRASE_WORDS} words)"
                continue
            d.tokens = index.analyzer.tokens(text)
            if not d.tokens:
                d.reason = "no indexable words (stopwords or punctuation only)"
                continue
            key = tuple(d.tokens)
            if key in seen:
                d.reason = "duplicate of an earlier phrase"
                continue
            seen.add(key)
            if set(d.tokens) <= query_tokens:
                d.reason = "adds nothing: all its words are in the query"
                continue
            d.df = self.docfreq.df(text).df
            if d.df == 0:
                d.reason = "absent from the corpus (df = 0)"
                continue
            if d.df >= limit:
                d.reason = f"too common (df = {d.df} >= {p.max_df_ratio:g} x {n} documents)"
                continue
            if n_kept >= p.max_phrases:
                d.reason = f"over the limit of {p.max_phrases} phrases"
                continue
            d.kept = True
            d.reason = f"0 < df = {d.df} < {p.max_df_ratio:g} x {n}"
            n_kept += 1
        return out

    def combine(
        self, query: str, decisions: list[PhraseDecision], k: int, params: SiraParams | None = None,
        where: Any = None,
    ) -> list[Hit]:
        """The scoring step: the reference's formula (one weight) or sleuth's per-phrase weighted sum; ``where``
        (a :class:`~sleuth.filters.DocFilter`): only matching documents compete for the top ``k``."""
        p = params or self.params
        tiers = self.usable_tiers(p.tiers)
        kept = [d for d in decisions if d.kept]
        if p.use_model_weights and tiers == ("unigram",):  # sleuth's form: BM25(q) + sum_p w_p BM25(p)
            hits = self.bm25.search_weighted([(query, 1.0)] + [(d.phrase, float(d.weight or 0.0)) for d in kept], k,
                                             where=where)
            for h in hits:
                h.source = self.name
            return hits
        index: BM25Index = self.bm25.index
        q_stems = index.analyzer.tokens(query)
        if p.use_model_weights:  # per phrase, each with its own weight; repeated tokens count again (as bm25s)
            phrases = [(q_stems, 1.0)] + [(d.tokens, float(d.weight or 0.0)) for d in kept]
            uni, bi = _weighted_targets(index, phrases, tiers, distinct=False)
        else:  # the reference: distinct targets of the query, plus weight x those of the kept stems concatenated
            uni, bi = _weighted_targets(index, [(q_stems, 1.0), ([t for d in kept for t in d.tokens], p.weight)],
                                        tiers, distinct=True)
        mask = None if where is None else where.mask(index.doc_ids)
        scores, idx = index.tier_topk(*_arrays(uni), *_arrays(bi), k, mask)
        return index.hits(scores, idx, self.name, self.bm25.with_text)

    def stats(self, decisions: list[PhraseDecision]) -> dict[str, Any]:
        p = self.params
        index = self.bm25.index
        kept = [t for d in decisions if d.kept for t in d.tokens]
        return {
            "form": p.form, "filter": p.filter, "tiers": list(self.tiers), "prompt": p.prompt,
            "max_phrases": p.max_phrases,
            "weights": "per-phrase model weights" if p.use_model_weights else "one expansion weight",
            "weight": p.weight, "max_n": self.max_n,
            "max_df": reference_max_df(index.n_docs, p.max_df_ratio) if p.filter == "reference" else
            p.max_df_ratio * index.n_docs,
            "expansion_tokens": len(kept), "index": index.meta.get("kind", "base"), "tier_note": self.tier_note,
        }

    # -- entry points ------------------------------------------------------------------------------------------
    def run(self, query: str, k: int = 10, *, tracer: Tracer | None = None, where: Any = None) -> SiraResult:
        """``tracer`` (optional) receives this call's model and ``sira`` events instead of the constructor's.
        ``where``: a metadata filter, applied to the final scoring (the df filter stays corpus-wide)."""
        if not isinstance(query, str) or not query.strip():
            raise ToolArgumentError("empty query", hint="pass some words to search for")
        flt = where_filter(where, self.bm25.index.corpus)
        tracer = tracer if tracer is not None else self.tracer
        span = UsageTap(tracer, span=True) if tracer is not None else None  # this call's span: its model call nests
        t0 = time.perf_counter()
        phrases, usage, fallback = self.propose(query, tracer=span)
        decisions = self.decide(query, phrases)
        if not fallback and phrases and not any(d.kept for d in decisions):
            fallback = "no proposed phrase passed the df filter"
        hits = self.combine(query, decisions, k, where=flt)
        result = SiraResult(
            query=query, k=k, hits=hits, proposed=[p.text for p in phrases], decisions=decisions, fallback=fallback,
            usage=usage, latency_s=time.perf_counter() - t0, n_docs=self.bm25.index.n_docs,
            params=self.params.model_dump(), stats=self.stats(decisions),
        )
        if span is not None:
            span.emit(span.own(TraceEvent(
                kind="sira", name="sira", args={"query": query, "k": k},
                result_chars=sum(len(h.text) for h in hits),
                preview=("kept: " + ", ".join(result.kept_phrases()))[:300] if result.kept else (fallback or ""),
                usage=usage, latency_s=result.latency_s, error=None,
                data={
                    "proposed": result.proposed,
                    "kept": [d.model_dump() for d in result.kept],
                    "rejected": [d.model_dump() for d in result.rejected],
                    "fallback": fallback,
                    "params": result.params,
                    "stats": result.stats,
                    "hits": [{"doc_id": h.doc_id, "score": h.score} for h in hits],
                },
            )))
        return result


def _weighted_targets(
    index: BM25Index, phrases: list[tuple[list[str], float]], tiers: tuple[str, ...], *, distinct: bool
) -> tuple[dict[int, float], dict[int, float]]:
    """Term id -> summed weight on each tier for ``phrases`` (stems, weight): with ``distinct`` the reference's
    ``query_targets`` of each phrase (distinct unigram and adjacent-pair ids), else every token again."""
    uni: dict[int, float] = {}
    bi: dict[int, float] = {}
    for stems, w in phrases:
        if w <= 0:
            continue
        if distinct:
            u, b = targets(index, stems, tiers)
        else:
            u = [index.vocab[s] for s in stems if s in index.vocab] if "unigram" in tiers else []
            b = (index.bigrams.pair_ids([index.vocab.get(s, -1) for s in stems])
                 if "bigram" in tiers and index.bigrams is not None else [])
        for t in u:
            uni[t] = uni.get(t, 0.0) + w
        for g in b:
            bi[g] = bi.get(g, 0.0) + w
    return uni, bi


def plain_tier_topk(index: BM25Index, query: str, tiers: tuple[str, ...], k: int) -> tuple[np.ndarray, np.ndarray]:
    """Plain BM25 of ``query`` on ``tiers``, as the reference scores a query with no expansion on its 1-gram
    (``("unigram",)``) or 2-gram (``("unigram", "bigram")``) index: its distinct targets, weight 1."""
    uni, bi = _weighted_targets(index, [(index.analyzer.tokens(query), 1.0)], tiers, distinct=True)
    return index.tier_topk(*_arrays(uni), *_arrays(bi), k)


def _arrays(weights: dict[int, float]) -> tuple[np.ndarray, np.ndarray]:
    return (np.fromiter(weights.keys(), np.int32, len(weights)),
            np.fromiter(weights.values(), np.float32, len(weights)))
