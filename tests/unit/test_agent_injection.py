"""No hidden global state (issue #16): the components the default set-up shares across runs (the SIRA retriever
inside `search`, the reranker inside `rerank`) get the calling run's tracer per call, so their model calls land in
that run's trace and totals, also when two runs share one toolkit at the same time; and AgentConfig keeps nothing
outside its declared fields. Scripted model, real BM25 index, real SIRA retriever and listwise reranker."""

from __future__ import annotations

import dataclasses
import threading

from sleuth.agents import Agent
from sleuth.agents.defaults import default_config
from sleuth.corpus import Corpus
from sleuth.llm.fake import ScriptedModel, tool
from sleuth.tracing import MemoryTracer, Tracer

QUESTION = "Where was the designer of the Kestrel Bridge born?"
OKAFOR = "people/bram_okafor.md"
BRIDGE = "projects/kestrel_bridge.txt"


def test_search_and_rerank_model_calls_land_in_the_run_trace(sample_corpus):
    model = ScriptedModel([
        tool("search", query="Kestrel Bridge designer", method="sira"),
        {"phrases": ["Bram Okafor"]},  # the SIRA expansion, made inside the search tool
        tool("rerank", query="designer birthplace", doc_ids=[BRIDGE, OKAFOR]),
        "[2] > [1]",  # the listwise reranker's call, made inside the rerank tool
        tool("answer", answer="Saltmarsh", doc_ids=[OKAFOR]),
    ])
    config = default_config(Corpus(sample_corpus), model=model, rerank="listwise")
    with Agent(config, agent="react") as agent:
        tracer = MemoryTracer()
        result = agent.run(QUESTION, trace=tracer)
    assert result.answer == "Saltmarsh"
    llm = tracer.of_kind("llm")
    assert [e.name for e in llm] == ["agent", "sira_expand", "agent", "rerank.listwise", "agent"]
    assert {e.node for e in llm[1::2]} == {"run_tools"}  # stamped with the node whose tool made them
    assert result.llm_calls == 5 and result.usage.prompt_tokens == sum(e.usage.prompt_tokens for e in llm)
    assert tracer.of_kind("sira") and tracer.of_kind("rerank")


def test_concurrent_runs_sharing_one_toolkit_keep_their_own_traces(sample_corpus):
    """Two runs at once through one config (one shared SIRA retriever): each trace holds only its own calls."""

    class PerThreadModel(ScriptedModel):  # one script per run id, so the two runs do not share a script
        def __init__(self, scripts):
            super().__init__([])
            self.scripts = scripts
            self.lock = threading.Lock()

        def _next(self, messages, tools):
            with self.lock:
                text = " ".join(str(m.get("content")) for m in messages)
                key = "B" if ("Question: B" in text or "B Kestrel" in text) else "A"
                self.calls.append({"messages": messages, "tools": tools})
                return self.scripts[key].pop(0)

    barrier = threading.Barrier(2, timeout=30)

    def script(tag):
        return [tool("search", query=f"{tag} Kestrel", method="sira"), {"phrases": [f"phrase {tag}"]},
                tool("answer", answer=tag, doc_ids=[])]

    model = PerThreadModel({"A": script("A"), "B": script("B")})
    config = default_config(Corpus(sample_corpus), model=model, rerank=None)
    agent = Agent(config, agent="react")
    tracers = {"A": MemoryTracer("A"), "B": MemoryTracer("B")}
    results = {}

    def run(tag):
        barrier.wait()
        results[tag] = agent.run(tag, trace=tracers[tag])

    threads = [threading.Thread(target=run, args=(t,)) for t in "AB"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for tag, tracer in tracers.items():
        sira = tracer.of_kind("sira")
        assert len(sira) == 1 and sira[0].data["proposed"] == [f"phrase {tag}"], tag
        assert [e.name for e in tracer.of_kind("llm")] == ["agent", "sira_expand", "agent"]
        assert results[tag].llm_calls == 3 and results[tag].answer == tag


def test_config_holds_only_declared_fields(sample_corpus):
    model = ScriptedModel([tool("grep", pattern="Kestrel"), tool("answer", answer="x", doc_ids=[])])
    config = default_config(Corpus(sample_corpus), model=model, rerank=None)
    assert config.owns_model is False and "search" in config.toolkit
    Agent(config, agent="react").run(QUESTION)
    declared = {f.name for f in dataclasses.fields(config)}
    assert set(vars(config)) <= declared  # nothing written into config.__dict__ behind the dataclass
    assert config.react_schemas == config.tool_schemas()
    assert isinstance(config.tracer, Tracer)


def test_no_module_global_run_tracer():
    import sleuth.agents.runtrace as runtrace

    assert not hasattr(runtrace, "RUN_TRACER") and not hasattr(runtrace, "active")
