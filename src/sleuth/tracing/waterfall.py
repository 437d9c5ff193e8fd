"""A run's trace events as waterfall rows: one row per event, nested as their spans nest, in the order they started.

An event with a duration (a node, a model call, a tool call, SIRA, retrieval, reranking) is a bar from
``ts - latency_s`` to ``ts``; the events that ran inside its span (``parent_id`` = its ``span_id``, see
:class:`~sleuth.tracing.tracer.ForwardingTracer`) are its children, one level deeper. Events without a duration
(the run's start and end, notes, budgets, the answer) are instants: a mark at ``ts``. Traces written before events
carried span ids are nested by node (:func:`sleuth.tracing.spans.legacy_nesting`, the rule the OpenTelemetry
export uses). A parent that never ended (a killed run) becomes an "unfinished" row over its children.

A row's tokens are its own (a model call) or the sum over the model calls under it (a node, a tool call).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sleuth.records import TraceEvent, Usage
from sleuth.tracing.spans import legacy_nesting


@dataclass
class Row:
    event: TraceEvent | None  # None: a parent span that never ended
    depth: int
    start: float
    end: float
    tokens: Usage = field(default_factory=Usage)
    children: list[Row] = field(default_factory=list)

    @property
    def instant(self) -> bool:
        return self.event is not None and _is_instant(self.event)

    @property
    def seconds(self) -> float:
        return max(self.end - self.start, 0.0)


def _is_instant(e: TraceEvent) -> bool:
    return e.latency_s is None or e.kind == "run"


def _sum_tokens(row: Row) -> Usage:
    e = row.event
    own = e.usage if e is not None and e.kind == "llm" and e.usage is not None else Usage()
    total = own
    for c in row.children:
        total = total + _sum_tokens(c)
    row.tokens = total
    return total


def _place(rows: list[Row], depth: int) -> None:
    rows.sort(key=lambda r: (r.start, r.event.step if r.event else 0))
    for r in rows:
        r.depth = depth
        _place(r.children, depth + 1)


def build_rows(events: list[TraceEvent]) -> list[Row]:
    """The waterfall of ``events``, flattened depth-first (a parent before its children)."""
    events = legacy_nesting(events)
    spans: dict[str, Row] = {}
    all_rows: list[tuple[TraceEvent, Row]] = []
    for e in events:
        row = Row(e, 0, e.ts if _is_instant(e) else e.ts - max(e.latency_s or 0.0, 0.0), e.ts)
        all_rows.append((e, row))
        if e.span_id and not _is_instant(e):
            spans[e.span_id] = row
    roots: list[Row] = []
    unfinished: dict[str, Row] = {}
    for e, row in all_rows:
        pid = e.parent_id
        if _is_instant(e) and e.span_id in spans:  # an instant that a span wrote as its own (the answer)
            pid = e.span_id
        if not pid or (pid == e.span_id and not _is_instant(e)):
            roots.append(row)
        elif pid in spans:
            spans[pid].children.append(row)
        else:
            if pid not in unfinished:
                unfinished[pid] = Row(None, 0, row.start, row.end)
                roots.append(unfinished[pid])
            u = unfinished[pid]
            u.children.append(row)
            u.start, u.end = min(u.start, row.start), max(u.end, row.end)
    for r in spans.values():  # a span covers what ran in it (a component may emit a little after it measured)
        _widen(r)
    _place(roots, 0)
    for r in roots:
        _sum_tokens(r)
    flat: list[Row] = []

    def walk(rows: list[Row]) -> None:
        for r in rows:
            flat.append(r)
            walk(r.children)

    walk(roots)
    return flat


def _widen(row: Row) -> tuple[float, float]:
    for c in row.children:
        s, e = _widen(c) if not c.instant else (c.start, c.end)
        row.start, row.end = min(row.start, s), max(row.end, e)
    return row.start, row.end
