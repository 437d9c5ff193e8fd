"""OpenTelemetry export through the SDK (issue #18): a real (scripted-model) run over the sample corpus with the real
tools, BM25 index, SIRA retriever and listwise reranker, exported from its trace file and live, to a local OTLP/HTTP
receiver that decodes each request with the official protobuf messages (tests/unit/otlp_receiver.py)."""

from __future__ import annotations

import json
import sys
import threading
import time

import pytest
from typer.testing import CliRunner

pytest.importorskip("opentelemetry.sdk", reason="needs sleuth-search[otel]")

from sleuth.errors import ConfigError, MissingExtraError, TraceExportError, TraceFormatError
from sleuth.records import TraceEvent, Usage
from sleuth.tracing import JSONLTracer, MemoryTracer
from sleuth.tracing.otel import OtelTracer, export_file, finished_spans, otlp_json, read_events
from sleuth.tracing.spans import to_spans
from tests.unit.otlp_receiver import OtlpReceiver, closed_port_url, spans_of

QUESTION = "Where was the designer of the Kestrel Bridge born?"
OKAFOR, BRIDGE = "people/bram_okafor.md", "projects/kestrel_bridge.txt"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    import os

    for var in [v for v in os.environ if v.startswith("OTEL_")] + ["http_proxy", "HTTP_PROXY", "all_proxy",
                                                                   "ALL_PROXY", "https_proxy", "HTTPS_PROXY"]:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "2")  # a dead collector costs 2 s, not the default 10
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")  # live batches leave every 50 ms


@pytest.fixture()
def receiver():
    with OtlpReceiver() as r:
        yield r


def script(wait=None):
    """search (SIRA: one expansion call), an unknown tool, rerank (listwise: one call), answer."""
    from sleuth.llm.fake import tool

    def answer(messages, tools):
        if wait is not None:
            wait()
        return tool("answer", answer="Saltmarsh", doc_ids=[OKAFOR])

    return [
        tool("search", query="Kestrel Bridge designer", method="sira"),
        {"phrases": ["Bram Okafor", "cable-stayed bridge"]},
        tool("nope"),
        tool("rerank", query="designer of the Kestrel Bridge", doc_ids=[BRIDGE, OKAFOR]),
        "[2] > [1]",
        answer,
    ]


@pytest.fixture()
def run(sample_corpus, tmp_path):
    """``run(tracer=None, content=True, wait=None)`` -> (AgentResult, trace path): the scripted react run, written to
    a JSONL trace (``tracer`` wraps it, for live export)."""
    from sleuth.agents import Agent
    from sleuth.llm.fake import ScriptedModel

    def make(wrap=None, content=True, wait=None, name="run.jsonl"):
        path = tmp_path / name
        inner = JSONLTracer(path, run_id="run-1", capture_content=content)
        tracer = wrap(inner) if wrap else inner
        with Agent.for_corpus(sample_corpus, model=ScriptedModel(script(wait)), agent="react") as agent:
            result = agent.run(QUESTION, trace=tracer, run_id="run-1")
        tracer.close()
        return result, path

    return make


def by_name(spans, prefix):
    return [s for s in spans if s.name.startswith(prefix)]


def chain(spans, span):
    """The names from ``span`` up to the root."""
    ids = {s.span_id: s for s in spans}
    out = [span.name]
    while span.parent_id:
        span = ids[span.parent_id]
        out.append(span.name)
    return out


