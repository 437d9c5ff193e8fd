"""`sleuth trace otel FILE`: a run's trace as OpenTelemetry spans (OTLP/JSON), printed, written or POSTed.

Pure conversion, standard library only: the JSONL events become one ``ExportTraceServiceRequest`` in
OTLP/JSON (the protobuf-JSON mapping with hex ids, as OTLP requires; enums as integers; times as decimal
strings). Each run id is one trace: a root ``invoke_agent`` span over the whole run, and one child span per event
that has a duration (LLM calls, tool calls, graph nodes, retrieval, reranking). An event is written when it
ends, so it ran from ``ts - latency_s`` to ``ts``; LLM and tool calls are children of the node they ran in.
Events without a duration (notes, budgets, the answer) become span events of their node or of the root. Ids
are sha256 of the run id and step, so exporting the same trace twice gives the same bytes.

Attribute names follow the OpenTelemetry GenAI semantic conventions where they fit (``gen_ai.operation.name``,
``gen_ai.request.model``, ``gen_ai.usage.input_tokens``, ``gen_ai.tool.name``); the rest are ``sleuth.*``.
``sleuth.cost`` is a number in USD, or the string ``"unmeasured"`` when no call was priced (never a silent 0).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import math
import re
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from sleuth import __version__
from sleuth.errors import ConfigError, TraceExportError, TraceFormatError
from sleuth.records import TraceEvent, Usage
from sleuth.tracing.show import summarize
from sleuth.tracing.tracer import TraceFile, read_trace_file

SPAN_KIND_INTERNAL, SPAN_KIND_CLIENT = 1, 3
STATUS_ERROR = 2
MAX_TEXT = 4000  # longer string attributes are cut (collectors cap attribute size)
_ERROR_TYPE = re.compile(r"^(?:Error \()?([A-Za-z_][\w.]*(?:Error|Exception|Timeout))\b")


def read_events(path: str | Path, *, skip_corrupt: bool = False) -> list[TraceEvent]:
    """Read a JSONL trace with :func:`~sleuth.tracing.tracer.read_trace_file` (a corrupt line is an error naming
    its line number unless ``skip_corrupt``; a torn last line is skipped); a trace with no events is an error."""
    return _read(path, skip_corrupt).events


def _read(path: str | Path, skip_corrupt: bool) -> TraceFile:
    got = read_trace_file(path, skip_corrupt=skip_corrupt)
    if not got.events:
        raise TraceFormatError(f"{path} holds no sleuth trace events")
    return got


def _hex(*parts: object, n: int) -> str:
    return hashlib.sha256("\x1f".join(str(x) for x in parts).encode("utf-8")).hexdigest()[:n]


def _ns(t: float) -> str:
    return str(max(0, round(t * 1e9)))


def _value(v: Any) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int) and -(2**63) <= v < 2**63:
        return {"intValue": str(v)}
    if isinstance(v, float) and math.isfinite(v):
        return {"doubleValue": v}
    text = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)
    return {"stringValue": text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"}


def _attributes(values: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": _value(v)} for k, v in values.items() if v is not None and v not in ("", {}, [])]


def _usage_attributes(usage: Usage | None, prefix: str) -> dict[str, Any]:
    if usage is None:
        return {}
    out: dict[str, Any] = {
        f"{prefix}.input_tokens": usage.prompt_tokens,
        f"{prefix}.output_tokens": usage.completion_tokens,
        "sleuth.cost": usage.cost,  # a float, or "unmeasured"
        "sleuth.token_source": usage.token_source,
    }
    if usage.unpriced_calls and not isinstance(usage.cost, str):
        out["sleuth.unpriced_calls"] = usage.unpriced_calls
    return out


def _event_attributes(e: TraceEvent) -> dict[str, Any]:
    a: dict[str, Any] = {"sleuth.kind": e.kind, "sleuth.step": e.step, "sleuth.node": e.node, "sleuth.name": e.name}
    if e.kind == "llm":
        a.update({"gen_ai.operation.name": "chat", "gen_ai.request.model": e.args.get("model")})
    elif e.kind == "tool":
        a.update({"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": e.name})
    a.update(_usage_attributes(e.usage, "gen_ai.usage" if e.kind == "llm" else "sleuth.usage"))
    a.update({"sleuth.args": e.args, "sleuth.result_chars": e.result_chars, "sleuth.preview": e.preview})
    a.update({"sleuth.latency_s": e.latency_s, "sleuth.data": e.data, "sleuth.error": e.error})
    if e.error:
        m = _ERROR_TYPE.match(e.error)
        a["error.type"] = m.group(1) if m else "_OTHER"
    return a


def _span_name(e: TraceEvent) -> str:
    if e.kind == "llm":
        return f"chat {e.args.get('model') or ''}".strip()
    if e.kind == "tool":
        return f"execute_tool {e.name}"
    return f"{e.kind} {e.name}".strip()


def _closes_node(e: TraceEvent) -> bool:
    """The event a graph node writes when it ends (or fails): its span holds the node's LLM and tool calls."""
    return e.latency_s is not None and (e.kind == "node" or (e.kind == "error" and e.name == e.node != ""))


