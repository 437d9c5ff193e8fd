"""A corpus with no index: nothing is built unless asked, ``search`` falls back to a grep ranking (real ripgrep)
and the trace says so; ``sleuth ask --json`` reports the steps that ran, their cost, the plan and the policies."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from sleuth.agents import Agent
from sleuth.agents.defaults import default_config
from sleuth.agents.fallback import GrepRetriever, query_words
from sleuth.agents.policies import Policies
from sleuth.corpus import Corpus
from sleuth.llm.fake import ScriptedModel, tool
from sleuth.tracing import MemoryTracer

QUESTION = "Where was the designer of the Kestrel Bridge born?"
OKAFOR = "people/bram_okafor.md"


def test_grep_ranking_puts_the_documents_with_the_rare_words_first(sample_corpus):
    r = GrepRetriever(Corpus(sample_corpus))
    res = r.run("designer of the Kestrel Bridge", k=3)
    assert res.method == "grep" and len(res.hits) == 3
    assert res.hits[0].doc_id in (OKAFOR, "projects/kestrel_bridge.txt")
    assert {h.doc_id for h in res.hits[:2]} == {OKAFOR, "projects/kestrel_bridge.txt"}
    assert res.hits[0].score >= res.hits[1].score >= res.hits[2].score and res.hits[0].text
    assert r.run("zebra quagga", k=3).hits == []
    assert query_words("Where was the designer of the Kestrel Bridge born?") == [
        "designer", "kestrel", "bridge", "where", "born"]


def test_no_index_and_no_build_falls_back_to_grep_and_says_so(sample_corpus):
    model = ScriptedModel([tool("search", query="Kestrel Bridge designer"),
                           tool("answer", answer="Saltmarsh", doc_ids=[OKAFOR])])
    config = default_config(sample_corpus, model=model, build_index=False, agent="react")
    assert list(config.retrievers) == ["grep"] and config.iter_retgen_retriever == "grep"
    assert "df" not in config.toolkit.names() and config.available_strategies() == ["react", "iter-retgen"]
    tracer = MemoryTracer()
    result = Agent(config, agent="react").run(QUESTION, trace=tracer)
    assert result.answer == "Saltmarsh"
    note = next(e for e in tracer.of_kind("note") if e.name == "index")
    assert note.data["fallback"] == "grep" and "search falls back to grep" in note.preview
    search = next(e for e in tracer.of_kind("tool") if e.name == "search")
    assert OKAFOR in search.data["doc_ids"]
    assert not (sample_corpus / ".sleuth").exists()  # nothing was written into the corpus


def test_auto_without_an_index_plans_with_what_is_there(sample_corpus):
    model = ScriptedModel([{"strategy": "iter-retgen", "reason": "two hops"}, "d1", "d2",
                           {"answer": "Saltmarsh", "doc_ids": [OKAFOR]}])
    policies = Policies.parse("default,-decompose", "auto")
    with Agent.for_corpus(sample_corpus, model=model, agent="auto", build_index=False, policies=policies) as agent:
        assert agent.config.auto_steps() == ["iter-retgen", "explore"]
        result = agent.run(QUESTION)
    assert result.answer == "Saltmarsh" and result.plan == ["iter-retgen", "explore"]


def test_ask_json_reports_steps_plan_policies_and_the_fallback(app, sample_corpus, tmp_path, monkeypatch):
    from sleuth.agents import defaults

    model = ScriptedModel([{"strategy": "react", "reason": "explore"},
                           tool("grep", pattern="Kestrel Bridge"),
                           tool("answer", answer="Saltmarsh", doc_ids=[OKAFOR])])
    monkeypatch.setattr(defaults, "resolve_model", lambda m: (model, False))
    monkeypatch.setenv("SLEUTH_HOME", str(tmp_path / "home"))
    r = CliRunner().invoke(app, ["ask", QUESTION, "--corpus", str(sample_corpus), "--agent", "auto",
                                 "--budget-tokens", "50000", "--budget-seconds", "300",
                                 "--policies", "fewshot,sufficiency", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["answer"] == "Saltmarsh" and out["plan"] == ["explore"] and out["escalations"] == []
    assert out["policies"] == {"fewshot": True, "force_search": False, "decompose": False, "constrain_args": False,
                               "sufficiency": "lexical"}
    assert [t["node"] for t in out["trail"]] == ["plan_question", "start_explore", "call_model", "run_tools",
                                                 "call_model", "run_tools", "finish"]
    assert sum(t["tokens"] for t in out["trail"]) == out["usage"]["total_tokens"]
    assert all(t["seconds"] >= 0 for t in out["trail"])
    assert not (sample_corpus / ".sleuth").exists()  # no --index, no state folder: grep fallback, nothing built
    from sleuth.tracing import read_trace

    events = read_trace(out["trace"])
    start = next(e for e in events if e.kind == "run" and e.name == "start")
    assert start.data["budget"]["max_tokens"] == 50000 and start.data["budget"]["max_seconds"] == 300
    assert start.data["active_policies"] == ["fewshot", "sufficiency=lexical"]
    assert any(e.kind == "note" and e.name == "index" for e in events)
    answer = next(e for e in events if e.kind == "answer")
    assert answer.data["steps_run"] == [t["node"] for t in out["trail"]][:-1]


def test_ask_with_index_builds_it(app, sample_corpus, tmp_path, monkeypatch):
    from sleuth.agents import defaults

    model = ScriptedModel([tool("answer", answer="Saltmarsh", doc_ids=[OKAFOR])])
    monkeypatch.setattr(defaults, "resolve_model", lambda m: (model, False))
    monkeypatch.setenv("SLEUTH_HOME", str(tmp_path / "home"))
    r = CliRunner().invoke(app, ["ask", QUESTION, "--corpus", str(sample_corpus), "--agent", "react", "--index",
                                 "--json"])
    assert r.exit_code == 0, r.output
    assert (sample_corpus / ".sleuth" / "bm25").is_dir()
