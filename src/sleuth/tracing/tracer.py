"""Tracers receive :class:`~sleuth.records.TraceEvent` records. Pass one in; never read one from a global."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from sleuth.records import TraceEvent


@runtime_checkable
class Tracer(Protocol):
    run_id: str

    def emit(self, event: TraceEvent) -> TraceEvent: ...

    def record(self, kind: str, name: str = "", **fields: Any) -> TraceEvent: ...


class _BaseTracer:
    def __init__(self, run_id: str | None = None) -> None:
        self.run_id = run_id or uuid.uuid4().hex[:12]
        self._lock = threading.Lock()
        self._step = 0

    def emit(self, event: TraceEvent) -> TraceEvent:
        with self._lock:
            self._step += 1
            event = event.model_copy(update={"run_id": event.run_id or self.run_id, "step": self._step})
            self._write(event)
        return event

    def record(self, kind: str, name: str = "", **fields: Any) -> TraceEvent:
        return self.emit(TraceEvent(kind=kind, name=name, **fields))  # type: ignore[arg-type]

    def _write(self, event: TraceEvent) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class NullTracer(_BaseTracer):
    """Drops every event."""

    def _write(self, event: TraceEvent) -> None:
        return None


class MemoryTracer(_BaseTracer):
    """Keeps events in a list (tests, eval rows)."""

    def __init__(self, run_id: str | None = None) -> None:
        super().__init__(run_id)
        self.events: list[TraceEvent] = []

    def _write(self, event: TraceEvent) -> None:
        self.events.append(event)

    def of_kind(self, kind: str) -> list[TraceEvent]:
        return [e for e in self.events if e.kind == kind]


class JSONLTracer(MemoryTracer):
    """Appends one JSON line per event to ``path`` (flushed per event, so a killed run keeps its trace)."""

    def __init__(self, path: str | Path, run_id: str | None = None) -> None:
        super().__init__(run_id)
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


def read_trace(path: str | Path) -> list[TraceEvent]:
    """Read a JSONL trace; a torn last line (killed run) is skipped."""
    events: list[TraceEvent] = []
    with Path(path).open(encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                events.append(TraceEvent.model_validate(json.loads(line)))
            except (json.JSONDecodeError, ValueError):
                continue
    return events
