"""``--agent dci`` with the scripted model over the real sample corpus and real ripgrep: only grep/read/ls/answer,
no index, DCI-Agent-Lite-style context management (truncation, micro-compaction to one-line digests, a summary when
the window fills), the scan budget, and a model that never answers."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from sleuth.agents import Agent, AgentConfig, Budget, ContextPolicy
from sleuth.agents.dci import COMPACT_PREFIX, SUMMARY_PREFIX, DCIContext, digest, micro_compact
from sleuth.agents.defaults import default_config
from sleuth.corpus import Corpus
from sleuth.errors import CorpusTooLargeError, ModelOutputError
from sleuth.llm.fake import ScriptedModel, tool
from sleuth.tools import corpus_tools
from sleuth.tracing import MemoryTracer

QUESTION = "Where was the designer of the Kestrel Bridge born?"
OKAFOR = "people/bram_okafor.md"
BRIDGE = "projects/kestrel_bridge.txt"


def _agent(corpus_dir, script, **kw):
    corpus = Corpus(corpus_dir)
    model = ScriptedModel(script)
    config = AgentConfig(model=model, toolkit=corpus_tools(corpus), corpus=corpus, **kw)
    return Agent(config, agent="dci"), model


def _tool_names(call):
    return [t["function"]["name"] for t in call["tools"]]


def test_dci_offers_grep_read_ls_only_and_answers(sample_corpus):
    agent, model = _agent(sample_corpus, [
        tool("search", query="Kestrel Bridge designer"),  # not a dci tool: an observation, never run
        tool("grep", pattern="Kestrel Bridge"),
        tool("read", doc_id=OKAFOR),
        tool("answer", answer="Saltmarsh", doc_ids=[OKAFOR, BRIDGE]),
    ])
    tracer = MemoryTracer()
    result = agent.run(QUESTION, trace=tracer)
    assert result.answer == "Saltmarsh" and result.strategy == "dci" and result.doc_ids == [OKAFOR, BRIDGE]
    assert _tool_names(model.calls[0]) == ["grep", "read", "ls", "answer"]
    assert "There is no search index" in model.calls[0]["messages"][0]["content"]
    first_obs = next(m for m in model.calls[1]["messages"] if m["role"] == "tool")["content"]
    assert "unknown tool 'search'" in first_obs
    assert [e.name for e in tracer.of_kind("tool")] == ["search", "grep", "read", "answer"]
    assert tracer.of_kind("tool")[0].error  # the search call was refused, not run
    assert not (sample_corpus / ".sleuth").exists()  # dci never opens or builds an index
    # every step that ran is in the result, with its cost
    assert [t["node"] for t in result.trail] == ["call_model", "run_tools", "manage_context"] * 3 + [
        "call_model", "run_tools", "finish"]
    assert sum(t["tokens"] for t in result.trail) == result.usage.total_tokens
    assert sum(t["tool_calls"] for t in result.trail) == result.tool_calls == 4
    start = tracer.of_kind("run")[0]
    assert start.data["context"]["level"] == 4 and start.data["active_policies"] == []


def test_for_corpus_dci_builds_no_index_and_has_no_search(sample_corpus):
    with Agent.for_corpus(sample_corpus, model=ScriptedModel([tool("answer", answer="x")]), agent="dci") as agent:
        assert agent.config.retrievers == {} and agent.config.toolkit.names() == ["grep", "read", "ls", "answer"]
        assert agent.run(QUESTION).answer == "x"
    assert not (sample_corpus / ".sleuth").exists()


def test_long_outputs_are_truncated_at_the_dci_cap(sample_corpus):
    agent, model = _agent(sample_corpus, [tool("grep", pattern="the"), tool("answer", answer="x")],
                          dci_context=DCIContext(max_tool_result_chars=300))
    agent.run(QUESTION)
    obs = next(m for m in model.calls[1]["messages"] if m["role"] == "tool")["content"]
    assert len(obs) < 300 + 120 and "more characters cut" in obs


def test_old_turns_are_micro_compacted_to_what_they_found(sample_corpus):
    script = [tool("grep", pattern="Kestrel"), tool("grep", pattern="Okafor"), tool("read", doc_id=OKAFOR),
              tool("answer", answer="Saltmarsh", doc_ids=[OKAFOR])]
    agent, model = _agent(sample_corpus, script,
                          dci_context=DCIContext(level=3, keep_turns=1, compact_min_chars=100))
    tracer = MemoryTracer()
    result = agent.run(QUESTION, trace=tracer)
    assert result.answer == "Saltmarsh"
    seen = model.calls[3]["messages"]  # what the model saw before answering
    tools = [m["content"] for m in seen if m["role"] == "tool"]
    assert tools[0].startswith(COMPACT_PREFIX + 'grep(pattern="Kestrel") -> ')
    assert "projects/kestrel_bridge.txt" in tools[0] and "the designer of the Kestrel Bridge" in tools[0]
    assert tools[1].startswith(COMPACT_PREFIX + 'grep(pattern="Okafor")')
    assert not tools[2].startswith(COMPACT_PREFIX) and "born in Saltmarsh" in tools[2]  # the last turn stays whole
    notes = [e.data for e in tracer.of_kind("note") if e.name == "context"]
    assert notes and all(n["action"] == "micro_compact" for n in notes)
    assert sum(n["compacted"] for n in notes) == 2
    assert not [e for e in tracer.of_kind("llm") if e.name == "summarize"]  # level 3: no summary call


def test_a_summary_replaces_old_turns_when_the_window_fills(sample_corpus):
    script = [tool("grep", pattern="Kestrel"), tool("read", doc_id=BRIDGE),
              "Kestrel Bridge (projects/kestrel_bridge.txt) was designed by Bram Okafor; his birthplace is unknown.",
              tool("read", doc_id=OKAFOR),
              "Bram Okafor designed the Kestrel Bridge and was born in Saltmarsh (people/bram_okafor.md).",
              tool("answer", answer="Saltmarsh", doc_ids=[OKAFOR])]
    context = ContextPolicy(context_tokens=700, max_step_tokens=32)
    agent, model = _agent(sample_corpus, script, context=context,
                          dci_context=DCIContext(level=4, keep_turns=1, compact_min_chars=10**6, summary_ratio=0.3))
    tracer = MemoryTracer()
    result = agent.run(QUESTION, trace=tracer)
    assert result.answer == "Saltmarsh"
    assert [c["name"] for c in model.calls] == ["agent", "agent", "summarize", "agent", "summarize", "agent"]
    first, second = [c for c in model.calls if c["name"] == "summarize"]
    assert "Question: " + QUESTION in first["messages"][1]["content"]
    assert 'call grep({"pattern": "Kestrel"})' in first["messages"][1]["content"]
    assert SUMMARY_PREFIX + "Kestrel Bridge" in second["messages"][1]["content"]  # a rolling summary folds the last
    after = model.calls[3]["messages"]
    assert after[2]["role"] == "user" and after[2]["content"].startswith(SUMMARY_PREFIX + "Kestrel Bridge")
    assert [m["role"] for m in after[:2]] == ["system", "user"]  # the stable prefix is never touched
    last = model.calls[5]["messages"]
    assert last[2]["content"].startswith(SUMMARY_PREFIX + "Bram Okafor designed") and len(last) == 5
    notes = [e.data for e in tracer.of_kind("note") if e.name == "context" and e.data["action"] == "summarize"]
    assert len(notes) == 2 and all(n["estimated_tokens_after"] < n["estimated_tokens_before"] for n in notes)
    assert result.llm_calls == 6 and result.steps == 4  # summaries are model calls, not search turns


def test_a_failed_summary_leaves_the_conversation_and_says_why(sample_corpus):
    script = [tool("grep", pattern="Kestrel"), tool("read", doc_id=BRIDGE), ModelOutputError("server said no"),
              tool("answer", answer="Saltmarsh", doc_ids=[OKAFOR])]
    context = ContextPolicy(context_tokens=700, max_step_tokens=32)
    agent, _ = _agent(sample_corpus, script, context=context,
                      dci_context=DCIContext(level=4, keep_turns=1, compact_min_chars=10**6, summary_ratio=0.3))
    tracer = MemoryTracer()
    assert agent.run(QUESTION, trace=tracer).answer == "Saltmarsh"
    failed = [e.data for e in tracer.of_kind("note") if e.name == "context" and e.data["action"] == "summary_failed"]
    assert failed and "server said no" in failed[0]["why"]


def test_a_model_that_never_answers_stops_on_a_budget_and_says_so(sample_corpus):
    agent, _ = _agent(sample_corpus, [], budget=Budget(max_steps=4))
    agent.config.model.default = tool("grep", pattern="Kestrel")  # every call: the same grep, never answer
    result = agent.run(QUESTION)
    assert result.answer is None and result.stop_reason == "budget:repeats"
    assert result.note.startswith("The model made the same tool call again and again")


def test_corpus_larger_than_the_scan_budget_is_refused(sample_corpus):
    corpus = Corpus(sample_corpus)
    with pytest.raises(CorpusTooLargeError) as e:
        Agent(AgentConfig(model=ScriptedModel(), toolkit=corpus_tools(corpus), corpus=corpus, max_scan_bytes=1000),
              agent="dci")
    assert "scan budget of --agent dci" in e.value.message
    assert "--agent auto, sira or iter-retgen" in e.value.hint and "sleuth index" in e.value.hint

    def no_model(_m):
        raise AssertionError("the model must not be built for a corpus dci refuses")

    import sleuth.agents.defaults as defaults

    old = defaults.resolve_model
    defaults.resolve_model = no_model
    try:
        with pytest.raises(CorpusTooLargeError):
            default_config(corpus, agent="dci", max_scan_bytes=1000)
    finally:
        defaults.resolve_model = old


def test_cli_dci_on_a_corpus_over_the_scan_budget(app, sample_corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("SLEUTH_HOME", str(tmp_path / "home"))
    r = CliRunner().invoke(app, ["ask", QUESTION, "--corpus", str(sample_corpus), "--agent", "dci",
                                 "--scan-budget", "0.001", "--json"])
    assert r.exit_code == 2, r.output
    err = json.loads(r.output)
    assert err["error"] == "CorpusTooLargeError" and "indexed strategy" in err["hint"]


def test_pi_profiles_and_levels():
    assert DCIContext.pi(3).model_dump() == {"level": 3, "max_tool_result_chars": 20_000, "keep_turns": 12,
                                             "compact_min_chars": 240_000, "summary_ratio": 0.7,
                                             "summary_tokens": 160}
    assert DCIContext(level=0).result_cap() is None
    assert DCIContext(level=1).result_cap() == 3000 and DCIContext(level=2).result_cap() == 1500


def test_micro_compact_keeps_the_last_turns_and_the_prefix():
    msgs = [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}]
    for i in range(3):
        msgs += [{"role": "assistant", "content": "", "tool_calls": [{"id": f"c{i}", "function": {"name": "grep"}}]},
                 {"role": "tool", "tool_call_id": f"c{i}", "name": "grep", "content": "x" * 100}]
    out, n = micro_compact(msgs, {"c0": "grep -> a.txt"}, keep_turns=2, min_chars=50)
    assert n == 1 and out[3]["content"] == COMPACT_PREFIX + "grep -> a.txt" and out[5]["content"] == "x" * 100
    assert msgs[3]["content"] == "x" * 100  # the input is not modified
    assert micro_compact(msgs, {}, keep_turns=2, min_chars=10_000) == (msgs, 0)  # under the threshold: nothing


def test_digest_names_the_documents_and_the_sentence_that_matters(sample_corpus):
    corpus = Corpus(sample_corpus)
    tools = {t.name: t for t in corpus_tools(corpus)}
    r = tools["read"].invoke({"doc_id": OKAFOR})
    line = digest("read", {"doc_id": OKAFOR}, r, "Where was Bram Okafor born?")
    assert line.startswith('read(doc_id="people/bram_okafor.md") -> ') and "born in Saltmarsh" in line
    r = tools["grep"].invoke({"pattern": "zzzz-nothing"})
    assert digest("grep", {"pattern": "zzzz-nothing"}, r, QUESTION).endswith("-> no matches")
    r = tools["read"].invoke({"doc_id": "missing.md"})
    assert "-> error:" in digest("read", {"doc_id": "missing.md"}, r, QUESTION)


def test_dci_workspace_greps_inside_a_bm25_workspace_past_the_scan_budget(sample_corpus):
    """``dci_workspace=N`` (#13): on a corpus over the scan budget, dci offers workspace_grep/read/answer (no
    whole-corpus grep or ls), its own prompt, and the workspace (query, n, doc ids) is in the trace."""
    script = [
        tool("grep", pattern="Kestrel Bridge"),  # the whole-corpus grep is not offered: an observation
        tool("workspace_grep", query="Kestrel Bridge designer", pattern="Kestrel Bridge", n=5),
        tool("read", doc_id=OKAFOR),
        tool("answer", answer="Saltmarsh", doc_ids=[OKAFOR, BRIDGE]),
    ]
    model = ScriptedModel(script)
    config = default_config(Corpus(sample_corpus), model=model, agent="dci", max_scan_bytes=1000, dci_workspace=5,
                            build_index=True)
    tracer = MemoryTracer()
    with Agent(config, agent="dci") as agent:
        result = agent.run(QUESTION, trace=tracer)
    assert result.answer == "Saltmarsh" and result.doc_ids == [OKAFOR, BRIDGE]
    assert sorted(_tool_names(model.calls[0])) == ["answer", "read", "workspace_grep"]
    assert "only inside the documents that best match its query" in model.calls[0]["messages"][0]["content"]
    assert "unknown tool 'grep'" in next(m for m in model.calls[1]["messages"] if m["role"] == "tool")["content"]
    ws = next(e for e in tracer.of_kind("tool") if e.name == "workspace_grep")
    assert ws.data["workspace"]["query"] == "Kestrel Bridge designer" and ws.data["workspace"]["n"] == 5
    assert BRIDGE in ws.data["workspace"]["doc_ids"]
    with pytest.raises(CorpusTooLargeError):  # the same corpus and budget without the workspace
        default_config(Corpus(sample_corpus), model=ScriptedModel(), agent="dci", max_scan_bytes=1000)