def test_spans_nested_as_the_run_ran_with_genai_attributes(run, receiver):
    result, path = run()
    assert result.answer == "Saltmarsh" and result.llm_calls == 6 and result.tool_calls == 4
    _, summary = export_file(path, endpoint=receiver.url)
    (req,) = receiver.received
    assert req.path == "/v1/traces" and req.content_type == "application/x-protobuf"
    spans = spans_of(req.message)
    assert summary["spans"] == len(spans) and summary["protocol"] == "http/protobuf"
    assert len({s.span_id for s in spans}) == len(spans) and len({s.trace_id for s in spans}) == 1
    (root,) = [s for s in spans if not s.parent_id]
    assert root.name == "invoke_agent react" and root.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert root.attributes["input.value"] == QUESTION and root.attributes["output.value"] == "Saltmarsh"
    assert root.attributes["openinference.span.kind"] == "AGENT"
    assert root.attributes["gen_ai.conversation.id"] == "run-1"
    for s in spans:  # every child lies inside its parent
        parent = next((p for p in spans if p.span_id == s.parent_id), None)
        assert parent is not None or s is root
        if parent is not None:
            assert parent.start <= s.start <= s.end <= parent.end, (s.name, parent.name)

    # a model call under its SIRA span, under the tool call, under the agent step (and the same for rerank)
    (sira_call,) = [s for s in by_name(spans, "chat") if s.attributes["sleuth.name"] == "sira_expand"]
    assert chain(spans, sira_call) == [
        "chat scripted", "retrieval sira", "execute_tool search", "node run_tools", "invoke_agent react"]
    (rerank_call,) = [s for s in by_name(spans, "chat") if s.attributes["sleuth.name"] == "rerank.listwise"]
    assert chain(spans, rerank_call) == [
        "chat scripted", "rerank listwise", "execute_tool rerank", "node run_tools", "invoke_agent react"]
    agent_calls = [s for s in by_name(spans, "chat") if s.attributes["sleuth.name"] == "agent"]
    assert len(agent_calls) == 4 and all(chain(spans, s)[1] == "node call_model" for s in agent_calls)
    sira = by_name(spans, "retrieval sira")[0].attributes
    assert sira["gen_ai.operation.name"] == "retrieval" and sira["openinference.span.kind"] == "RETRIEVER"
    assert sira["retrieval.documents.0.document.id"] and sira["gen_ai.retrieval.query.text"]
    rr = by_name(spans, "rerank listwise")[0].attributes
    assert rr["openinference.span.kind"] == "RERANKER" and rr["reranker.output_documents.0.document.id"] == OKAFOR

    # GenAI conventions on every model call: the events' tokens, provider, model, finish reasons
    events = [e for e in read_events(path) if e.kind == "llm"]
    for e in events:
        (s,) = [x for x in spans if x.attributes.get("sleuth.step") == e.step]
        a = s.attributes
        assert s.kind == 3 and a["gen_ai.operation.name"] == "chat" and a["gen_ai.provider.name"] == "sleuth.scripted"
        assert a["gen_ai.request.model"] == "scripted" and a["gen_ai.response.finish_reasons"]
        assert a["gen_ai.usage.input_tokens"] == a["llm.token_count.prompt"] == e.usage.prompt_tokens > 0
        assert a["gen_ai.usage.output_tokens"] == a["llm.token_count.completion"] == e.usage.completion_tokens
        assert a["sleuth.cost"] == "unmeasured" and "llm.cost.total" not in a  # unpriced: never a 0
    # tool calls carry the model's call ids, and they match the calls the model asked for
    tools = by_name(spans, "execute_tool")
    assert [t.attributes["gen_ai.tool.name"] for t in tools] == ["search", "nope", "rerank", "answer"]
    asked = [json.loads(s.attributes["gen_ai.output.messages"])[0]["parts"][0]["id"] for s in agent_calls]
    assert [t.attributes["gen_ai.tool.call.id"] for t in tools] == asked == [
        e.data["call_id"] for e in read_events(path) if e.kind == "tool"]
    (bad,) = [t for t in tools if t.status_code == 2]
    assert bad.attributes["gen_ai.tool.name"] == "nope" and bad.attributes["error.type"] == "ToolArgumentError"
    assert "unknown tool 'nope'" in bad.status_message
    # every gen_ai.* attribute name sleuth writes is in the official registry
    from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as registry

    official = {v for k, v in vars(registry).items() if k.startswith("GEN_AI_") and isinstance(v, str)}
    written = {k for s in spans for k in s.attributes if k.startswith("gen_ai.")}
    assert written and written <= official, written - official


