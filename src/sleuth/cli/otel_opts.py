"""The options of live OpenTelemetry export (``--otel``, ``--otel-endpoint``, ``--trace-content``) shared by
``ask``, ``search`` and ``eval``, and the one way they open the exporter (:class:`sleuth.tracing.otel.OtelTracer`).
Nothing here imports the SDK until ``--otel`` is given."""

from __future__ import annotations

from typing import Any

import typer

OTEL_OPTION = typer.Option(
    False, "--otel",
    help="Export the spans live to an OTLP/HTTP collector (Phoenix, Jaeger, an OpenTelemetry Collector): "
         "OTEL_EXPORTER_OTLP_ENDPOINT, default http://localhost:4318; headers, protocol etc. from OTEL_* "
         "(needs sleuth-search[otel]). A collector that is down does not stop the run.",
)
OTEL_ENDPOINT_OPTION = typer.Option(
    None, "--otel-endpoint", help="The collector for --otel (a base URL such as http://localhost:6006; implies --otel)."
)
TRACE_CONTENT_OPTION = typer.Option(
    False, "--trace-content",
    help="Record prompts, completions and tool results in full in the trace and the exported spans (off by "
         "default; a true OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT turns it on too).",
)


def capture_content(flag: bool) -> bool:
    """``--trace-content``, or the GenAI instrumentations' environment opt-in."""
    if flag:
        return True
    from sleuth.tracing.tracer import content_from_env

    return content_from_env()


def warn_once(trace_path: Any = None) -> Any:
    """The ``on_failure`` of a CLI run: one line on stderr (the exporter calls it once)."""

    def warn(message: str) -> None:
        keep = f"; its trace keeps every span: sleuth trace otel {trace_path} --endpoint URL" if trace_path else ""
        typer.echo(f"warning: OpenTelemetry export failed, the run goes on{keep} ({message})", err=True)

    return warn


def live_tracer(inner: Any, otel: bool, endpoint: str | None, *, trace_path: Any = None) -> Any:
    """``inner`` wrapped in an :class:`~sleuth.tracing.otel.OtelTracer` when ``--otel``/``--otel-endpoint`` is
    given (a bad endpoint or protocol, or the missing extra, fails here, before the run), else ``inner``."""
    if not (otel or endpoint):
        return inner
    from sleuth.tracing.otel import OtelTracer

    return OtelTracer(inner, endpoint=endpoint, content=True, on_failure=warn_once(trace_path))


def close_live(tracer: Any) -> dict[str, Any] | None:
    """Flush and close a live exporter; its status (endpoint, spans sent, the error) or None without one."""
    from sleuth.tracing.otel import OtelTracer

    if not isinstance(tracer, OtelTracer):
        return None
    tracer.close()
    return tracer.status()


def status_line(status: dict[str, Any] | None) -> str:
    if not status:
        return ""
    if status["error"]:
        return f"OpenTelemetry: export failed ({status['sent_spans']} spans sent, {status['dropped_spans']} dropped)"
    return f"OpenTelemetry: sent {status['sent_spans']} spans to {status['endpoint']}"
