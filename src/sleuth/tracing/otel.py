"""OpenTelemetry export of sleuth traces through the OpenTelemetry SDK and its OTLP exporters (``sleuth-search[otel]``).

* From a trace file: :func:`export_file` (``sleuth trace otel FILE``): sends the spans to an OTLP/HTTP collector,
  writes them as an OTLP/JSON file, or both.
* Live, during a run: :class:`OtelTracer` (``--otel`` on ``ask``, ``search``, ``eval``) wraps the run's tracer;
  each span goes to the SDK's batch processor as soon as its event is written. A collector that is down does not
  stop the run: the first failed export is reported once (``on_failure``), and nothing more is sent.

Both build the same spans (:mod:`sleuth.tracing.spans`): one trace per run id, nested as the run ran, ids derived
from the trace, GenAI semantic-convention and OpenInference attributes (:mod:`sleuth.tracing.genai`).

Configuration is OpenTelemetry's own: ``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``
(default ``http://localhost:4318``), ``OTEL_EXPORTER_OTLP_HEADERS`` (``key=value,...``), ``..._PROTOCOL``
(``http/protobuf``, the default, or ``http/json``), ``..._TIMEOUT``, ``..._COMPRESSION``, ``..._CERTIFICATE``,
``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``, the span limits and ``OTEL_BSP_*``
(read by the SDK). Arguments (``endpoint``, ``headers``, ``protocol``, ``service_name``) win over them.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import urllib.parse
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, cast

from sleuth import __version__
from sleuth.errors import ConfigError, MissingExtraError, TraceExportError, TraceFormatError
from sleuth.records import TraceEvent
from sleuth.tracing.spans import RunSpans, SpanRecord, legacy_nesting, to_spans
from sleuth.tracing.tracer import ForwardingTracer, TraceFile, content_from_env, read_trace_file

__all__ = ["OtelTracer", "content_from_env", "export_file", "finished_spans", "otlp_json", "read_events"]

PROTOCOLS = ("http/protobuf", "http/json")
DEFAULT_ENDPOINT = "http://localhost:4318"
SCOPE = "sleuth.tracing.otel"
# the exporters log why an export failed; sleuth reports it once itself (the records go nowhere else)
EXPORTER_LOGGERS = ("opentelemetry.exporter.otlp.proto.http.trace_exporter",
                    "opentelemetry.exporter.otlp.json.http.trace_exporter")
DEFAULT_SPAN_ATTRIBUTES = 2048  # the SDK's default (128) would drop a long conversation's message attributes
DEFAULT_SPAN_EVENTS = 1024
log = logging.getLogger(__name__)


def _missing(package: str) -> MissingExtraError:
    return MissingExtraError("otel", package, "OpenTelemetry export")


def read_events(path: str | Path, *, skip_corrupt: bool = False) -> list[TraceEvent]:
    """Read a JSONL trace (see :func:`~sleuth.tracing.tracer.read_trace_file`); a trace with no events is an error."""
    return _read(path, skip_corrupt).events


def _read(path: str | Path, skip_corrupt: bool) -> TraceFile:
    got = read_trace_file(path, skip_corrupt=skip_corrupt)
    if not got.events:
        raise TraceFormatError(f"{path} holds no sleuth trace events")
    return got


# -- settings -------------------------------------------------------------------------------------------------


def resolve_protocol(protocol: str | None = None) -> str:
    value = (protocol or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
             or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf").strip().lower()
    if value not in PROTOCOLS:
        hint = "use http/protobuf (the default) or http/json, on the collector's OTLP/HTTP port (4318)"
        raise ConfigError(f"OTLP protocol {value!r} is not supported here", hint=hint)
    return value


def traces_url(endpoint: str | None = None) -> str:
    """The URL the spans are POSTed to: ``endpoint`` + ``/v1/traces`` (kept when it already ends so), else
    ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` as is, else ``OTEL_EXPORTER_OTLP_ENDPOINT`` + ``/v1/traces``, else
    ``http://localhost:4318/v1/traces``. Only http(s) URLs."""
    if endpoint is None and os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        url, append = os.environ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"].strip(), False
    else:
        url, append = (endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or DEFAULT_ENDPOINT).strip(), True
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"not an http(s) URL: {url!r}", hint="pass a base URL such as http://localhost:4318")
    url = url.rstrip("/")
    return url + "/v1/traces" if append and not url.endswith("/v1/traces") else url


def parse_headers(items: Iterable[str]) -> dict[str, str]:
    """``KEY=VALUE`` strings (``--header``) as a dict; they add to ``OTEL_EXPORTER_OTLP_HEADERS``."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"not a header: {item!r}", hint="pass --header KEY=VALUE (e.g. authorization=Bearer X)")
        out[key.strip()] = value.strip()
    return out


# -- the SDK side ---------------------------------------------------------------------------------------------


class _Capture(logging.Filter):
    """Keeps what the OTLP exporter logs while it is in use (why an export failed) and stops it from printing."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            self.messages = [*self.messages[-3:], " ".join(record.getMessage().split())[:400]]
        return False

    def __enter__(self) -> _Capture:
        for name in EXPORTER_LOGGERS:
            logging.getLogger(name).addFilter(self)
        return self

    def __exit__(self, *exc: object) -> None:
        for name in EXPORTER_LOGGERS:
            logging.getLogger(name).removeFilter(self)


def otlp_exporter(
    *, endpoint: str | None = None, headers: dict[str, str] | None = None, protocol: str | None = None,
    timeout: float | None = None,
) -> tuple[Any, str, str]:
    """The SDK's OTLP/HTTP span exporter for ``protocol`` (:func:`resolve_protocol`), the URL it posts to and the
    protocol. Headers, timeout, compression and certificates not given here come from ``OTEL_EXPORTER_OTLP_*``."""
    proto = resolve_protocol(protocol)
    url = traces_url(endpoint)
    exporter: Any
    if proto == "http/protobuf":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as exporter
        except ImportError:
            raise _missing("opentelemetry-exporter-otlp-proto-http") from None
    else:
        try:
            from opentelemetry.exporter.otlp.json.http.trace_exporter import OTLPSpanExporter as exporter
        except ImportError:
            raise _missing("opentelemetry-exporter-otlp-json-http") from None
    return exporter(endpoint=url, headers=headers or None, timeout=timeout), url, proto


class ReportingExporter:
    """A ``SpanExporter`` (by its methods: the SDK's processors call only these) around an OTLP exporter: counts
    what it sent, keeps why the first export failed (``failure``), tells
    ``on_failure`` once, and after a failure drops the rest (``dropped``) instead of waiting on a dead collector."""

    def __init__(self, inner: Any, url: str, on_failure: Callable[[str], None] | None = None) -> None:
        self.inner, self.url, self.on_failure = inner, url, on_failure
        self.failure: str | None = None
        self.sent = self.dropped = 0
        self._lock = threading.Lock()

    def export(self, spans: Any) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        if self.failure is not None:
            self.dropped += len(spans)
            return SpanExportResult.FAILURE
        with _Capture() as capture:
            try:
                result = self.inner.export(spans)
            except Exception as e:  # an exporter bug must not reach the run
                capture.messages.append(f"{type(e).__name__}: {e}")
                result = SpanExportResult.FAILURE
        if result == SpanExportResult.SUCCESS:
            self.sent += len(spans)
            return result
        with self._lock:
            first = self.failure is None
            self.failure = f"the OTLP collector at {self.url} did not take the spans: {_reason(capture.messages)}"
            self.dropped += len(spans)
        if first and self.on_failure is not None:
            self.on_failure(self.failure)
        return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


_ERRNO = re.compile(r"\[Errno -?\d+\] [^\"')]+")
_HTTP = re.compile(r"code: (\d+), reason: (.*)$")


def _reason(messages: list[str]) -> str:
    """What the exporter's log lines say went wrong, in a few words."""
    for m in reversed(messages):
        if found := _HTTP.search(m):
            return f"HTTP {found.group(1)} {found.group(2)}".strip()
    for m in reversed(messages):
        if found := _ERRNO.search(m):
            return f"cannot connect ({found.group(0).strip()})"
    return messages[-1] if messages else "export failed"


def _resource(service_name: str | None, instance_id: str | None) -> Any:
    from opentelemetry.sdk.resources import OTELResourceDetector, Resource

    detected = OTELResourceDetector().detect().attributes
    attrs: dict[str, Any] = {"service.version": __version__}
    if service_name:
        attrs["service.name"] = service_name
    elif "service.name" not in detected:
        attrs["service.name"] = "sleuth"
    if instance_id and "service.instance.id" not in detected:
        attrs["service.instance.id"] = instance_id
    return Resource.create(attrs)


def _limits() -> Any:
    from opentelemetry.sdk.trace import SpanLimits

    env = os.environ
    attrs = None if env.get("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT") or env.get("OTEL_ATTRIBUTE_COUNT_LIMIT") \
        else DEFAULT_SPAN_ATTRIBUTES
    events = None if env.get("OTEL_SPAN_EVENT_COUNT_LIMIT") else DEFAULT_SPAN_EVENTS
    return SpanLimits(max_span_attributes=attrs, max_events=events)


class SpanSender:
    """Turns :class:`~sleuth.tracing.spans.SpanRecord` s into SDK spans (with their recorded ids and times) on a
    private ``TracerProvider`` (never the global one) whose processor exports them."""

    def __init__(self, processor: Any, *, service_name: str | None = None, instance_id: str | None = None) -> None:
        try:
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.id_generator import IdGenerator
        except ImportError:
            raise _missing("opentelemetry-sdk") from None

        class GivenIds(IdGenerator):  # the SDK takes its ids from here: the next span's are set before it starts
            trace_id = span_id = 0

            def generate_span_id(self) -> int:
                return self.span_id

            def generate_trace_id(self) -> int:
                return self.trace_id

        self._ids = GivenIds()
        self.provider = TracerProvider(
            resource=_resource(service_name, instance_id), id_generator=self._ids, span_limits=_limits(),
            shutdown_on_exit=False,
        )
        self.provider.add_span_processor(processor)
        self.tracer = self.provider.get_tracer(SCOPE, __version__)
        self._sampled: dict[str, bool] = {}
        self._lock = threading.Lock()

    def _is_sampled(self, trace_id: int, hex_trace: str) -> bool:
        """The sampler's decision for the trace (``OTEL_TRACES_SAMPLER``), so every span of a run agrees."""
        if hex_trace not in self._sampled:
            decision = self.provider.sampler.should_sample(None, trace_id, "sleuth run")
            self._sampled[hex_trace] = decision.decision.is_sampled()
        return self._sampled[hex_trace]

    def send(self, records: Iterable[SpanRecord]) -> None:
        from opentelemetry import trace as api
        from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

        with self._lock:
            for r in records:
                trace_id = int(r.trace_id, 16)
                flags = TraceFlags(TraceFlags.SAMPLED if self._is_sampled(trace_id, r.trace_id) else 0)
                context = None
                if r.parent_id:
                    parent = SpanContext(trace_id, int(r.parent_id, 16), is_remote=False, trace_flags=flags)
                    context = api.set_span_in_context(NonRecordingSpan(parent))
                self._ids.trace_id, self._ids.span_id = trace_id, int(r.span_id, 16)
                span = self.tracer.start_span(
                    r.name, context=context, kind=SpanKind.CLIENT if r.kind == "client" else SpanKind.INTERNAL,
                    attributes=r.attributes, start_time=_ns(r.start),
                )
                for ev in r.events:
                    span.add_event(ev.name, ev.attributes, timestamp=_ns(ev.ts))
                if r.error:
                    span.set_status(Status(StatusCode.ERROR, r.error[:4000]))
                span.end(end_time=_ns(max(r.start, r.end)))

    def shutdown(self) -> None:
        self.provider.shutdown()


def _ns(t: float) -> int:
    return max(0, round(t * 1e9))


def _instance_id(events: list[TraceEvent]) -> str:
    """``service.instance.id`` of a file export: derived from its run ids, so a re-export is byte-identical."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "sleuth-trace:" + ",".join(sorted({e.run_id for e in events}))))


def finished_spans(events: list[TraceEvent], *, service_name: str | None = None, content: bool = True) -> list[Any]:
    """The SDK's ``ReadableSpan`` s of a trace (what an exporter receives), in the order they end."""
    try:
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    except ImportError:
        raise _missing("opentelemetry-sdk") from None
    memory = InMemorySpanExporter()
    sender = SpanSender(SimpleSpanProcessor(memory), service_name=service_name, instance_id=_instance_id(events))
    sender.send(to_spans(events, content=content))
    spans = list(memory.get_finished_spans())
    sender.shutdown()
    return spans


def otlp_json(spans: list[Any]) -> dict[str, Any]:
    """An OTLP/JSON ``ExportTraceServiceRequest`` of SDK spans, from the OpenTelemetry JSON encoder."""
    try:
        from opentelemetry.exporter.otlp.json.common.trace_encoder import encode_spans
    except ImportError:
        raise _missing("opentelemetry-exporter-otlp-json-common") from None
    return dict(json.loads(encode_spans(spans).to_json()))


def dumps(request: dict[str, Any]) -> str:
    return json.dumps(request, ensure_ascii=False, indent=1) + "\n"


def export_file(
    path: str | Path,
    *,
    out: str | Path | None = None,
    endpoint: str | None = None,
    send: bool = False,
    headers: dict[str, str] | None = None,
    protocol: str | None = None,
    service_name: str | None = None,
    content: bool = True,
    skip_corrupt: bool = False,
    timeout: float | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Convert a trace file; write it to ``out`` (OTLP/JSON, atomically) and/or send it to a collector (``send``,
    or ``endpoint`` given; else the ``OTEL_EXPORTER_OTLP_*`` endpoint). Returns the OTLP/JSON request and a summary
    (spans, traces, where they went). A collector that refuses or cannot be reached: :class:`TraceExportError`."""
    from sleuth.fsutil import atomic_write_text

    send = send or endpoint is not None
    exporter = otlp_exporter(endpoint=endpoint, headers=headers, protocol=protocol, timeout=timeout) if send else None
    got = _read(path, skip_corrupt)
    spans = finished_spans(got.events, service_name=service_name, content=content)
    request = otlp_json(spans)
    summary: dict[str, Any] = {"spans": len(spans), "traces": len({s.context.trace_id for s in spans}), "out": None,
                               "skipped": [str(x) for x in got.skipped]}
    if out is not None:
        atomic_write_text(out, dumps(request))
        summary["out"] = str(out)
    if exporter is not None:
        inner, url, proto = exporter
        reporting = ReportingExporter(inner, url)
        reporting.export(spans)
        reporting.shutdown()
        if reporting.failure is not None:
            raise TraceExportError(reporting.failure)
        summary.update({"endpoint": url, "protocol": proto})
    return request, summary


# -- live export ----------------------------------------------------------------------------------------------


class OtelTracer(ForwardingTracer):
    """A run's tracer that also exports its spans live: wraps the tracer the run writes to (``inner``: a
    JSONL or memory tracer, which numbers the events), and hands each span to the SDK's batch processor as soon as
    its event is written. :meth:`close` sends what is left (unfinished steps, each run's root) and flushes.

    The export never stops the run: the first failure goes to ``on_failure`` once (default: a log warning), and
    the rest is dropped; ``status()`` says what was sent."""

    def __init__(
        self, inner: Any, *, endpoint: str | None = None, headers: dict[str, str] | None = None,
        protocol: str | None = None, service_name: str | None = None, content: bool = True,
        on_failure: Callable[[str], None] | None = None, timeout: float | None = None,
    ) -> None:
        super().__init__(inner)
        try:
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
        except ImportError:
            raise _missing("opentelemetry-sdk") from None
        exporter, self.url, self.protocol = otlp_exporter(
            endpoint=endpoint, headers=headers, protocol=protocol, timeout=timeout)
        self.exporter = ReportingExporter(exporter, self.url, on_failure or _warn)
        self.sender = SpanSender(BatchSpanProcessor(cast(Any, self.exporter)), service_name=service_name)
        self.content = content
        self._runs: dict[str, RunSpans] = {}
        self._lock = threading.Lock()
        self._closed = False

    @property
    def path(self) -> Any:  # the inner tracer's trace file, for the run's result
        return getattr(self.inner, "path", "") or ""

    def emit(self, event: TraceEvent) -> TraceEvent:
        event = super().emit(event)  # the inner tracer stamps the run id and the step
        try:
            with self._lock:
                run = self._runs.get(event.run_id)
                if run is None:
                    run = self._runs[event.run_id] = RunSpans(event.run_id, content=self.content)
                records = run.add(event)
            self.sender.send(records)
        except Exception as e:  # exporting must never break the run
            log.warning("sleuth: OpenTelemetry span not built: %s: %s", type(e).__name__, e)
        return event

    def add_run(self, events: list[TraceEvent]) -> None:
        """Export one whole run at once (an eval question's events, once the question is done)."""
        run = RunSpans(events[0].run_id, content=self.content) if events else None
        if run is not None:
            records = [r for e in legacy_nesting(events) for r in run.add(e)]
            self.sender.send([*records, *run.close()])

    def close(self) -> None:
        """Send every run's remaining spans, flush, and close the inner tracer (when it has ``close``)."""
        if self._closed:
            return
        self._closed = True
        with self._lock:
            rest = [r for run in self._runs.values() for r in run.close()]
            self._runs.clear()
        self.sender.send(rest)
        self.sender.shutdown()  # flushes the batch processor (bounded by OTEL_EXPORTER_OTLP_TIMEOUT per batch)
        if hasattr(self.inner, "close"):
            self.inner.close()

    def status(self) -> dict[str, Any]:
        return {"endpoint": self.url, "protocol": self.protocol, "sent_spans": self.exporter.sent,
                "dropped_spans": self.exporter.dropped, "error": self.exporter.failure}

    def __enter__(self) -> OtelTracer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _warn(message: str) -> None:
    log.warning("sleuth: OpenTelemetry export failed (the run goes on; no more spans are sent): %s", message)