def _run_spans(run_id: str, events: list[TraceEvent]) -> list[dict[str, Any]]:
    trace_id, root_id = _hex("trace", run_id, n=32), _hex("root", run_id, n=16)
    seen: Counter[int] = Counter()
    ids = []
    for e in events:  # a resumed run appends a second tracer's steps 1, 2, ...: the occurrence keeps ids unique
        ids.append(_hex("span", run_id, e.step, seen[e.step], n=16))
        seen[e.step] += 1
    parent: list[int | None] = [None] * len(events)
    upcoming: dict[str, int] = {}  # node name -> index of that node's next closing event
    for i in range(len(events) - 1, -1, -1):
        e = events[i]
        if _closes_node(e):
            upcoming[e.name] = i
        elif e.node:
            parent[i] = upcoming.get(e.node)

    s = summarize(events)
    first = next((e for e in events if e.kind == "run" and e.name == "start"), None)
    agent = first.args.get("agent") if first else None
    root = _span(
        trace_id, root_id, None, f"invoke_agent {agent or 'sleuth'}", kind=SPAN_KIND_INTERNAL,
        start=min(e.ts - (e.latency_s or 0.0) for e in events), end=max(e.ts for e in events),
        error=next((e.error for e in events if e.kind == "error" and e.error), None),
        attributes={
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent, "sleuth.run_id": run_id,
            **_usage_attributes(Usage.model_validate(s["usage"]), "gen_ai.usage"),
            "sleuth.question": first.args.get("question") if first else None,
            "sleuth.answer": s["answer"], "sleuth.note": s["note"],
            "sleuth.doc_ids": s["doc_ids"], "sleuth.stop_reason": s["stop_reason"], "sleuth.route": s["route"],
            "sleuth.llm_calls": s["llm_calls"], "sleuth.tool_calls": s["tool_calls"], "sleuth.errors": s["errors"],
        },
    )
    spans: dict[int, dict[str, Any]] = {}
    for i, e in enumerate(events):
        if e.latency_s is not None and e.kind != "run":
            up = parent[i]
            spans[i] = _span(
                trace_id, ids[i], root_id if up is None else ids[up], _span_name(e),
                kind=SPAN_KIND_CLIENT if e.kind == "llm" else SPAN_KIND_INTERNAL,
                start=e.ts - max(e.latency_s, 0.0), end=e.ts, error=e.error, attributes=_event_attributes(e),
            )
    for i, e in enumerate(events):  # the rest are instants: span events of their node, or of the root
        if i not in spans:
            up = parent[i]
            holder = root if up is None else spans[up]
            holder.setdefault("events", []).append(
                {"timeUnixNano": _ns(e.ts), "name": _span_name(e), "attributes": _attributes(_event_attributes(e))}
            )
    return [root, *spans.values()]


