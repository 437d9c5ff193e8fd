"""Trace events: every LLM call, tool call and node of a run, as typed records written to JSONL."""

from sleuth.tracing.tracer import JSONLTracer, MemoryTracer, NullTracer, Tracer, read_trace

__all__ = ["JSONLTracer", "MemoryTracer", "NullTracer", "Tracer", "read_trace"]
