"""The tools auto's explore step adds: an Iter-RetGen round (real BM25, scripted model) and a rerank tool with
several rerankers chosen by ``method`` (listwise on the scripted model); and auto's default toolkit."""

from __future__ import annotations

import pytest

from sleuth.agents.defaults import default_config
from sleuth.agents.round_tool import iter_retgen_tool
from sleuth.corpus import Corpus
from sleuth.errors import ToolArgumentError
from sleuth.llm.fake import ScriptedModel
from sleuth.rerank import get_reranker
from sleuth.retrieval.bm25 import BM25Retriever
from sleuth.tools.rerank import rerank_tool
from sleuth.tracing import MemoryTracer

OKAFOR = "people/bram_okafor.md"


def test_an_iter_retgen_round_searches_with_the_draft_and_drafts_again(sample_corpus):
    model = ScriptedModel(["Bram Okafor was born in Saltmarsh."])
    tracer = MemoryTracer()
    tool = iter_retgen_tool(BM25Retriever.open(Corpus(sample_corpus)), model, k=3, tracer=tracer)
    res = tool.run({"question": "Where was the bridge designer born?", "draft": "Bram Okafor designed it"})
    assert res.data["query"] == "Where was the bridge designer born? Bram Okafor designed it"
    assert OKAFOR in [h["doc_id"] for h in res.data["hits"]] and res.data["draft"].endswith("in Saltmarsh.")
    assert res.text.splitlines()[-1] == "New draft: Bram Okafor was born in Saltmarsh."
    prompt = model.calls[0]["messages"][-1]["content"]
    assert f"[{OKAFOR}]" in prompt and "Question: Where was the bridge designer born?" in prompt
    assert [e.name for e in tracer.of_kind("llm")] == ["generate"]
    with pytest.raises(ToolArgumentError):
        tool.run({"question": "  "})


def test_rerank_tool_with_several_methods(make_corpus):
    corpus = Corpus(make_corpus({"a.txt": "apples", "b.txt": "bananas", "c.txt": "cherries"}))
    model = ScriptedModel(["[3] > [2] > [1]", "[2] > [1] > [3]"])
    tool = rerank_tool(corpus, {"listwise": get_reranker("listwise", model), "rankgpt": get_reranker("rankgpt", model)})
    schema = tool.openai_schema()["function"]
    assert "method" in schema["parameters"]["properties"] and "Methods: listwise, rankgpt." in schema["description"]
    ids = ["a.txt", "b.txt", "c.txt"]
    assert [d["doc_id"] for d in tool.run({"query": "q", "doc_ids": ids}).data] == ["c.txt", "b.txt", "a.txt"]
    assert next(d["doc_id"] for d in tool.run({"query": "q", "doc_ids": ids, "method": "rankgpt"}).data) == "b.txt"
    with pytest.raises(ToolArgumentError, match="unknown method 'icr'"):
        tool.run({"query": "q", "doc_ids": ids, "method": "icr"})


def test_auto_default_toolkit(sample_corpus):
    config = default_config(sample_corpus, model=ScriptedModel(), agent="auto")
    names = config.toolkit.names()
    assert names[:5] == ["grep", "read", "ls", "search", "df"] and "iter_retgen" in names and names[-1] == "answer"
    rerank = next(s for s in config.react_schemas if s["function"]["name"] == "rerank")
    # a model that is not the embedded one and gives logprobs: listwise and FIRST, by method
    assert rerank["function"]["description"].endswith("Methods: listwise, first.")
    assert config.search_methods[:2] == ["bm25", "sira"]
    react = default_config(sample_corpus, model=ScriptedModel(), agent="react")
    assert "iter_retgen" not in react.toolkit.names()  # the named strategies keep their toolkit
