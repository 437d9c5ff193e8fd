"""`sleuth trace otel`: a real (scripted-model) run's trace as OTLP/JSON spans, written, printed and POSTed."""

from __future__ import annotations

import base64
import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from typer.testing import CliRunner

from sleuth.errors import ConfigError, TraceExportError, TraceFormatError
from sleuth.records import TraceEvent, Usage
from sleuth.tracing.otel import export_file, post, read_events, to_otlp

QUESTION = "Where was the designer of the Kestrel Bridge born?"
OKAFOR = "people/bram_okafor.md"
HEX32, HEX16 = re.compile(r"^[0-9a-f]{32}$"), re.compile(r"^[0-9a-f]{16}$")


@pytest.fixture()
def trace_file(react_trace):
    return react_trace("Saltmarsh")


def spans_of(request):
    (rs,) = request["resourceSpans"]
    (ss,) = rs["scopeSpans"]
    assert ss["scope"]["name"] == "sleuth.tracing.otel"
    return ss["spans"]


def attrs(span_or_event):
    out = {}
    for a in span_or_event.get("attributes", []):
        ((kind, value),) = a["value"].items()
        out[a["key"]] = int(value) if kind == "intValue" else value
    return out


class Collector:
    """A real OTLP/HTTP endpoint on localhost (http.server in a thread) that records every POST."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, str, bytes]] = []
        self.status = 200
        posts, collector = self.posts, self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                posts.append((self.path, self.headers["Content-Type"], body))
                reply = b'{"partialSuccess": {}}' if collector.status == 200 else b"bad\nrequest"
                self.send_response(collector.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture()
def collector(monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    c = Collector()
    yield c
    c.close()


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there once the socket is closed


def test_structure_of_a_real_run(trace_file):
    events = read_events(trace_file)
    spans = spans_of(to_otlp(events))
    root, children = spans[0], spans[1:]
    assert "parentSpanId" not in root and root["name"] == "invoke_agent react"
    ids = {s["spanId"] for s in spans}
    assert len(ids) == len(spans)
    for s in spans:
        assert HEX32.match(s["traceId"]) and s["traceId"] == root["traceId"]
        assert HEX16.match(s["spanId"])
        assert int(s["startTimeUnixNano"]) <= int(s["endTimeUnixNano"])
        assert int(root["startTimeUnixNano"]) <= int(s["startTimeUnixNano"])
        assert int(s["endTimeUnixNano"]) <= int(root["endTimeUnixNano"])
        assert isinstance(s["kind"], int) and isinstance(s["startTimeUnixNano"], str)
    assert all(s["parentSpanId"] in ids for s in children)

    by_id = {s["spanId"]: s for s in spans}
    llm = [s for s in children if attrs(s)["sleuth.kind"] == "llm"]
    tools = [s for s in children if attrs(s)["sleuth.kind"] == "tool"]
    nodes = [s for s in children if attrs(s)["sleuth.kind"] == "node"]
    assert len(llm) == 4 and len(tools) == 4 and nodes
    assert all(s["parentSpanId"] == root["spanId"] for s in nodes)
    for s in llm + tools:  # LLM and tool calls hang under the graph node they ran in
        parent = by_id[s["parentSpanId"]]
        assert attrs(parent)["sleuth.kind"] == "node" and attrs(parent)["sleuth.name"] == attrs(s)["sleuth.node"]
        assert attrs(parent)["sleuth.step"] > attrs(s)["sleuth.step"]  # a node's event is written when it ends

    # token attributes are the events' tokens, and the scripted model's cost stays "unmeasured"
    llm_events = [e for e in events if e.kind == "llm"]
    for s, e in zip(llm, llm_events, strict=True):
        a = attrs(s)
        assert s["kind"] == 3 and a["gen_ai.operation.name"] == "chat" and a["gen_ai.request.model"] == e.args["model"]
        assert a["gen_ai.usage.input_tokens"] == e.usage.prompt_tokens > 0
        assert a["gen_ai.usage.output_tokens"] == e.usage.completion_tokens
        assert a["sleuth.cost"] == "unmeasured"
    ra = attrs(root)
    assert ra["gen_ai.usage.input_tokens"] == sum(e.usage.prompt_tokens for e in llm_events)
    assert ra["sleuth.cost"] == "unmeasured" and ra["sleuth.answer"] == "Saltmarsh" and ra["sleuth.run_id"] == "run-1"

    # the unknown tool is an error span; the good tool calls are not
    (bad,) = [s for s in tools if s["status"]]
    assert bad["status"]["code"] == 2 and "unknown tool 'nope'" in bad["status"]["message"]
    assert attrs(bad)["gen_ai.tool.name"] == "nope" and attrs(bad)["error.type"] == "ToolArgumentError"
    assert {attrs(s)["gen_ai.tool.name"] for s in tools} == {"grep", "nope", "read", "answer"}

    # events without a duration are span events; nothing is lost
    n_events = sum(len(s.get("events", [])) for s in spans)
    assert len(children) + n_events == len(events)
    assert any(e["name"] == "answer model" for s in spans for e in s.get("events", []))


def test_hand_built_events_times_costs_and_determinism():
    t = 1_700_000_000.0
    events = [
        TraceEvent(run_id="r", step=1, ts=t, kind="run", name="start", args={"question": "q", "agent": "sira"}),
        TraceEvent(run_id="r", step=2, ts=t + 2.0, kind="llm", name="agent", node="plan", args={"model": "m"},
                   usage=Usage.one_call(10, 3, 0.25, "provider"), latency_s=1.5),
        TraceEvent(run_id="r", step=3, ts=t + 2.5, kind="node", name="plan", node="plan", latency_s=2.5),
        TraceEvent(run_id="r", step=4, ts=t + 3.0, kind="llm", name="x", usage=Usage.one_call(5, 1, None, "provider"),
                   latency_s=0.5, error="ModelConnectionError: gone"),
        TraceEvent(run_id="other", step=1, ts=t + 9.0, kind="tool", name="grep", latency_s=0.0),
    ]
    request = to_otlp(events, service_name="svc")
    assert attrs(request["resourceSpans"][0]["resource"])["service.name"] == "svc"
    spans = spans_of(request)
    root, llm, node, failed, root2, grep = spans
    assert len({root["traceId"], root2["traceId"]}) == 2  # one trace per run id
    assert grep["parentSpanId"] == root2["spanId"] and grep["traceId"] == root2["traceId"]
    assert llm["parentSpanId"] == node["spanId"] and failed["parentSpanId"] == root["spanId"]
    # an event is written when it ends: it started latency_s earlier
    assert llm["startTimeUnixNano"] == str(round((t + 0.5) * 1e9))
    assert llm["endTimeUnixNano"] == str(round((t + 2) * 1e9))
    assert root["startTimeUnixNano"] == str(round(t * 1e9)) and root["endTimeUnixNano"] == str(round((t + 3) * 1e9))
    assert attrs(llm)["sleuth.cost"] == 0.25 and attrs(failed)["sleuth.cost"] == "unmeasured"
    assert attrs(root)["sleuth.cost"] == 0.25 and attrs(root)["sleuth.unpriced_calls"] == 1
    assert failed["status"] == {"code": 2, "message": "ModelConnectionError: gone"}
    assert attrs(failed)["error.type"] == "ModelConnectionError"
    assert attrs(root)["gen_ai.agent.name"] == "sira" and root["name"] == "invoke_agent sira"
    assert root["events"][0]["name"] == "run start"
    # same events, same bytes; ids come from the run id and step
    assert json.dumps(to_otlp(events, "svc")) == json.dumps(request)
    resumed = [*events[:3], events[1].model_copy()]  # a resumed run repeats step numbers
    assert len({s["spanId"] for s in spans_of(to_otlp(resumed))}) == 4


def test_official_protobuf_mapping_accepts_it(trace_file):
    pytest.importorskip("opentelemetry.proto")
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    request = to_otlp(read_events(trace_file))
    # OTLP/JSON differs from the plain protobuf-JSON mapping in one point: ids are hex, not base64. Recode them
    # the way an OTLP receiver does; everything else (int enums, int64 as strings, AnyValue) parses as is.
    proto_json = json.loads(json.dumps(request))
    for span in spans_of(proto_json):
        for key in ("traceId", "spanId", "parentSpanId"):
            if key in span:
                span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
    msg = json_format.Parse(json.dumps(proto_json), ExportTraceServiceRequest())
    spans = msg.resource_spans[0].scope_spans[0].spans
    assert [s.span_id.hex() for s in spans] == [s["spanId"] for s in spans_of(request)]
    assert all(len(s.trace_id) == 16 and len(s.span_id) == 8 for s in spans)
    assert sum(1 for s in spans if s.status.code == 2) == 1
    assert spans[0].kind == spans[0].SPAN_KIND_INTERNAL and spans[0].end_time_unix_nano > spans[0].start_time_unix_nano
    llm = [s for s in spans if s.kind == s.SPAN_KIND_CLIENT]
    assert len(llm) == 4 and all(a.value.WhichOneof("value") for s in llm for a in s.attributes)


def test_out_file_and_stdout(app, trace_file, tmp_path):
    out = tmp_path / "o" / "spans.json"
    request, summary = export_file(trace_file, out=out)
    assert json.loads(out.read_text(encoding="utf-8")) == request
    assert summary["spans"] == len(spans_of(request)) and summary["traces"] == 1
    assert not list(out.parent.glob(".*.tmp"))
    runner = CliRunner()
    r = runner.invoke(app, ["trace", "otel", str(trace_file)])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output) == request
    r = runner.invoke(app, ["trace", "otel", str(trace_file), "--out", str(tmp_path / "b.json"), "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["out"] == str(tmp_path / "b.json")
    assert (tmp_path / "b.json").read_text(encoding="utf-8") == out.read_text(encoding="utf-8")


def test_endpoint_posts_to_a_real_collector(app, trace_file, collector):
    request, _ = export_file(trace_file)
    summary = post(request, collector.url + "/")
    assert summary == {"endpoint": collector.url + "/v1/traces", "rejected_spans": 0}
    path, ctype, body = collector.posts[-1]
    assert path == "/v1/traces" and ctype == "application/json" and json.loads(body) == request
    r = CliRunner().invoke(app, ["trace", "otel", str(trace_file), "--endpoint", collector.url, "--service-name", "x"])
    assert r.exit_code == 0, r.output
    assert f"sent {len(spans_of(request))} spans" in r.output
    sent = json.loads(collector.posts[-1][2])
    assert attrs(sent["resourceSpans"][0]["resource"])["service.name"] == "x"
    collector.status = 400
    with pytest.raises(TraceExportError, match=r"/v1/traces answered HTTP 400: bad request"):
        post(request, collector.url)


def test_refused_connection_is_a_typed_error(app, trace_file, monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    url = closed_port_url()
    with pytest.raises(TraceExportError, match="cannot reach the OTLP collector") as info:
        export_file(trace_file, endpoint=url)
    assert "4318" in info.value.hint
    r = CliRunner().invoke(app, ["trace", "otel", str(trace_file), "--endpoint", url, "--json"])
    assert r.exit_code == 2
    err = json.loads(r.output)
    assert err["error"] == "TraceExportError" and f"{url}/v1/traces" in err["message"]
    r = CliRunner().invoke(app, ["trace", "otel", str(trace_file), "--endpoint", url])
    assert r.exit_code == 2 and "cannot reach the OTLP collector" in r.output
    r = CliRunner().invoke(app, ["trace", "otel", str(trace_file), "--endpoint", "localhost:4318", "--json"])
    assert r.exit_code == 2 and json.loads(r.output)["error"] == "ConfigError"


def test_missing_file_and_malformed_lines(app, tmp_path):
    with pytest.raises(ConfigError, match="no trace file"):
        read_events(tmp_path / "missing.jsonl")
    r = CliRunner().invoke(app, ["trace", "otel", str(tmp_path / "missing.jsonl"), "--json"])
    assert r.exit_code == 2 and "no trace file" in json.loads(r.output)["message"]

    good = TraceEvent(kind="llm", name="agent", run_id="x", latency_s=0.1).model_dump_json()
    bad = tmp_path / "bad.jsonl"
    bad.write_text(f"{good}\n{{not json\n{good}\n", encoding="utf-8")
    with pytest.raises(TraceFormatError, match=r"bad\.jsonl, line 2: not a sleuth trace event \(Invalid JSON"):
        read_events(bad)
    bad.write_text(f'{good}\n{good}\n{{"kind": "party"}}\n', encoding="utf-8")
    with pytest.raises(TraceFormatError, match=r"line 3: not a sleuth trace event \(kind: Input should be"):
        read_events(bad)
    r = CliRunner().invoke(app, ["trace", "otel", str(bad)])
    assert r.exit_code == 2 and "line 3" in r.output and "TraceFormatError" in r.output

    torn = tmp_path / "torn.jsonl"  # a killed run's last line is cut mid-write: skipped, as `trace show` does
    torn.write_text(f"{good}\n{good[:30]}", encoding="utf-8")
    assert len(read_events(torn)) == 1
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(TraceFormatError, match="holds no sleuth trace events"):
        read_events(empty)
