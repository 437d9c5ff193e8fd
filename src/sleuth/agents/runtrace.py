"""A tracer that forwards to whichever run is active in the current context.

Components built once and shared across runs (a SIRA retriever inside the ``search`` tool, say) take
:data:`RUN_TRACER` as their tracer; while an agent node runs, their events (and the usage of their LLM calls)
go to that run's trace. Outside a run the events are dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sleuth.records import TraceEvent

_CURRENT: ContextVar[Any] = ContextVar("sleuth_run_tracer", default=None)


class RunTracer:
    """Forwards ``emit``/``record`` to the tracer of the run active in this context (see :func:`active`)."""

    @property
    def run_id(self) -> str:
        current = _CURRENT.get()
        return getattr(current, "run_id", "") if current is not None else ""

    def emit(self, event: TraceEvent) -> TraceEvent:
        current = _CURRENT.get()
        return current.emit(event) if current is not None else event

    def record(self, kind: str, name: str = "", **fields: Any) -> TraceEvent:
        return self.emit(TraceEvent(kind=kind, name=name, **fields))  # type: ignore[arg-type]


RUN_TRACER = RunTracer()


@contextmanager
def active(tracer: Any) -> Iterator[None]:
    token = _CURRENT.set(tracer)
    try:
        yield
    finally:
        _CURRENT.reset(token)
