"""Trace events: every LLM call, tool call and node of a run, as typed records written to JSONL."""

from sleuth.tracing.tracer import (
    CallTally,
    ForwardingTracer,
    JSONLTracer,
    MemoryTracer,
    NullTracer,
    SkippedLine,
    TraceFile,
    Tracer,
    TracerBase,
    read_trace,
    read_trace_file,
)

__all__ = [
    "CallTally",
    "ForwardingTracer",
    "JSONLTracer",
    "MemoryTracer",
    "NullTracer",
    "SkippedLine",
    "TraceFile",
    "Tracer",
    "TracerBase",
    "read_trace",
    "read_trace_file",
]
