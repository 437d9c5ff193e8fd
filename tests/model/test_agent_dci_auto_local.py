"""``--agent dci`` and ``--agent auto`` with the real embedded model on the bundled sample corpus.

dci: grep/read/ls only, no index written, and the answer found in the raw files (on "In which village was Bram
Okafor born?", whose answer is on the line after the one a grep for the name shows, the 0.5B model answered
"Norvand" in one run: that question is left to the evals). auto: a two-hop question (the
Kestrel Bridge -> its designer Bram Okafor -> born in Saltmarsh) answered through the plan, with every step's cost
in the result. Both fail when the model's answer is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from sleuth.agents import Agent, Budget
from sleuth.tracing import MemoryTracer

pytestmark = [pytest.mark.model, pytest.mark.slow]


def test_dci_answers_from_the_raw_files_without_an_index(local_model, sample_corpus: Path) -> None:
    tracer = MemoryTracer()
    with Agent.for_corpus(sample_corpus, model=local_model, agent="dci", budget=Budget(max_steps=5)) as agent:
        result = agent.run("Who designed the Kestrel Bridge?", trace=tracer)
    assert result.answer is not None and "okafor" in result.answer.lower(), result
    tools = {e.name for e in tracer.of_kind("tool")}
    assert tools <= {"grep", "read", "ls", "answer"} and "grep" in tools
    assert {"people/bram_okafor.md", "projects/kestrel_bridge.txt"} & set(result.docs_seen)
    assert not (sample_corpus / ".sleuth").exists()  # no index was opened or built
    assert [t["node"] for t in result.trail].count("manage_context") >= 1
    assert sum(t["tokens"] for t in result.trail) == result.usage.total_tokens > 0


def test_auto_answers_a_two_hop_question_through_its_plan(local_model, sample_corpus: Path) -> None:
    tracer = MemoryTracer()
    with Agent.for_corpus(sample_corpus, model=local_model, agent="auto", budget=Budget(max_steps=6)) as agent:
        result = agent.run("Where was the designer of the Kestrel Bridge born?", trace=tracer)
    assert result.answer is not None and "saltmarsh" in result.answer.lower(), result
    assert result.plan and result.plan[0] in ("sira", "iter-retgen", "explore")
    assert [e.name for e in tracer.of_kind("note")].count("plan") == 1
    assert result.trail[0]["node"] == "plan_question" and result.trail[-1]["node"] == "finish"
    assert sum(t["tokens"] for t in result.trail) == result.usage.total_tokens
    assert result.policies["sufficiency"] == "lexical"
    # every escalation names where it went and why
    assert all(e["from"] and "reason" in e for e in result.escalations)
