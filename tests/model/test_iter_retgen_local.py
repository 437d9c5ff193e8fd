"""Iter-RetGen in the paper's form with the real embedded model on the bundled sample corpus: three rounds of
retrieve -> generate (FlashRAG's prompt, 32 tokens), the answer is the third generation itself, and each retrieval
query is the question plus the previous generation."""

from __future__ import annotations

from pathlib import Path

import pytest

from sleuth.agents import Agent, AgentConfig
from sleuth.corpus import Corpus
from sleuth.retrieval.bm25 import BM25Retriever
from sleuth.tracing.tracer import MemoryTracer

pytestmark = [pytest.mark.model, pytest.mark.slow]

QUESTION = "Where was the designer of the Kestrel Bridge born?"


def test_iter_retgen_paper_form_answers_with_the_last_generation(sample_corpus: Path, local_model) -> None:
    corpus = Corpus(sample_corpus)
    config = AgentConfig(model=local_model, retrievers={"bm25": BM25Retriever.open(corpus)}, corpus=corpus)
    tracer = MemoryTracer()
    result = Agent(config, agent="iter-retgen").run(QUESTION, trace=tracer)
    llm = tracer.of_kind("llm")
    # T=3 generations and no other model call: no separate answer call
    assert [e.name for e in llm] == ["generate", "generate", "generate"] and result.llm_calls == 3
    assert all(e.usage is not None and 0 < e.usage.completion_tokens <= 32 for e in llm)  # FlashRAG's max_tokens
    generate_nodes = [e for e in tracer.of_kind("node") if e.name == "generate"]
    gens = generate_nodes[-1].data["generations"]
    assert len(gens) == 3
    # the answer is the third generation as the model wrote it (whitespace collapsed), not the first or second
    assert result.answer == gens[-1] == " ".join(llm[-1].preview.split())[: len(gens[-1])]
    assert result.answered_by == "model" and result.stop_reason == "answered" and result.doc_ids == []
    # generation-augmented retrieval: question, then question + previous generation
    queries = [e.args["query"] for e in tracer.of_kind("retrieval")]
    assert queries == [QUESTION, f"{QUESTION} {gens[0]}".strip(), f"{QUESTION} {gens[1]}".strip()]
    assert "saltmarsh" in result.answer.lower(), gens  # the two-hop answer (Okafor was born in Saltmarsh)
