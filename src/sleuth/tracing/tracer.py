"""Tracers receive :class:`~sleuth.records.TraceEvent` records. Pass one in; never read one from a global.

* :class:`TracerBase`: the one base class; a subclass implements :meth:`~TracerBase.emit`, ``record`` is built on
  it once.
* :class:`NullTracer`, :class:`MemoryTracer`, :class:`JSONLTracer`: the tracers a run writes to (they number the
  events they receive).
* :class:`ForwardingTracer`: a wrapper that passes every event to an inner tracer (or drops it when there is
  none); the usage-counting wrapper, :class:`sleuth.llm.accounting.UsageCounter`, is one. With ``span=True`` the
  wrapper opens a span: it has a ``span_id``, its own event (``emit(wrapper.own(event))``) carries that id, and
  every other event that passes without a parent gets it as ``parent_id``. A graph node, a tool call, a SIRA call
  and a rerank call open one, so an exporter nests the spans as the run ran (a model call under its SIRA span,
  under the tool call, under the agent step).
* ``capture_content``: a run tracer made with ``capture_content=True`` asks the model clients and tools to record
  prompts, completions and tool results in full in their events (``data["content"]``); wrappers report their
  inner tracer's setting. Off unless asked, or unless ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` is true
  (:func:`content_from_env`; :func:`captures_content`).
* :class:`CallTally`: the one count of a run's LLM calls, tool calls and usage over its events, used by the live
  wrapper and by everything that reads a trace back (``sleuth trace show/html/otel``), so they agree.
* :func:`read_trace` / :func:`read_trace_file`: the one reader of a JSONL trace.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pydantic import ValidationError

from sleuth.records import TraceEvent, Usage

log = logging.getLogger("sleuth.tracing")


@runtime_checkable
class Tracer(Protocol):
    @property
    def run_id(self) -> str: ...  # read-only: a forwarding tracer reports its inner tracer's id

    def emit(self, event: TraceEvent) -> TraceEvent: ...

    def record(self, kind: str, name: str = "", **fields: Any) -> TraceEvent: ...


def new_span_id() -> str:
    """A random 64-bit span id as 16 hex digits (never all zeros, which OpenTelemetry reserves)."""
    while (sid := secrets.token_hex(8)) == "0" * 16:
        pass
    return sid


CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"  # the GenAI instrumentations' opt-in


def content_from_env() -> bool:
    """Whether the environment asks for prompts and completions (``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``
    true, as OpenTelemetry's GenAI instrumentations read it)."""
    value = os.environ.get(CONTENT_ENV, "").strip().lower()
    return value in ("1", "true", "yes", "span_only", "span_and_event")


def captures_content(tracer: Any) -> bool:
    """Whether ``tracer`` asks for prompts, completions and tool results in full (``capture_content``)."""
    return bool(getattr(tracer, "capture_content", False)) if tracer is not None else False


class TracerBase:
    """What every sleuth tracer shares: ``record(kind, name, **fields)`` builds the event and calls ``emit``."""

    def emit(self, event: TraceEvent) -> TraceEvent:  # pragma: no cover - overridden
        raise NotImplementedError

    def record(self, kind: str, name: str = "", **fields: Any) -> TraceEvent:
        return self.emit(TraceEvent(kind=kind, name=name, **fields))


class _SteppedTracer(TracerBase):
    """Stamps the run id and a step number (1, 2, ...) on each event, then writes it."""

    def __init__(self, run_id: str | None = None, *, capture_content: bool | None = None) -> None:
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self.capture_content = content_from_env() if capture_content is None else capture_content
        self._lock = threading.Lock()
        self._step = 0

    def emit(self, event: TraceEvent) -> TraceEvent:
        with self._lock:
            self._step += 1
            event = event.model_copy(update={"run_id": event.run_id or self.run_id, "step": self._step})
            self._write(event)
        return event

    def _write(self, event: TraceEvent) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class NullTracer(_SteppedTracer):
    """Drops every event."""

    def _write(self, event: TraceEvent) -> None:
        return None


class MemoryTracer(_SteppedTracer):
    """Keeps events in a list (tests, eval rows)."""

    def __init__(self, run_id: str | None = None, *, capture_content: bool | None = None) -> None:
        super().__init__(run_id, capture_content=capture_content)
        self.events: list[TraceEvent] = []

    def _write(self, event: TraceEvent) -> None:
        self.events.append(event)

    def of_kind(self, kind: str) -> list[TraceEvent]:
        return [e for e in self.events if e.kind == kind]


class JSONLTracer(MemoryTracer):
    """Appends one JSON line per event to ``path`` (flushed per event, so a killed run keeps its trace)."""

    def __init__(self, path: str | Path, run_id: str | None = None, *, capture_content: bool | None = None) -> None:
        super().__init__(run_id, capture_content=capture_content)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("a", encoding="utf-8")

    def _write(self, event: TraceEvent) -> None:
        super()._write(event)
        self._fh.write(event.model_dump_json() + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> JSONLTracer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ForwardingTracer(TracerBase):
    """Passes every event to ``inner`` (a tracer, or None: the event is dropped). Subclasses look at the events
    on the way through.

    ``span=True`` opens a span (see the module docstring): ``span_id`` is set, :meth:`own` marks the event that
    closes the span, and events from inside it that have no parent yet get ``parent_id = span_id``."""

    def __init__(self, inner: Any = None, *, span: bool = False) -> None:
        self.inner = inner
        self.span_id = new_span_id() if span else ""

    @property
    def run_id(self) -> str:
        return str(getattr(self.inner, "run_id", "") or "")

    @property
    def capture_content(self) -> bool:
        return captures_content(self.inner)

    def own(self, event: TraceEvent) -> TraceEvent:
        """``event`` as this span's own event (the one that ends it); unchanged when this wrapper opened none."""
        return event.model_copy(update={"span_id": self.span_id}) if self.span_id else event

    def emit(self, event: TraceEvent) -> TraceEvent:
        if self.span_id and not event.parent_id and event.span_id != self.span_id:
            event = event.model_copy(update={"parent_id": self.span_id})
        return self.inner.emit(event) if self.inner is not None else event


# -- counting -------------------------------------------------------------------------------------------------


@dataclass
class CallTally:
    """LLM calls, tool calls and the usage summed over the LLM calls of a stream of events.

    Every ``kind="llm"`` event is one LLM call (a failed one too: its tokens still count) and every
    ``kind="tool"`` event one tool call (an error observation too). The run's totals (``AgentResult``,
    ``sleuth ask --json``) and a trace's totals (``sleuth trace show``/``html``) are both this count."""

    usage: Usage = field(default_factory=Usage)
    llm_calls: int = 0
    tool_calls: int = 0

    def add(self, event: TraceEvent) -> None:
        if event.kind == "llm":
            self.llm_calls += 1
            if event.usage is not None:
                self.usage = self.usage + event.usage
        elif event.kind == "tool":
            self.tool_calls += 1

    @classmethod
    def of(cls, events: Iterable[TraceEvent]) -> CallTally:
        tally = cls()
        for e in events:
            tally.add(e)
        return tally


# -- reading --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SkippedLine:
    """A line of a trace file that is not a trace event."""

    lineno: int
    reason: str
    torn: bool = False  # the last line, cut mid-write (a killed run): always skipped, never an error

    def __str__(self) -> str:
        what = "torn last line (the run was killed mid-write)" if self.torn else "not a sleuth trace event"
        return f"line {self.lineno}: {what} ({self.reason})"


@dataclass
class TraceFile:
    path: Path
    events: list[TraceEvent]
    skipped: list[SkippedLine]


def _reason(e: ValidationError) -> str:
    err = e.errors()[0]
    where = ".".join(str(x) for x in err["loc"])
    return f"{where + ': ' if where else ''}{err['msg']}"


def read_trace_file(path: str | Path, *, skip_corrupt: bool = False) -> TraceFile:
    """Read a JSONL trace. A line that is not a trace event raises :class:`~sleuth.errors.TraceFormatError`
    naming the file and the line number; with ``skip_corrupt=True`` it is skipped and listed in ``skipped``. A
    torn last line (no newline at its end: a run killed mid-write) is always skipped (and listed)."""
    from sleuth.errors import ConfigError, TraceFormatError

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"no trace file at {p}", hint="pass the JSONL file written by `sleuth ask --trace FILE`")
    events: list[TraceEvent] = []
    skipped: list[SkippedLine] = []
    with p.open(encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                events.append(TraceEvent.model_validate_json(line))
            except ValidationError as e:
                torn = not line.endswith("\n")
                if not torn and not skip_corrupt:
                    raise TraceFormatError(f"{p}, line {lineno}: not a sleuth trace event ({_reason(e)})") from None
                skipped.append(SkippedLine(lineno, _reason(e)[:200], torn=torn))
    return TraceFile(p, events, skipped)


def read_trace(path: str | Path, *, skip_corrupt: bool = False) -> list[TraceEvent]:
    """The events of a JSONL trace (see :func:`read_trace_file`); lines skipped with ``skip_corrupt=True`` are
    logged (logger ``sleuth.tracing``) with their line numbers."""
    got = read_trace_file(path, skip_corrupt=skip_corrupt)
    for s in got.skipped:
        if not s.torn:
            log.warning("%s, %s: skipped", got.path, s)
    return got.events