def test_prompts_and_completions_are_opt_in_content(run, monkeypatch):
    assert not MemoryTracer().capture_content
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")  # the GenAI opt-in variable
    assert MemoryTracer().capture_content and not MemoryTracer(capture_content=False).capture_content
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT")
    _, with_content = run(content=True)
    spans = to_spans(read_events(with_content))
    call = next(s for s in spans if s.attributes.get("sleuth.name") == "sira_expand")
    a = call.attributes
    messages = json.loads(a["gen_ai.input.messages"])
    assert messages[-1]["role"] == "user" and "Kestrel Bridge designer" in messages[-1]["parts"][0]["content"]
    last = len(messages) - 1  # the SIRA reference prompt is one user message
    assert a[f"llm.input_messages.{last}.message.role"] == "user" and "Bram Okafor" in a["output.value"]
    assert json.loads(a["input.value"])[-1]["content"] == messages[-1]["parts"][0]["content"]
    grep_like = next(s for s in spans if s.name == "execute_tool search").attributes
    assert OKAFOR in grep_like["gen_ai.tool.call.result"] and grep_like["output.value"] == grep_like[
        "gen_ai.tool.call.result"]
    content_keys = ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.tool.call.result",
                    "gen_ai.tool.call.arguments", "llm.input_messages.", "llm.output_messages.")

    def has_content(spans):
        return any(k.startswith(content_keys) for s in spans for k in s.attributes) or any(
            s.attributes.get("output.value") for s in spans
            if s.attributes["openinference.span.kind"] in ("LLM", "TOOL"))

    assert has_content(spans)
    assert not has_content(to_spans(read_events(with_content), content=False))  # --no-content at export
    _, without = run(content=False, name="plain.jsonl")
    plain = read_events(without)
    assert not any("content" in e.data for e in plain)
    assert not has_content(to_spans(plain))
    root = next(s for s in to_spans(plain) if s.parent_id is None)
    assert root.attributes["input.value"] == QUESTION  # the question and answer are in every trace