def _span(
    trace_id: str, span_id: str, parent_id: str | None, name: str, *,
    kind: int, start: float, end: float, error: str | None, attributes: dict[str, Any],
) -> dict[str, Any]:
    span: dict[str, Any] = {"traceId": trace_id, "spanId": span_id}
    if parent_id:
        span["parentSpanId"] = parent_id
    span.update({
        "name": name, "kind": kind, "startTimeUnixNano": _ns(start), "endTimeUnixNano": _ns(max(start, end)),
        "attributes": _attributes(attributes),
        "status": {"code": STATUS_ERROR, "message": error[:MAX_TEXT]} if error else {},
    })
    return span


def to_otlp(events: list[TraceEvent], service_name: str = "sleuth") -> dict[str, Any]:
    """An OTLP/JSON ``ExportTraceServiceRequest``: one trace per run id in ``events``."""
    runs: dict[str, list[TraceEvent]] = {}
    for e in events:
        runs.setdefault(e.run_id, []).append(e)
    spans = [span for run_id, evs in runs.items() for span in _run_spans(run_id, evs)]
    return {
        "resourceSpans": [{
            "resource": {"attributes": _attributes({"service.name": service_name, "service.version": __version__})},
            "scopeSpans": [{"scope": {"name": "sleuth.tracing.otel", "version": __version__}, "spans": spans}],
        }]
    }


def traces_url(endpoint: str) -> str:
    """``{endpoint}/v1/traces`` (kept as is when it already ends so); only http(s) URLs."""
    url = endpoint.rstrip("/")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"not an http(s) URL: {endpoint!r}", hint="pass a base URL such as http://localhost:4318")
    return url if url.endswith("/v1/traces") else url + "/v1/traces"


def post(request: dict[str, Any], endpoint: str, timeout: float = 10.0) -> dict[str, Any]:
    """POST ``request`` to an OTLP/HTTP collector as JSON; returns the URL and how many spans it rejected."""
    url = traces_url(endpoint)
    body = json.dumps(request, ensure_ascii=False).encode("utf-8")
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            reply = resp.read()
    except urllib.error.HTTPError as e:
        with e:
            detail = " ".join(e.read()[:300].decode("utf-8", "replace").split())
        raise TraceExportError(f"the OTLP collector at {url} answered HTTP {e.code}: {detail or e.reason}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
        reason = getattr(e, "reason", None) or e
        raise TraceExportError(f"cannot reach the OTLP collector at {url}: {reason}") from None
    try:  # OTLP answers {"partialSuccess": {"rejectedSpans": n, "errorMessage": ...}} when it dropped some
        partial = json.loads(reply or b"{}").get("partialSuccess") or {}
        return {"endpoint": url, "rejected_spans": int(partial.get("rejectedSpans") or 0)}
    except (ValueError, AttributeError, TypeError):
        return {"endpoint": url, "rejected_spans": 0}


def export_file(
    path: str | Path,
    *,
    out: str | Path | None = None,
    endpoint: str | None = None,
    service_name: str = "sleuth",
    skip_corrupt: bool = False,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Convert a trace file; write it to ``out`` (atomically) and/or POST it to ``endpoint``.

    Returns the request and a summary (spans, traces, where it went)."""
    from sleuth.fsutil import atomic_write_text

    if endpoint is not None:
        traces_url(endpoint)  # a bad URL fails before anything is written
    got = _read(path, skip_corrupt)
    request = to_otlp(got.events, service_name)
    spans = request["resourceSpans"][0]["scopeSpans"][0]["spans"]
    summary: dict[str, Any] = {"spans": len(spans), "traces": len({s["traceId"] for s in spans}), "out": None}
    summary["skipped"] = [str(x) for x in got.skipped]
    if out is not None:
        atomic_write_text(out, dumps(request))
        summary["out"] = str(out)
    if endpoint is not None:
        summary.update(post(request, endpoint))
    return request, summary


def dumps(request: dict[str, Any]) -> str:
    return json.dumps(request, ensure_ascii=False, indent=1) + "\n"
