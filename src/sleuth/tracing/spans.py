"""A run's trace events as spans, nested as the run ran. Pure conversion, standard library only; the OpenTelemetry
SDK side (``sleuth.tracing.otel``) turns each :class:`SpanRecord` into an SDK span and exports it.

* One trace per run id (trace id = sha256 of the run id), with a root span over the whole run: ``invoke_agent
  AGENT`` for an agent run (the question as its input, the answer as its output, the run's summed usage).
* One child span per event that has a duration (model calls, tool calls, graph nodes, SIRA, retrieval,
  reranking). An event is written when it ends, so it ran from ``ts - latency_s`` to ``ts``.
* Nesting: an event that ends a span carries its ``span_id``; events from inside it carry it as ``parent_id``
  (:class:`~sleuth.tracing.tracer.ForwardingTracer`): a model call sits under its SIRA or rerank span, under the
  tool call, under the agent step. Traces written before events carried span ids are nested by node (an event
  whose ``node`` is set goes under the next event that closes that node).
* Events without a duration (notes, budgets, the answer) become span events of their parent span (or the root).
* A parent that never ended (a killed run) is still exported, as an error span "unfinished ..." over its children.
* Ids: a recorded ``span_id`` is kept; other spans get sha256(run id, step, occurrence), so exporting the same
  trace twice gives the same spans.

:class:`RunSpans` builds a run's spans as its events arrive (live export: a span is ready as soon as its event
is, except that span events wait for their span); :func:`to_spans` feeds it a whole trace.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from sleuth.records import TraceEvent, Usage
from sleuth.tracing.genai import Attrs, clean, event_attributes, span_name, usage_attributes
from sleuth.tracing.show import summarize


@dataclass
class SpanEventRecord:
    name: str
    ts: float
    attributes: Attrs


@dataclass
class SpanRecord:
    """One span: times in seconds since the epoch; ids as hex (32 digits for the trace, 16 for spans)."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    kind: Literal["internal", "client"]
    start: float
    end: float
    attributes: Attrs
    events: list[SpanEventRecord] = field(default_factory=list)
    error: str | None = None


def hex_id(*parts: object, n: int) -> str:
    return hashlib.sha256("\x1f".join(str(x) for x in parts).encode("utf-8")).hexdigest()[:n]


def trace_id_of(run_id: str) -> str:
    return hex_id("trace", run_id, n=32)


def _closes_node(e: TraceEvent) -> bool:
    """The event a graph node writes when it ends (or fails): its span holds the node's LLM and tool calls."""
    return e.latency_s is not None and (e.kind == "node" or (e.kind == "error" and e.name == e.node != ""))


def legacy_nesting(events: list[TraceEvent]) -> list[TraceEvent]:
    """Span ids for a run written before events carried them: an event with a ``node`` goes under the next event
    that closes that node; the rest under the root. Runs that carry span ids are returned unchanged."""
    if any(e.span_id or e.parent_id for e in events):
        return events
    seen: Counter[int] = Counter()
    ids = []
    for e in events:
        ids.append(hex_id("span", e.run_id, e.step, seen[e.step], n=16))
        seen[e.step] += 1
    out = list(events)
    upcoming: dict[str, int] = {}  # node name -> index of that node's next closing event
    for i in range(len(events) - 1, -1, -1):
        e = events[i]
        update: dict[str, Any] = {}
        if _closes_node(e):
            upcoming[e.name] = i
            update["span_id"] = ids[i]
        elif e.node and e.node in upcoming:
            update["parent_id"] = ids[upcoming[e.node]]
        if update:
            out[i] = e.model_copy(update=update)
    return out