def test_protobuf_and_json_headers_and_env(run, receiver, monkeypatch, app):
    _, path = run()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-from-env=1,authorization=Bearer%20env")
    export_file(path, endpoint=receiver.url + "/", headers={"x-api-key": "k1", "Authorization": "Bearer flag"})
    export_file(path, endpoint=receiver.url, protocol="http/json")
    proto, as_json = receiver.received
    assert proto.content_type == "application/x-protobuf" and as_json.content_type == "application/json"
    assert proto.headers["x-api-key"] == "k1" and proto.headers["x-from-env"] == "1"
    assert proto.headers["authorization"] == "Bearer flag"  # the flag wins over the environment
    assert as_json.headers["authorization"] == "Bearer env"
    a, b = spans_of(proto.message), spans_of(as_json.message)
    assert [(s.span_id, s.parent_id, s.name, s.attributes, s.events, s.start, s.end) for s in a] == [
        (s.span_id, s.parent_id, s.name, s.attributes, s.events, s.start, s.end) for s in b]

    # the standard variables: endpoint (base and per-signal), protocol, service name and resource attributes
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "my-agent")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test,openinference.project.name=sleuth")
    r = CliRunner().invoke(app, ["trace", "otel", str(path), "--send", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["endpoint"] == receiver.url + "/v1/traces"
    last = receiver.received[-1]
    assert last.content_type == "application/json" and last.path == "/v1/traces"
    res = spans_of(last.message)[0].resource
    assert res["service.name"] == "my-agent" and res["deployment.environment"] == "test"
    assert res["openinference.project.name"] == "sleuth" and res["service.version"]
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.url + "/custom/traces")
    r = CliRunner().invoke(app, ["trace", "otel", str(path), "--send", "--service-name", "x", "-H", "k=v"])
    assert r.exit_code == 0 and "sent" in r.output and "(http/json)" in r.output
    assert receiver.received[-1].path == "/custom/traces" and receiver.received[-1].headers["k"] == "v"
    assert spans_of(receiver.received[-1].message)[0].resource["service.name"] == "x"


def test_live_export_during_the_run_equals_the_file_export(run, receiver):
    sent_before_the_end = []

    def wait():  # the last model call waits for the spans of the steps before it to reach the collector
        sent_before_the_end.append(receiver.got_one.wait(10))

    live: list[OtelTracer] = []

    def wrap(inner):
        live.append(OtelTracer(inner, endpoint=receiver.url))
        return live[0]

    result, path = run(wrap=wrap, wait=wait)
    assert result.answer == "Saltmarsh" and result.trace_path == str(path)
    assert sent_before_the_end == [True]
    status = live[0].status()
    assert status["error"] is None and status["sent_spans"] == len(receiver.spans()) and status["dropped_spans"] == 0
    got = {s.span_id: s for s in receiver.spans()}
    expected = {s.context.span_id.to_bytes(8, "big").hex(): s for s in finished_spans(read_events(path))}
    assert set(got) == set(expected)
    for sid, s in got.items():
        e = expected[sid]
        assert s.name == e.name and s.start == e.start_time and s.end == e.end_time
        assert s.attributes == {k: list(v) if isinstance(v, tuple) else v for k, v in e.attributes.items()}, s.name


def test_a_collector_that_is_down_does_not_stop_the_run(run, app, sample_corpus):
    failures = []
    live: list[OtelTracer] = []

    def wrap(inner):
        live.append(OtelTracer(inner, endpoint=closed_port_url(), on_failure=failures.append))
        return live[0]

    t0 = time.perf_counter()
    result, path = run(wrap=wrap)
    assert time.perf_counter() - t0 < 30
    assert result.answer == "Saltmarsh" and len(read_events(path)) > 20  # the run and its trace are whole
    assert len(failures) == 1 and "cannot connect" in failures[0] and "Connection refused" in failures[0]
    status = live[0].status()
    assert status["sent_spans"] == 0 and status["dropped_spans"] > 0 and status["error"] == failures[0]

    # the CLI says so once, and the command still succeeds (search needs no model)
    r = CliRunner().invoke(app, ["search", "Kestrel Bridge designer", "-c", str(sample_corpus), "--index",
                                 "--otel-endpoint", closed_port_url(), "--k", "3"])
    assert r.exit_code == 0, r.output
    assert r.stderr.count("warning: OpenTelemetry export failed") == 1 and BRIDGE in r.stdout
    # sending a trace file to it is an error (exit 2) naming the collector
    r = CliRunner().invoke(app, ["trace", "otel", str(path), "--endpoint", closed_port_url(), "--json"])
    assert r.exit_code == 2 and json.loads(r.stdout)["error"] == "TraceExportError"
    with OtlpReceiver(status=415) as refusing, pytest.raises(TraceExportError, match=r"spans: HTTP 415"):
        export_file(path, endpoint=refusing.url)


def test_search_and_eval_export_live(app, sample_corpus, receiver, tmp_path, make_corpus):
    r = CliRunner().invoke(app, ["search", "Kestrel Bridge designer", "-c", str(sample_corpus), "--index",
                                 "--otel-endpoint", receiver.url, "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    spans = receiver.spans()
    assert out["otel"]["sent_spans"] == len(spans) == 2 and out["otel"]["error"] is None
    retrieval, root = spans
    assert root.name == "search bm25" and retrieval.parent_id == root.span_id
    assert root.attributes["input.value"] == "Kestrel Bridge designer"
    assert retrieval.attributes["retrieval.documents.0.document.id"] == out["hits"][0]["doc_id"]

    # eval: one trace per question, sent as each question finishes (SIRA through the real litellm client, against
    # a local OpenAI-compatible server)
    from tests.unit.llm_fake_server import FakeOpenAIServer, completion

    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    docs = {"d1": "The Kestrel Bridge was designed by Bram Okafor.", "d2": "Saltmarsh is a village on the coast."}
    (beir / "corpus.jsonl").write_text("".join(json.dumps({"_id": k, "title": "", "text": v}) + "\n"
                                               for k, v in docs.items()), encoding="utf-8")
    (beir / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "who designed the bridge"}) + "\n"
                                        + json.dumps({"_id": "q2", "text": "village on the coast"}) + "\n")
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\n")
    before = len(receiver.spans())
    with FakeOpenAIServer([(200, completion('{"phrases": ["Okafor"]}'))]) as srv:
        r = CliRunner().invoke(app, ["eval", "beir", "--data", str(beir), "--method", "sira", "--model",
                                     "openai/fake-model", "--api-base", srv.url, "--out", str(tmp_path / "ev"),
                                     "--otel-endpoint", receiver.url, "--json", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["otel"]["error"] is None
    spans = receiver.spans()[before:]
    roots = [s for s in spans if not s.parent_id]
    assert sorted(s.name for s in roots) == ["eval q1", "eval q2"] and len({s.trace_id for s in roots}) == 2
    calls = [s for s in spans if s.name.startswith("chat")]
    assert len(calls) == 2 and all(s.attributes["gen_ai.provider.name"] == "openai" for s in calls)
    assert all(chain(spans, s)[1:] == ["retrieval sira", s_root] for s, s_root in
               ((c, next(r.name for r in roots if r.trace_id == c.trace_id)) for c in calls))


def test_reexport_is_byte_identical_and_old_traces_nest_by_node(run, tmp_path, app):
    _, path = run()
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    export_file(path, out=a)
    r = CliRunner().invoke(app, ["trace", "otel", str(path), "--out", str(b)])
    assert r.exit_code == 0 and "wrote" in r.output
    assert a.read_bytes() == b.read_bytes()
    request = json.loads(a.read_text())
    r = CliRunner().invoke(app, ["trace", "otel", str(path)])  # neither --out nor --endpoint: printed
    assert json.loads(r.stdout) == request
    # the file parses with the official messages (OTLP/JSON -> ExportTraceServiceRequest)
    from tests.unit.otlp_receiver import decode

    decoded = spans_of(decode(a.read_bytes(), "application/json"))
    assert len(decoded) == len(request["resourceSpans"][0]["scopeSpans"][0]["spans"])

    # a trace written before events carried span ids: model and tool calls nest under their node
    old = tmp_path / "old.jsonl"
    old.write_text("".join(
        e.model_copy(update={"span_id": "", "parent_id": ""}).model_dump_json() + "\n" for e in read_events(path)
    ))
    spans = to_spans(read_events(old))
    ids = {s.span_id: s for s in spans}
    for s in spans:
        if s.name.startswith(("chat", "execute_tool")):
            assert ids[s.parent_id].name.startswith("node "), s.name
        elif s.name.startswith(("retrieval", "rerank")):  # no node of their own: under their node too
            assert ids[s.parent_id].name == "node run_tools"


def test_unfinished_steps_costs_and_hand_built_events():
    t = 1_700_000_000.0
    node_span = "ab" * 8
    events = [
        TraceEvent(run_id="r", step=1, ts=t, kind="run", name="start", args={"question": "q", "agent": "sira"}),
        TraceEvent(run_id="r", step=2, ts=t + 2.0, kind="llm", name="agent", node="plan", parent_id=node_span,
                   args={"model": "openai/gpt-4o-mini", "server": "http://10.0.0.5:8000/v1", "temperature": 0.0},
                   usage=Usage.one_call(10, 3, 0.25, "provider"), latency_s=1.5,
                   data={"finish_reason": "stop", "response_model": "gpt-4o-mini-2024", "response_id": "cmpl-1"}),
        TraceEvent(run_id="r", step=3, ts=t + 3.0, kind="llm", name="x", usage=Usage.one_call(5, 1, None, "provider"),
                   latency_s=0.5, error="ModelConnectionError: gone", args={"model": "local"}),
        TraceEvent(run_id="r", step=4, ts=t + 3.5, kind="note", name="budget", node="plan", parent_id=node_span),
    ]  # the run was killed inside node "plan": its end was never written
    spans = {s.name: s for s in to_spans(events)}
    root, llm, failed = spans["invoke_agent sira"], spans["chat openai/gpt-4o-mini"], spans["chat local"]
    unfinished = spans["unfinished plan"]
    assert unfinished.span_id == node_span and unfinished.parent_id == root.span_id and unfinished.error
    assert llm.parent_id == node_span and [e.name for e in unfinished.events] == ["note budget"]
    assert llm.start == t + 0.5 and llm.end == t + 2.0 and root.start == t and root.end == t + 3.5
    a = llm.attributes
    assert a["gen_ai.provider.name"] == "openai" and a["gen_ai.response.model"] == "gpt-4o-mini-2024"
    assert a["gen_ai.response.id"] == "cmpl-1" and a["server.address"] == "10.0.0.5" and a["server.port"] == 8000
    assert a["sleuth.cost"] == 0.25 and a["llm.cost.total"] == 0.25 and a["gen_ai.request.temperature"] == 0.0
    f = failed.attributes
    assert f["gen_ai.provider.name"] == "llama.cpp" and f["sleuth.cost"] == "unmeasured" and "llm.cost.total" not in f
    assert failed.error == "ModelConnectionError: gone" and f["error.type"] == "ModelConnectionError"
    assert root.attributes["sleuth.cost"] == 0.25 and root.attributes["sleuth.unpriced_calls"] == 1
    # through the SDK: the same ids, the error status, numbers as numbers
    request = otlp_json(finished_spans(events))
    sdk = {s["name"]: s for s in request["resourceSpans"][0]["scopeSpans"][0]["spans"]}
    assert sdk["unfinished plan"]["spanId"] == node_span and sdk["chat local"]["status"]["code"] == 2
    cost = next(x for x in sdk["chat openai/gpt-4o-mini"]["attributes"] if x["key"] == "sleuth.cost")
    assert cost["value"] == {"doubleValue": 0.25}


def test_real_litellm_client_records_provider_and_response(receiver):
    from sleuth.llm.client import LLM
    from tests.unit.llm_fake_server import FakeOpenAIServer, completion

    with FakeOpenAIServer([(200, completion("Saltmarsh"))]) as srv:
        tracer = MemoryTracer("real-client", capture_content=True)
        llm = LLM("openai/sleuth-test-model", api_base=srv.url, api_key="sk-test")
        llm.chat([{"role": "user", "content": "Where?"}], tracer=tracer, max_tokens=20)
    (s,) = [x for x in to_spans(tracer.events) if x.kind == "client"]
    a = s.attributes
    assert a["gen_ai.provider.name"] == "openai" and a["gen_ai.request.model"] == "openai/sleuth-test-model"
    assert a["gen_ai.response.id"] == "chatcmpl-test" and a["gen_ai.request.max_tokens"] == 20
    assert a["gen_ai.usage.input_tokens"] == 11 and a["gen_ai.usage.output_tokens"] == 3
    assert a["server.address"] == "127.0.0.1" and a["output.value"] == "Saltmarsh"
    assert json.loads(a["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "Where?"}]}]


def test_bad_input(run, tmp_path, app, monkeypatch):
    _, path = run(content=False)
    with pytest.raises(ConfigError, match="'grpc' is not supported"):
        export_file(path, endpoint="http://localhost:4317", protocol="grpc")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    r = CliRunner().invoke(app, ["trace", "otel", str(path), "--send", "--json"])
    assert r.exit_code == 2 and json.loads(r.stdout)["error"] == "ConfigError"
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_PROTOCOL")
    r = CliRunner().invoke(app, ["trace", "otel", str(path), "--endpoint", "localhost:4318", "--json"])
    assert r.exit_code == 2 and "not an http(s) URL" in json.loads(r.stdout)["message"]
    r = CliRunner().invoke(app, ["trace", "otel", str(path), "--endpoint", "http://x", "-H", "novalue"])
    assert r.exit_code == 2 and "KEY=VALUE" in r.output
    with pytest.raises(ConfigError, match="no trace file"):
        read_events(tmp_path / "missing.jsonl")
    good = TraceEvent(kind="llm", name="agent", run_id="x", latency_s=0.1).model_dump_json()
    bad = tmp_path / "bad.jsonl"
    bad.write_text(f'{good}\n{good}\n{{"kind": "party"}}\n', encoding="utf-8")
    with pytest.raises(TraceFormatError, match=r"line 3: not a sleuth trace event \(kind: Input should be"):
        read_events(bad)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(TraceFormatError, match="holds no sleuth trace events"):
        read_events(empty)
    # without the extra: a typed error with the install hint, before anything is sent or written
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    with pytest.raises(MissingExtraError) as info:
        export_file(path, endpoint="http://localhost:4318")
    assert info.value.hint == "pip install 'sleuth-search[otel]'"


def test_events_from_threads_keep_their_spans(receiver):
    """Concurrent tool calls (threads) emitting into one live tracer: every span arrives once, none is lost."""
    tracer = OtelTracer(MemoryTracer("threads"), endpoint=receiver.url)
    from sleuth.tools.base import tool_span

    def call(i):
        span = tool_span(tracer)
        span.emit(TraceEvent(kind="llm", name=f"inner{i}", latency_s=0.001, args={"model": "m"}))
        span.emit(span.own(TraceEvent(kind="tool", name=f"t{i}", latency_s=0.002)))

    threads = [threading.Thread(target=call, args=(i,)) for i in range(20)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    tracer.close()
    spans = receiver.spans()
    assert len(spans) == 41 and len({s.span_id for s in spans}) == 41
    tools = {s.span_id: s.name for s in spans if s.name.startswith("execute_tool")}
    inner = [s for s in spans if s.name.startswith("chat")]
    assert len(tools) == 20 and all(s.parent_id in tools for s in inner)


def test_ask_cli_exports_live_with_content(app, sample_corpus, receiver, tmp_path, monkeypatch):
    """`sleuth ask --otel-endpoint --trace-content` with the real litellm client against a local OpenAI-compatible
    server (one model call: the answer tool)."""
    from tests.unit.llm_fake_server import FakeOpenAIServer, completion

    monkeypatch.setenv("SLEUTH_HOME", str(tmp_path / "home"))
    call = {"id": "call_a1", "type": "function",
            "function": {"name": "answer", "arguments": json.dumps({"answer": "Saltmarsh", "doc_ids": [OKAFOR]})}}
    trace = tmp_path / "ask.jsonl"
    with FakeOpenAIServer([(200, completion("", tool_calls=[call]))]) as srv:
        r = CliRunner().invoke(app, ["ask", QUESTION, "-c", str(sample_corpus), "--agent", "react", "--model",
                                     "openai/fake-model", "--api-base", srv.url, "--trace", str(trace),
                                     "--otel-endpoint", receiver.url, "--trace-content", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["answer"] == "Saltmarsh" and out["trace"] == str(trace)
    spans = receiver.spans()
    assert out["otel"]["sent_spans"] == len(spans) > 3 and out["otel"]["error"] is None
    (chat,) = by_name(spans, "chat")
    assert chat.attributes["gen_ai.provider.name"] == "openai" and chat.attributes["gen_ai.response.id"]
    assert json.loads(chat.attributes["gen_ai.output.messages"])[0]["parts"][0]["id"] == "call_a1"
    (answer,) = by_name(spans, "execute_tool answer")
    assert answer.attributes["gen_ai.tool.call.id"] == "call_a1" and answer.attributes["output.value"] == (
        "Answer recorded.") and json.loads(answer.attributes["input.value"])["answer"] == "Saltmarsh"
    assert any("content" in e.data for e in read_events(trace))  # the trace file holds the content too
