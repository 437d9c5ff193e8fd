"""Live OpenTelemetry export of a run with the real embedded model: the sira agent (one expansion call, one answer
call) over the sample corpus, sent as it runs to a local OTLP receiver built from the official protobuf messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("opentelemetry.sdk", reason="needs sleuth-search[otel]")

from sleuth.tracing import JSONLTracer
from sleuth.tracing.otel import OtelTracer, read_events
from tests.unit.otlp_receiver import OtlpReceiver

pytestmark = [pytest.mark.model, pytest.mark.slow]


def test_sira_run_with_the_local_model_exported_live(sample_corpus: Path, local_model, tmp_path: Path,
                                                     monkeypatch) -> None:
    from sleuth.agents import Agent

    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    with OtlpReceiver() as receiver:
        tracer = OtelTracer(JSONLTracer(tmp_path / "t.jsonl", capture_content=True), endpoint=receiver.url)
        with Agent.for_corpus(sample_corpus, model=local_model, agent="sira") as agent:
            result = agent.run("Who designed the Kestrel Bridge?", trace=tracer)
        tracer.close()
        spans = receiver.spans()
    assert tracer.status()["error"] is None and tracer.status()["sent_spans"] == len(spans)
    ids = {s.span_id: s for s in spans}
    calls = [s for s in spans if s.name == "chat local"]
    assert len(calls) == result.llm_calls >= 2
    for s in calls:
        a = s.attributes
        assert a["gen_ai.provider.name"] == "llama.cpp" and a["server.address"] == "127.0.0.1"
        assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
        assert a["sleuth.cost"] == "unmeasured" and json.loads(a["gen_ai.input.messages"])
        assert a["output.value"]  # the model's reply, in full
    expand = next(s for s in calls if s.attributes["sleuth.name"] == "sira_expand")
    assert ids[expand.parent_id].name == "retrieval sira"  # SIRA's own span, under the retrieval step
    (root,) = [s for s in spans if not s.parent_id]
    assert root.attributes["gen_ai.usage.input_tokens"] == sum(e.usage.prompt_tokens for e in read_events(
        tmp_path / "t.jsonl") if e.kind == "llm" and e.usage)
