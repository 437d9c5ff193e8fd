"""sira, iter-retgen and the router end to end: scripted model, real BM25 index and real SIRA retriever."""

from __future__ import annotations

import pytest

from sleuth.agents import Agent, AgentConfig, Budget
from sleuth.corpus import Corpus
from sleuth.llm.fake import ScriptedModel, tool
from sleuth.retrieval.bm25 import BM25Retriever
from sleuth.retrieval.sira import SiraRetriever
from sleuth.tools import corpus_tools
from sleuth.tracing import MemoryTracer

QUESTION = "Where was the designer of the Kestrel Bridge born?"
OKAFOR = "people/bram_okafor.md"
BRIDGE = "projects/kestrel_bridge.txt"


@pytest.fixture()
def setup(sample_corpus):
    corpus = Corpus(sample_corpus)
    bm25 = BM25Retriever.open(corpus)

    def make(script, agent, **kw):
        model = ScriptedModel(script)
        retrievers = {"bm25": bm25, "sira": SiraRetriever(bm25, model)}
        config = AgentConfig(model=model, toolkit=corpus_tools(corpus), retrievers=retrievers, corpus=corpus, **kw)
        return Agent(config, agent=agent), model

    return make


def test_sira_one_search_then_answer(setup):
    agent, model = setup(
        [
            {"phrases": ["Bram Okafor", "cable-stayed bridge"]},  # the SIRA expansion call
            {"answer": "Saltmarsh", "doc_ids": [OKAFOR, "not/shown.md"]},
        ],
        "sira",
    )
    tracer = MemoryTracer()
    result = agent.run(QUESTION, trace=tracer)
    assert result.answer == "Saltmarsh" and result.strategy == "sira"
    assert result.doc_ids == [OKAFOR]  # only documents the model was shown
    assert result.llm_calls == 2 and result.tool_calls == 0
    sira = tracer.of_kind("sira")
    assert len(sira) == 1 and sira[0].node == "sira_search"
    # every proposed phrase is traced with its df decision (on 11 documents, df >= 1 is already "too common")
    assert sira[0].data["proposed"] == ["Bram Okafor", "cable-stayed bridge"]
    assert all("df" in d["reason"] for d in sira[0].data["rejected"])
    retrieval = tracer.of_kind("retrieval")[0]
    assert OKAFOR in [h["doc_id"] for h in retrieval.data["hits"]]
    # the answer prompt holds the retrieved passages with their doc ids
    answer_prompt = model.calls[-1]["messages"][-1]["content"]
    assert f"[{OKAFOR}]" in answer_prompt and "born in Saltmarsh" in answer_prompt
    # run usage = the sum of its LLM events, the SIRA expansion included
    llm = tracer.of_kind("llm")
    assert [e.name for e in llm] == ["sira_expand", "answer"]
    assert result.usage.prompt_tokens == sum(e.usage.prompt_tokens for e in llm)


def test_sira_answer_without_doc_ids_cites_nothing(setup):
    """No default citation: when the model cites nothing, nothing is cited (the top passages used to be)."""
    agent, _ = setup([{"phrases": []}, {"answer": "Saltmarsh", "doc_ids": []}], "sira")
    tracer = MemoryTracer()
    result = agent.run(QUESTION, trace=tracer)
    assert result.answer == "Saltmarsh" and result.doc_ids == [] and result.dropped_doc_ids == []
    note = next(e for e in tracer.of_kind("note") if e.name == "doc_ids")
    assert note.data == {"model_cited": [], "kept": [], "dropped_unseen": []}
    assert OKAFOR in result.docs_seen  # what it was shown is still there, apart from what it cited


def test_sira_ids_the_model_never_saw_are_dropped_and_noted(setup):
    agent, _ = setup([{"phrases": []}, {"answer": "Saltmarsh", "doc_ids": ["made/up.md", OKAFOR]}], "sira")
    tracer = MemoryTracer()
    result = agent.run(QUESTION, trace=tracer)
    assert result.doc_ids == [OKAFOR] and result.dropped_doc_ids == ["made/up.md"]
    assert tracer.of_kind("answer")[0].data["dropped_doc_ids"] == ["made/up.md"]


