"""Typed records shared by every part of sleuth: documents, hits, usage, trace events, and the result records of
one retrieval call (:class:`SearchResult`) and one rerank call (:class:`RerankResult`).

Records that users construct (``Document``, ``Hit``, the result records) forbid unknown fields: ``Hit(scor=3.0)``
is a validation error, not a hit without a score. Anything else a hit carries goes in ``Hit.metadata``."""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, computed_field, model_serializer

UNMEASURED = "unmeasured"


class Document(BaseModel):
    """A document in a corpus. ``id`` is the path of its file relative to the corpus root."""

    model_config = ConfigDict(extra="forbid")

    id: str
    text: str
    title: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)


class Hit(BaseModel):
    """One retrieved document (or one line of one, for grep).

    ``score`` is the method's relevance score, higher is better; ``None`` when the method only ranks (the listwise
    and FIRST rerankers: the list order is the result, see :attr:`RerankResult.has_scores`). Rank is the position
    in the list, never a score. Anything else goes in ``metadata`` (unknown fields are a validation error)."""

    model_config = ConfigDict(extra="forbid")

    doc_id: str
    score: float | None = None
    text: str = ""
    source: str = ""
    line: int | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class Usage(BaseModel):
    """Tokens and cost of one or more model calls.

    ``cost_usd`` sums the calls whose cost is known. ``unpriced_calls`` counts the calls whose cost is not; the
    computed ``cost`` is the string ``"unmeasured"`` when no call was priced (never a silent 0) and a number
    otherwise (``cost_complete`` says whether every call was priced).
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # of prompt_tokens, served from the provider's prompt cache (as reported; 0 if not)
    calls: int = 0
    cost_usd: float = 0.0
    unpriced_calls: int = 0
    token_source: Literal["provider", "local_tokenizer", "mixed", "none"] = "none"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cost(self) -> float | str:
        if self.calls and self.unpriced_calls >= self.calls:
            return UNMEASURED
        if not self.calls:
            return 0.0
        return round(self.cost_usd, 8)

    @property
    def cost_complete(self) -> bool:
        return self.unpriced_calls == 0

    @classmethod
    def one_call(
        cls,
        prompt_tokens: int,
        completion_tokens: int,
        cost_usd: float | None,
        token_source: Literal["provider", "local_tokenizer"],
        cached_tokens: int = 0,
    ) -> Usage:
        return cls(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cached_tokens=cached_tokens,
            calls=1,
            cost_usd=cost_usd or 0.0,
            unpriced_calls=0 if cost_usd is not None else 1,
            token_source=token_source,
        )

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        sources = {s for s in (self.token_source, other.token_source) if s != "none"}
        source = "none" if not sources else sources.pop() if len(sources) == 1 else "mixed"
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            calls=self.calls + other.calls,
            cost_usd=self.cost_usd + other.cost_usd,
            unpriced_calls=self.unpriced_calls + other.unpriced_calls,
            token_source=source,
        )

    @model_serializer(mode="wrap")
    def _drop_unmeasured_cost(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """No ``cost_usd: 0.0`` beside ``cost: "unmeasured"`` in JSON: the 0 would read as a measured price."""
        data = handler(self)
        if isinstance(data, dict) and self.cost == UNMEASURED:
            data.pop("cost_usd", None)
        return data

    def cost_text(self) -> str:
        c = self.cost
        if isinstance(c, str):
            return c
        suffix = "" if self.cost_complete else f" (+{self.unpriced_calls} unpriced calls)"
        return f"${c:.6f}{suffix}"


EventKind = Literal["run", "node", "llm", "tool", "retrieval", "rerank", "sira", "budget", "error", "answer", "note"]


class TraceEvent(BaseModel):
    """One step of a run: a node, an LLM call, a tool call, ... Written as one JSONL line."""

    run_id: str = ""
    step: int = 0
    ts: float = Field(default_factory=time.time)
    kind: EventKind
    name: str = ""
    node: str = ""
    args: dict[str, Any] = Field(default_factory=dict)
    result_chars: int | None = None
    preview: str = ""
    usage: Usage | None = None
    latency_s: float | None = None
    error: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    # the span this event ends (a node, a tool call, a SIRA or rerank call), and the span it ran inside; both
    # 16 hex digits or "" (see sleuth.tracing.tracer.ForwardingTracer); exporters nest spans by them
    span_id: str = ""
    parent_id: str = ""


class SearchResult(BaseModel):
    """One retrieval call (:meth:`sleuth.retrieval.base.Retriever.run`): the hits, best first, and what the method
    decided. Methods that decide something subclass it (``SiraResult``: proposed, kept and rejected phrases;
    ``HybridResult``: each fused list's own result) and override :meth:`decided` and :meth:`note`.

    ``usage`` sums the model calls this one call made (none for bm25 and dense: zero calls, cost 0)."""

    model_config = ConfigDict(extra="forbid")

    query: str
    method: str
    k: int
    hits: list[Hit] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    latency_s: float = 0.0

    def decided(self) -> dict[str, Any]:
        """What the method decided for this query, as plain data (tool metadata, traces); ``{}`` when nothing."""
        return {}

    @classmethod
    def from_dump(cls, data: dict[str, Any]) -> SearchResult:
        """A dumped result validated as the (imported) subclass that wrote it, matched by ``method``; as a plain
        :class:`SearchResult` (the method's own fields dropped) when that subclass is not imported."""
        todo: list[type[SearchResult]] = [cls]
        while todo:
            c = todo.pop()
            field = c.model_fields.get("method")
            if c is not SearchResult and field is not None and field.default == data.get("method"):
                return c.model_validate(data)
            todo.extend(c.__subclasses__())
        return SearchResult.model_validate({k: v for k, v in data.items() if k in SearchResult.model_fields})

    def note(self) -> str:
        """One line for an agent's observation about what the method did (``""`` when there is nothing to say)."""
        return ""


class RerankResult(BaseModel):
    """One rerank call (:meth:`sleuth.rerank.base.Reranker.run`).

    * ``hits``: the reranked hits, best first, cut to ``k`` (each input document once);
    * ``permutation``: for every unique candidate, best first and before the cut, its position in the input list
      (the first occurrence, when a document was given twice);
    * ``has_scores``: whether ``Hit.score`` holds the reranker's own score (ICR's calibrated attention). ``False``
      for rank-only rerankers (listwise, FIRST): their hits carry ``score=None``, never a rank-derived number;
    * the first-stage score of each hit is kept in ``metadata["first_stage_score"]``;
    * ``usage``: the model calls this rerank made (tokens, cost or "unmeasured"); ``stats``: the backend's
      counters (windows, parse repairs, fallbacks), the same as in its ``kind="rerank"`` trace event."""

    model_config = ConfigDict(extra="forbid")

    query: str
    method: str
    hits: list[Hit] = Field(default_factory=list)
    permutation: list[int] = Field(default_factory=list)
    has_scores: bool = False
    duplicates: int = 0
    usage: Usage = Field(default_factory=Usage)
    latency_s: float = 0.0
    stats: dict[str, Any] = Field(default_factory=dict)
