"""A local OTLP/HTTP trace receiver for tests, built from the official protobuf messages (opentelemetry-proto):
each POST to ``/v1/traces`` (or any path) is decoded into an ``ExportTraceServiceRequest``, from protobuf
(``application/x-protobuf``) or from OTLP/JSON (``application/json``: the protobuf JSON mapping with hex ids, which
are recoded the way an OTLP receiver does), gzip or deflate bodies included. It keeps every request's path, headers
and decoded message, and answers as a collector does (or with ``status``)."""

from __future__ import annotations

import base64
import gzip
import json
import socket
import threading
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    content_type: str
    message: Any  # ExportTraceServiceRequest


@dataclass
class Span:
    """A decoded span in plain Python: hex ids, attribute values as Python values."""

    trace_id: str
    span_id: str
    parent_id: str
    name: str
    kind: int
    start: int
    end: int
    attributes: dict[str, Any]
    events: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    status_code: int = 0
    status_message: str = ""
    resource: dict[str, Any] = field(default_factory=dict)
    scope: str = ""


def any_value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind) if kind else None


def attributes(kvs: Any) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in kvs}


def spans_of(message: Any) -> list[Span]:
    out = []
    for rs in message.resource_spans:
        resource = attributes(rs.resource.attributes)
        for ss in rs.scope_spans:
            for s in ss.spans:
                out.append(Span(
                    s.trace_id.hex(), s.span_id.hex(), s.parent_span_id.hex(), s.name, s.kind,
                    s.start_time_unix_nano, s.end_time_unix_nano, attributes(s.attributes),
                    [(e.name, e.time_unix_nano, attributes(e.attributes)) for e in s.events],
                    s.status.code, s.status.message, resource, ss.scope.name,
                ))
    return out


def decode(body: bytes, content_type: str) -> Any:
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    msg = ExportTraceServiceRequest()
    if content_type.startswith("application/x-protobuf"):
        msg.ParseFromString(body)
        return msg
    if not content_type.startswith("application/json"):
        raise ValueError(f"unsupported content type {content_type!r}")
    data = json.loads(body)
    for rs in data.get("resourceSpans", []):  # OTLP/JSON: ids are hex; the protobuf JSON mapping wants base64
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if span.get(key):
                        span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
    return json_format.ParseDict(data, msg)


class OtlpReceiver:
    def __init__(self, status: int = 200) -> None:
        self.received: list[Received] = []
        self.status = status
        self.got_one = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                encoding = (self.headers.get("Content-Encoding") or "").lower()
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                ctype = self.headers.get("Content-Type", "")
                if outer.status != 200:
                    reply, rtype = b"unsupported", "text/plain"
                    self.send_response(outer.status)
                else:
                    message = decode(body, ctype)
                    outer.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()},
                                                   ctype, message))
                    outer.got_one.set()
                    if ctype.startswith("application/json"):
                        reply, rtype = b"{}", "application/json"
                    else:
                        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
                            ExportTraceServiceResponse,
                        )

                        reply, rtype = ExportTraceServiceResponse().SerializeToString(), "application/x-protobuf"
                    self.send_response(200)
                self.send_header("Content-Type", rtype)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def spans(self) -> list[Span]:
        return [s for r in self.received for s in spans_of(r.message)]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def __enter__(self) -> OtlpReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def closed_port_url() -> str:
    """A loopback URL where nothing listens (the port was bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
