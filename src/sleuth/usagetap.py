""":class:`UsageTap`: how a retriever or reranker measures the model calls of one call of its own.

The component hands the tap (instead of the caller's tracer) to every model call it makes; the tap sums the usage
of the ``kind="llm"`` events and forwards every event to the caller's tracer, so the trace is unchanged and the
result record (:class:`~sleuth.records.SearchResult`, :class:`~sleuth.records.RerankResult`) gets this call's
usage. One tap per call: concurrent calls never share one.

It is the one usage-counting tracer wrapper, :class:`sleuth.llm.accounting.UsageCounter`, under the name the
retrieval and rerank modules use.
"""

from __future__ import annotations

from sleuth.llm.accounting import UsageCounter

UsageTap = UsageCounter

__all__ = ["UsageTap"]
