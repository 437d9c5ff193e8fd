""":class:`UsageTap`: how a retriever or reranker measures the model calls of one call of its own.

The component hands the tap (instead of the caller's tracer) to every model call it makes; the tap sums the usage
of the ``kind="llm"`` events and forwards every event to the caller's tracer, so the trace is unchanged and the
result record (:class:`~sleuth.records.SearchResult`, :class:`~sleuth.records.RerankResult`) gets this call's
usage. One tap per call: concurrent calls never share one.
"""

from __future__ import annotations

from typing import Any

from sleuth.records import TraceEvent, Usage


class UsageTap:
    """A tracer that sums the usage of ``llm`` events and forwards every event to ``inner`` (may be None).

    ``structured`` raises without a usage when every attempt failed; the tap still counts those tokens."""

    def __init__(self, inner: Any = None) -> None:
        self.inner = inner
        self.run_id = getattr(inner, "run_id", "")
        self.usage = Usage()

    def emit(self, event: TraceEvent) -> TraceEvent:
        if event.kind == "llm" and event.usage is not None:
            self.usage = self.usage + event.usage
        return self.inner.emit(event) if self.inner is not None else event

    def record(self, kind: str, name: str = "", **fields: Any) -> TraceEvent:
        return self.emit(TraceEvent(kind=kind, name=name, **fields))
