"""SIRA, query side: one LLM call proposes evidence phrases the query lacks; a document-frequency filter keeps the
discriminative ones; one weighted BM25 call combines them with the query.

``score(d) = BM25(query, d) + sum_p w_p * BM25(p, d)`` for the kept phrases ``p`` (``w_p = weight``, times the
model's own 0..1 weight for the phrase when it gave one and ``use_model_weights`` is on). A phrase is kept when
``0 < df(p) < max_df_ratio * N`` (df of the phrase as a contiguous stemmed n-gram, see :mod:`sleuth.retrieval.df`).

Every query records what was proposed, kept, and rejected with the reason, in the returned :class:`SiraResult` and
in a ``kind="sira"`` trace event. When the model's output is unusable (no JSON, wrong shape, weights that are not
numbers), the search falls back to the plain query and says so (``fallback``).

Defaults (``max_df_ratio``, ``weight``) were tuned on 100 SciFact *train* queries with the embedded model; see
docs/results/lexical.md.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, ValidationError, create_model

from sleuth.errors import ConfigError, ModelOutputError, ToolArgumentError
from sleuth.llm.base import ChatModel
from sleuth.records import Hit, SearchResult, TraceEvent, Usage
from sleuth.retrieval.base import RetrieverBase
from sleuth.retrieval.bm25 import BM25Retriever
from sleuth.retrieval.df import DocFrequency
from sleuth.usagetap import UsageTap

if TYPE_CHECKING:
    from sleuth.tracing import Tracer

__all__ = ["PhraseDecision", "SiraParams", "SiraProposal", "SiraResult", "SiraRetriever", "UsageTap", "WeightedPhrase"]

PROMPT = "sira_expand"
MAX_PHRASE_WORDS = 8


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
    # 6, not 10: the embedded 0.5B model starts repeating itself after ~6 phrases, and every phrase costs ~6
    # generated tokens (the dominant cost on CPU). The schema still accepts up to 10 from stronger models.
    max_phrases: int = Field(6, ge=1, le=10)
    # Tuned on 40 SciFact *train* queries with the embedded model (docs/results/lexical.md): weight 0.2 was best
    # (0.6046 vs BM25 0.5973 nDCG@10) and every max_df_ratio from 0.005 to 0.2 tied at that weight.
    max_df_ratio: float = Field(0.05, gt=0.0, le=1.0)
    weight: float = Field(0.2, ge=0.0)
    use_model_weights: bool = True
    max_tokens: int = Field(120, ge=16)
    retries: int = Field(1, ge=0)


class PhraseDecision(BaseModel):
    phrase: str
    tokens: list[str] = Field(default_factory=list)
    df: int | None = None
    kept: bool = False
    reason: str = ""
    weight: float | None = None


class SiraResult(SearchResult):
    """One SIRA search: the hits, the phrases the model proposed, the filter's decision on each (kept or rejected,
    with the reason), the fallback reason when the plain query was used, and the model call's usage."""

    method: str = "sira"
    proposed: list[str] = Field(default_factory=list)
    decisions: list[PhraseDecision] = Field(default_factory=list)
    fallback: str | None = None  # why the plain query was used, when it was
    n_docs: int = 0
    params: dict[str, Any] = Field(default_factory=dict)

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


def messages_for(query: str, max_phrases: int = 10) -> list[dict[str, str]]:
    from sleuth.prompts import load

    system, _, user = load(PROMPT).partition("=== user ===")
    # Listing the query's words as forbidden was tried and made Qwen2.5-0.5B copy exactly those words (3 of 3
    # queries); see docs/results/lexical.md. The filter rejects echoes anyway ("adds nothing").
    fill = {"query": query, "max_phrases": max_phrases}
    return [{"role": "system", "content": system.strip().format(**fill)},
            {"role": "user", "content": user.strip().format(**fill)}]


class SiraRetriever(RetrieverBase):
    """One model call per query. ``run(query, k)`` returns the full :class:`SiraResult` (what was proposed, kept
    and rejected); ``search(query, k)`` its hits. Nothing about a call is kept on the retriever."""

    name = "sira"

    def __init__(
        self,
        bm25: BM25Retriever,
        model: ChatModel,
        *,
        params: SiraParams | None = None,
        tracer: Any = None,
        docfreq: DocFrequency | None = None,
    ) -> None:
        if model is None:
            raise ConfigError("SIRA needs a model", hint="pass --model (e.g. local) or get_retriever(..., model=m)")
        self.bm25 = bm25
        self.model = model
        self.params = params or SiraParams()
        self.tracer = tracer
        self.docfreq = docfreq or DocFrequency(bm25.index)

    # -- the three steps ---------------------------------------------------------------------------------------
    def propose(self, query: str, *, tracer: Any = None) -> tuple[list[WeightedPhrase], Usage, str | None]:
        """One model call. Returns (phrases, usage, fallback reason or None)."""
        p = self.params
        tap = UsageTap(tracer if tracer is not None else self.tracer)
        try:
            proposal, result = self.model.structured(
                messages_for(query, p.max_phrases), proposal_schema(p.max_phrases), retries=p.retries,
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
        """Apply the filters; every proposed phrase gets a decision with its reason."""
        p = params or self.params
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
            toks = index.analyzer.tokens(text)
            d.tokens = toks
            if not toks:
                d.reason = "no indexable words (stopwords or punctuation only)"
                continue
            key = tuple(toks)
            if key in seen:
                d.reason = "duplicate of an earlier phrase"
                continue
            seen.add(key)
            if set(toks) <= query_tokens:
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
            d.weight = p.weight * (ph.weight if p.use_model_weights else 1.0)
            n_kept += 1
        return out

    def combine(self, query: str, decisions: list[PhraseDecision], k: int) -> list[Hit]:
        terms = [(query, 1.0)] + [(d.phrase, float(d.weight or 0.0)) for d in decisions if d.kept]
        hits = self.bm25.search_weighted(terms, k)
        for h in hits:
            h.source = self.name
        return hits

    # -- entry points ------------------------------------------------------------------------------------------
    def run(self, query: str, k: int = 10, *, tracer: Tracer | None = None) -> SiraResult:
        """``tracer`` (optional) receives this call's model and ``sira`` events instead of the constructor's."""
        if not isinstance(query, str) or not query.strip():
            raise ToolArgumentError("empty query", hint="pass some words to search for")
        tracer = tracer if tracer is not None else self.tracer
        span = UsageTap(tracer, span=True) if tracer is not None else None  # this call's span: its model call nests
        t0 = time.perf_counter()
        phrases, usage, fallback = self.propose(query, tracer=span)
        decisions = self.decide(query, phrases)
        if not fallback and phrases and not any(d.kept for d in decisions):
            fallback = "no proposed phrase passed the df filter"
        hits = self.combine(query, decisions, k)
        result = SiraResult(
            query=query, k=k, hits=hits, proposed=[p.text for p in phrases], decisions=decisions, fallback=fallback,
            usage=usage, latency_s=time.perf_counter() - t0, n_docs=self.bm25.index.n_docs,
            params=self.params.model_dump(),
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
                    "hits": [{"doc_id": h.doc_id, "score": h.score} for h in hits],
                },
            )))
        return result