@pytest.mark.parametrize("choice", ["react", "sira", "iter-retgen"])
def test_router_picks_a_strategy_and_traces_why(setup, choice):
    follow = {
        "react": [tool("answer", answer="Saltmarsh", doc_ids=[OKAFOR])],
        "sira": [{"phrases": []}, {"answer": "Saltmarsh", "doc_ids": [OKAFOR]}],
        "iter-retgen": ["d1", "d2", "Saltmarsh"],  # the paper's form: the third generation is the answer
    }[choice]
    agent, model = setup([{"strategy": choice, "reason": "because"}, *follow], "router")
    tracer = MemoryTracer()
    result = agent.run(QUESTION, trace=tracer)
    assert result.agent == "router" and result.strategy == choice and result.route_reason == "because"
    assert result.answer == "Saltmarsh"
    route = [e for e in tracer.of_kind("note") if e.name == "route"][0]
    assert route.data == {"strategy": choice, "reason": "because"}
    assert "- sira:" in model.calls[0]["messages"][0]["content"]


def test_router_with_unparseable_output_uses_the_default(setup):
    agent, _ = setup(["no idea", "still no idea", tool("answer", answer="Saltmarsh")], "router")
    result = agent.run(QUESTION)
    assert result.strategy == "react" and "router output invalid" in result.route_reason
    assert result.answer == "Saltmarsh"


def test_router_only_offers_available_strategies(sample_corpus):
    corpus = Corpus(sample_corpus)
    model = ScriptedModel([{"strategy": "sira", "reason": "x"}, {"strategy": "react", "reason": "only one"},
                           tool("answer", answer="a")])
    agent = Agent(AgentConfig(model=model, toolkit=corpus_tools(corpus)), agent="router")
    result = agent.run(QUESTION)  # "sira" is not in the schema's enum: rejected, retried
    assert result.strategy == "react"
    assert "- sira:" not in model.calls[0]["messages"][0]["content"]


def test_for_corpus_default_tools_and_retrievers(sample_corpus):
    """The default set-up: grep/read/ls, search (bm25, sira), df, rerank (listwise for a non-local model), answer."""
    model = ScriptedModel([
        tool("search", query="Kestrel Bridge designer"),
        tool("df", terms=["Okafor", "bridge"]),
        tool("answer", answer="Saltmarsh", doc_ids=[OKAFOR]),
    ])
    with Agent.for_corpus(sample_corpus, model=model, agent="react") as agent:
        tracer = MemoryTracer()
        result = agent.run(QUESTION, trace=tracer)
    shown = {t["function"]["name"]: set(t["function"]["parameters"]["properties"]) for t in model.calls[0]["tools"]}
    assert list(shown) == ["grep", "read", "ls", "search", "df", "rerank", "answer"]
    assert shown["grep"] == {"pattern", "ignore_case"} and shown["search"] == {"query", "method"}
    obs = [m["content"] for m in model.calls[-1]["messages"] if m["role"] == "tool"]
    assert BRIDGE in obs[0] and "(method bm25)" in obs[0]
    assert "'okafor': " in obs[1].lower()
    assert result.answer == "Saltmarsh" and BRIDGE in result.docs_seen


def test_default_rerank_auto_depends_on_the_model(sample_corpus):
    """``rerank="auto"``: no rerank tool for the embedded local model (LLM rerankers hurt with it), listwise for
    any other model; an explicit name always wins."""
    from sleuth.agents.defaults import default_toolkit, resolve_rerank

    class LocalLike(ScriptedModel):
        is_local = True

    local, remote = LocalLike([]), ScriptedModel([])
    assert resolve_rerank("auto", local) is None and resolve_rerank("auto", None) is None
    assert resolve_rerank("auto", remote) == "listwise" and resolve_rerank("first", local) == "first"
    corpus = Corpus(sample_corpus)
    assert "rerank" not in default_toolkit(corpus, {}, local).names()
    assert "rerank" in default_toolkit(corpus, {}, remote)
    assert "rerank" in default_toolkit(corpus, {}, local, rerank="first")