class RunSpans:
    """The spans of one run, built as its events arrive: :meth:`add` returns the spans an event finished (its own,
    once its span events are known), :meth:`close` the rest (unfinished parents, the root). ``content``: include
    the prompts, completions and tool results that the events captured."""

    def __init__(self, run_id: str, *, content: bool = True) -> None:
        self.run_id = run_id
        self.trace_id = trace_id_of(run_id)
        self.root_id = hex_id("root", run_id, n=16)
        self.content = content
        self.events: list[TraceEvent] = []
        self._seen: Counter[int] = Counter()
        self._done: set[str] = set()  # span ids already built
        self._pending: dict[str, list[SpanEventRecord]] = {}  # parent span id -> its span events so far
        self._children: dict[str, list[SpanRecord | TraceEvent]] = {}  # parents not built yet -> what ran in them
        self._open_parents: set[str] = set()

    def _span_id(self, e: TraceEvent) -> str:
        sid = e.span_id or hex_id("span", self.run_id, e.step, self._seen[e.step], n=16)
        self._seen[e.step] += 1
        return sid

    def _parent(self, e: TraceEvent) -> str:
        return e.parent_id or self.root_id

    def add(self, e: TraceEvent) -> list[SpanRecord]:
        self.events.append(e)
        sid = self._span_id(e)
        parent = self._parent(e)
        if e.latency_s is None or e.kind == "run":  # an instant: a span event of its parent (or of the root)
            if parent in self._done:  # its span was already sent: the root keeps it
                parent = self.root_id
            self._pending.setdefault(parent, []).append(
                SpanEventRecord(span_name(e), e.ts, event_attributes(e, content=self.content))
            )
            self._note_child(parent, e)
            return []
        # a span covers what ran in it: its start is its end minus its measured latency, widened to its children
        # (a component that measures its latency, then does a little more work before emitting, would otherwise
        # start a few microseconds after its first model call)
        kids = self._children.get(sid, [])
        start = min([e.ts - max(e.latency_s, 0.0), *(_start(c) for c in kids)])
        end = max([e.ts, *(_end(c) for c in kids)])
        span = SpanRecord(
            self.trace_id, sid, parent, span_name(e), "client" if e.kind == "llm" else "internal",
            start, end, event_attributes(e, content=self.content), error=e.error,
        )
        span.events = self._pending.pop(sid, [])
        self._done.add(sid)
        self._open_parents.discard(sid)
        self._children.pop(sid, None)
        self._note_child(parent, span)
        return [span]

    def _note_child(self, parent: str, child: SpanRecord | TraceEvent) -> None:
        if parent != self.root_id and parent not in self._done:
            self._open_parents.add(parent)
            self._children.setdefault(parent, []).append(child)

    def close(self) -> list[SpanRecord]:
        """The spans still to send: parents that never ended (as error spans over their children), then the root."""
        out: list[SpanRecord] = []
        for pid in sorted(self._open_parents, key=lambda p: min(_start(c) for c in self._children[p])):
            kids = self._children[pid]
            nodes = {c.node for c in kids if isinstance(c, TraceEvent) and c.node} | {
                str(c.attributes.get("sleuth.node")) for c in kids if isinstance(c, SpanRecord)
                and c.attributes.get("sleuth.node")
            }
            name = f"unfinished {next(iter(nodes))}" if len(nodes) == 1 else "unfinished step"
            span = SpanRecord(
                self.trace_id, pid, self.root_id, name, "internal", min(_start(c) for c in kids),
                max(_end(c) for c in kids), clean({"openinference.span.kind": "CHAIN", "sleuth.unfinished": True}),
                events=self._pending.pop(pid, []), error="the run stopped before this step ended",
            )
            out.append(span)
        self._open_parents.clear()
        out.append(self._root())
        return out

    def _root(self) -> SpanRecord:
        events = self.events
        s = summarize(events)
        first = next((e for e in events if e.kind == "run" and e.name == "start"), None)
        start_args = first.args if first else {}
        agent = start_args.get("agent")
        question = start_args.get("question") or start_args.get("query")
        answer = s["answer"]
        attrs: Attrs = {"openinference.span.kind": "AGENT" if agent else "CHAIN"}
        if agent:
            attrs.update({"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent})
        attrs["gen_ai.conversation.id"] = self.run_id
        attrs.update(usage_attributes(Usage.model_validate(s["usage"])))
        attrs.update({
            "input.value": question, "input.mime_type": "text/plain" if question else None,
            "output.value": answer if answer is not None else (f"no answer: {s['note']}" if s["note"] else None),
            "sleuth.run_id": self.run_id, "sleuth.question": question, "sleuth.answer": answer,
            "sleuth.note": s["note"], "sleuth.doc_ids": s["doc_ids"], "sleuth.stop_reason": s["stop_reason"],
            "sleuth.route": s["route"], "sleuth.llm_calls": s["llm_calls"], "sleuth.tool_calls": s["tool_calls"],
            "sleuth.errors": s["errors"],
        })
        if attrs.get("output.value") is not None:
            attrs["output.mime_type"] = "text/plain"
        attrs.update({f"sleuth.start.{k}": v for k, v in start_args.items() if k not in ("question", "agent")})
        name = f"invoke_agent {agent}" if agent else str(start_args.get("name") or f"sleuth run {self.run_id}")
        return SpanRecord(
            self.trace_id, self.root_id, None, name, "internal",
            min(e.ts - (e.latency_s or 0.0) for e in events), max(e.ts for e in events), clean(attrs),
            events=self._pending.pop(self.root_id, []),
            error=next((e.error for e in events if e.kind == "error" and e.error), None),
        )


def _start(c: SpanRecord | TraceEvent) -> float:
    return c.start if isinstance(c, SpanRecord) else c.ts - (c.latency_s or 0.0)


def _end(c: SpanRecord | TraceEvent) -> float:
    return c.end if isinstance(c, SpanRecord) else c.ts


def to_spans(events: list[TraceEvent], *, content: bool = True) -> list[SpanRecord]:
    """Every span of a trace: one trace per run id, in the order a live export sends them (each run's spans as
    they end, then its unfinished parents and its root)."""
    runs: dict[str, list[TraceEvent]] = {}
    for e in events:
        runs.setdefault(e.run_id, []).append(e)
    out: list[SpanRecord] = []
    for run_id, evs in runs.items():
        builder = RunSpans(run_id, content=content)
        for e in legacy_nesting(evs):
            out.extend(builder.add(e))
        out.extend(builder.close())
    return out
