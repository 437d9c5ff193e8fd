"""The `rerank` agent tool over a real corpus folder, with the listwise reranker on the scripted model."""

from __future__ import annotations

import pytest

from sleuth.corpus import Corpus
from sleuth.errors import ToolArgumentError
from sleuth.llm.fake import ScriptedModel
from sleuth.rerank import get_reranker
from sleuth.tools.rerank import rerank_tool


@pytest.fixture()
def corpus(make_corpus):
    return Corpus(
        make_corpus(
            {
                "paris.txt": "Paris\n\nParis is the capital of France.",
                "tokyo.txt": "Tokyo\n\nTokyo is the capital of Japan.",
                "fruit/banana.txt": "Banana\n\nBananas grow on Musa plants.",
            }
        )
    )


def test_rerank_tool_reads_texts_and_returns_new_order(corpus):
    model = ScriptedModel(["[3] > [1] > [2]"])
    tool = rerank_tool(corpus, get_reranker("listwise", model))
    res = tool.run({"query": "capital of Japan", "doc_ids": ["paris.txt", "fruit/banana.txt", "tokyo.txt"], "k": 2})
    assert [d["doc_id"] for d in res.data] == ["tokyo.txt", "paris.txt"]
    assert res.text.splitlines()[1] == "1. tokyo.txt"
    prompt = "\n".join(m["content"] for m in model.calls[0]["messages"])  # RankGPT: one turn per passage
    assert "Tokyo is the capital of Japan." in prompt and "Bananas grow on Musa plants." in prompt
    assert tool.openai_schema()["function"]["parameters"]["required"] == ["query", "doc_ids"]


def test_rerank_tool_duplicates_and_bad_input(corpus):
    model = ScriptedModel(["[2] > [1]"])
    tool = rerank_tool(corpus, get_reranker("listwise", model))
    res = tool.run({"query": "q", "doc_ids": ["paris.txt", "tokyo.txt", "paris.txt"]})
    assert [d["doc_id"] for d in res.data] == ["tokyo.txt", "paris.txt"] and res.meta["duplicates"] == 1
    for bad in ({"query": " ", "doc_ids": ["paris.txt"]}, {"query": "q", "doc_ids": []}, {"query": "q"},
                {"query": "q", "doc_ids": ["x"] * 51}):
        with pytest.raises(ToolArgumentError):
            tool.run(bad)
    obs = tool.invoke({"query": "q", "doc_ids": ["paris.txt", "nope.txt"]})  # agents get an observation
    assert obs.is_error and "nope.txt" in obs.text
    obs = tool.invoke({"query": "q", "doc_ids": ["../etc/passwd"]})
    assert obs.is_error
