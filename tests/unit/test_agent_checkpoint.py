"""Checkpoints (SQLite): an interrupted run resumes where it stopped; a dying model server raises a typed error and
the checkpoint keeps what was done."""

from __future__ import annotations

import asyncio
import json

import pytest

from sleuth.agents import Agent, AgentConfig
from sleuth.corpus import Corpus
from sleuth.errors import ConfigError, ModelConnectionError
from sleuth.llm.fake import ScriptedModel, tool
from sleuth.tools import corpus_tools
from sleuth.tracing import MemoryTracer, read_trace
from tests.unit.llm_fake_server import FakeOpenAIServer, completion

QUESTION = "Where was the designer of the Kestrel Bridge born?"
OKAFOR = "people/bram_okafor.md"


def make_agent(corpus_dir, model, db, agent="react") -> Agent:
    corpus = Corpus(corpus_dir)
    return Agent(AgentConfig(model=model, toolkit=corpus_tools(corpus), corpus=corpus), agent=agent, checkpoint=db)


def test_interrupted_run_resumes_from_the_last_finished_node(sample_corpus, tmp_path):
    db = tmp_path / "runs.sqlite"
    trace = tmp_path / "run.jsonl"
    dead = ModelConnectionError("connection refused by 127.0.0.1:1")
    first = ScriptedModel([tool("grep", pattern="Kestrel Bridge"), tool("read", doc_id="projects/kestrel_bridge.txt"), dead])
    with make_agent(sample_corpus, first, db) as agent, pytest.raises(ModelConnectionError):
        agent.run(QUESTION, run_id="r1", trace=trace)

    # a fresh process: new agent, new model, same database
    second = ScriptedModel([tool("grep", pattern="Okafor was born"), tool("answer", answer="Saltmarsh", doc_ids=[OKAFOR])])
    with make_agent(sample_corpus, second, db) as agent:
        snapshot = agent.graph.get_state(agent._graph_config("r1"))
        assert snapshot.next == ("call_model",)  # the node that failed
        assert snapshot.values["steps"] == 2 and snapshot.values["tool_calls"] == 2
        assert snapshot.values["usage"]["calls"] == 2  # the usage of the calls that finished is kept
        result = agent.resume("r1", trace=trace)
    assert result.answer == "Saltmarsh" and result.doc_ids == [OKAFOR]
    assert result.steps == 4 and result.tool_calls == 4 and result.usage.calls == 4
    # the resumed model saw the earlier observations: nothing was redone
    assert len(second.calls) == 2
    seen = [m["content"] for m in second.calls[0]["messages"] if m["role"] == "tool"]
    assert "designed by the engineer Bram Okafor" in seen[1]
    events = read_trace(trace)
    errors = [e for e in events if e.kind == "error"]
    assert errors and errors[0].node == "call_model" and "ModelConnectionError" in errors[0].error
    assert [e.name for e in events if e.kind == "tool"] == ["grep", "read", "grep", "answer"]
    assert [e.name for e in events if e.kind == "run"] == ["start", "resume", "end"]


def test_keyboard_interrupt_then_resume(sample_corpus, tmp_path):
    db = tmp_path / "runs.sqlite"

    def ctrl_c(messages, tools):
        raise KeyboardInterrupt

    with make_agent(sample_corpus, ScriptedModel([tool("ls"), ctrl_c]), db) as agent, pytest.raises(KeyboardInterrupt):
        agent.run(QUESTION, run_id="r2")
    with make_agent(sample_corpus, ScriptedModel([tool("answer", answer="Saltmarsh")]), db) as agent:
        result = agent.resume("r2")
        assert result.answer == "Saltmarsh" and result.tool_calls == 2
        again = agent.resume("r2")  # a finished run: its result, nothing rerun
        assert again.answer == "Saltmarsh"
        with pytest.raises(ConfigError, match="already exists"):
            agent.run(QUESTION, run_id="r2")
        with pytest.raises(ConfigError, match="no run"):
            agent.resume("missing")
    with make_agent(sample_corpus, ScriptedModel([]), db, agent="router") as agent, pytest.raises(
        ConfigError, match="started with agent 'react'"
    ):
        agent.resume("r2")


def test_real_client_server_dies_mid_run(sample_corpus, tmp_path):
    """The litellm client against an OpenAI-compatible HTTP server that goes away after the first call."""
    from sleuth.llm.client import LLM

    db = tmp_path / "runs.sqlite"
    grep_call = {"id": "c1", "type": "function", "function": {"name": "grep", "arguments": json.dumps({"pattern": "Okafor"})}}
    server = FakeOpenAIServer([(200, completion("", tool_calls=[grep_call]))])
    server.__enter__()

    class KillAfterFirstTool(MemoryTracer):
        def _write(self, event):
            super()._write(event)
            if event.kind == "tool":
                server.__exit__()

    model = LLM("openai/fake", api_base=server.url, api_key="sk-test", max_retries=0, backoff_s=0.01, timeout_s=5)
    tracer = KillAfterFirstTool("r3")
    with make_agent(sample_corpus, model, db) as agent, pytest.raises(ModelConnectionError):
        agent.run(QUESTION, run_id="r3", trace=tracer)
    assert [e.kind for e in tracer.events if e.kind in ("llm", "tool")] == ["llm", "tool", "llm"]
    assert tracer.of_kind("llm")[0].usage.prompt_tokens == 11  # the server's reported usage
    assert "ModelConnectionError" in tracer.of_kind("error")[0].error

    answer_call = {"id": "c2", "type": "function",
                   "function": {"name": "answer", "arguments": json.dumps({"answer": "Saltmarsh", "doc_ids": [OKAFOR]})}}
    with FakeOpenAIServer([(200, completion("", tool_calls=[answer_call]))]) as server2:
        model2 = LLM("openai/fake", api_base=server2.url, api_key="sk-test", max_retries=0)
        with make_agent(sample_corpus, model2, db) as agent:
            result = agent.resume("r3")
        sent = server2.requests[0]["body"]["messages"]
    assert result.answer == "Saltmarsh" and result.tool_calls == 2
    assert result.usage.prompt_tokens == 22 and result.usage.token_source == "provider"
    assert any(m["role"] == "tool" and "Okafor" in m["content"] for m in sent)  # the grep result was kept


def test_async_run_with_checkpoint(sample_corpus, tmp_path):
    db = tmp_path / "runs.sqlite"
    with make_agent(sample_corpus, ScriptedModel([tool("ls"), tool("answer", answer="a")]), db) as agent:
        result = asyncio.run(agent.arun(QUESTION, run_id="r4"))
        assert result.answer == "a"
        assert agent.resume("r4").answer == "a"  # the async run's checkpoint is readable by the sync saver
