"""The BrowseComp judge with the real embedded model (Qwen2.5-Coder-0.5B-Instruct): the verdict comes back in
shape (schema-constrained), with its reason and extracted answer, and its usage is counted. A 0.5B model is a weak
judge; the test checks the plumbing on a clear-cut pair, not the model's judgement in general."""

from __future__ import annotations

import pytest

from sleuth.evals.judge import judge_answer
from sleuth.tracing.tracer import MemoryTracer

pytestmark = pytest.mark.model


def test_local_judge_returns_a_parsed_verdict(local_model) -> None:
    tracer = MemoryTracer()
    r = judge_answer(local_model, "What is the capital of France?", "The capital of France is Paris.", "Paris", tracer=tracer)
    assert r.status == "judged", r.error
    assert isinstance(r.correct, bool) and r.reason and r.extracted_answer
    assert r.usage.calls >= 1 and r.usage.prompt_tokens > 100
    assert tracer.of_kind("llm")  # the judge's calls reach the caller's tracer
