"""The react graph end to end with a scripted model over the real sample corpus and the real grep/read/ls tools."""

from __future__ import annotations

import asyncio
import json

import pytest

from sleuth.agents import Agent, AgentConfig, Budget, ContextPolicy
from sleuth.agents.context import CLEARED_MARKER
from sleuth.corpus import Corpus
from sleuth.errors import ConfigError
from sleuth.llm.base import ChatResult, ToolCall
from sleuth.llm.fake import ScriptedModel, tool
from sleuth.records import Usage
from sleuth.tools import corpus_tools
from sleuth.tracing import JSONLTracer, MemoryTracer, read_trace

QUESTION = "Where was the designer of the Kestrel Bridge born?"
BRIDGE = "projects/kestrel_bridge.txt"
OKAFOR = "people/bram_okafor.md"


def make_agent(corpus_dir, script, *, budget=None, context=None, **kw) -> tuple[Agent, ScriptedModel]:
    corpus = Corpus(corpus_dir)
    model = ScriptedModel(script)
    config = AgentConfig(
        model=model, toolkit=corpus_tools(corpus), corpus=corpus, budget=budget or Budget(),
        context=context or ContextPolicy(), **kw,
    )
    return Agent(config, agent="react"), model


def tool_messages(model: ScriptedModel, call_index: int) -> list[dict]:
    return [m for m in model.calls[call_index]["messages"] if m["role"] == "tool"]


def test_two_hop_tool_sequence_answers_with_doc_ids(sample_corpus):
    agent, model = make_agent(
        sample_corpus,
        [
            tool("grep", pattern="Kestrel Bridge"),
            tool("read", doc_id=BRIDGE),
            tool("grep", pattern="Okafor was born"),
            tool("answer", answer="Saltmarsh", doc_ids=[BRIDGE, OKAFOR]),
        ],
    )
    tracer = MemoryTracer()
    result = agent.run(QUESTION, trace=tracer)
    assert result.answer == "Saltmarsh"
    assert result.doc_ids == [BRIDGE, OKAFOR]
    assert result.stop_reason == "answered" and result.answered_by == "model"
    assert result.steps == 4 and result.llm_calls == 4 and result.tool_calls == 4
    # the model saw the tool schemas (grep/read/ls/answer) on every call, and the real tools' output
    names = [t["function"]["name"] for t in model.calls[0]["tools"]]
    assert names == ["grep", "read", "ls", "answer"]
    assert "designed by the engineer Bram Okafor" in tool_messages(model, 2)[-1]["content"]
    assert "Saltmarsh" in tool_messages(model, 3)[-1]["content"]
    assert BRIDGE in result.docs_seen and OKAFOR in result.docs_seen
    # every LLM call and tool call is traced, stamped with its node; usage = sum of the LLM events
    llm = tracer.of_kind("llm")
    assert len(llm) == 4 and {e.node for e in llm} == {"call_model"}
    assert [e.name for e in tracer.of_kind("tool")] == ["grep", "read", "grep", "answer"]
    assert {e.node for e in tracer.of_kind("tool")} == {"run_tools"}
    total = sum((e.usage for e in llm), Usage())
    assert result.usage.prompt_tokens == total.prompt_tokens > 0
    assert result.usage.completion_tokens == total.completion_tokens > 0
    assert result.usage.cost == "unmeasured"
    nodes = [e.name for e in tracer.of_kind("node")]
    assert nodes == ["call_model", "run_tools"] * 4 + ["finish"]
    assert tracer.of_kind("answer")[0].data["doc_ids"] == [BRIDGE, OKAFOR]


def test_bad_calls_come_back_as_observations(sample_corpus):
    agent, model = make_agent(
        sample_corpus,
        [
            tool("fetch_web", url="http://x"),  # unknown tool
            tool("read", doc_id=BRIDGE, colour="red"),  # unknown argument
            tool("read", doc_id="../etc/passwd"),  # outside the corpus
            {"tool": "grep", "arguments": '{"pattern": "Okafor",'},  # broken JSON, repairable
            {"tool": "grep", "arguments": "pattern=Okafor"},  # broken beyond repair
            tool("grep", pattern="(unclosed"),  # bad regex
            tool("answer", answer="Saltmarsh", doc_ids="people/bram_okafor.md"),  # doc_ids as a string
        ],
    )
    tracer = MemoryTracer()
    result = agent.run(QUESTION, trace=tracer)
    assert result.answer == "Saltmarsh" and result.doc_ids == [OKAFOR]
    obs = [m["content"] for m in model.calls[-1]["messages"] if m["role"] == "tool"]
    assert "unknown tool 'fetch_web'" in obs[0] and "available tools: grep, read, ls, answer" in obs[0]
    assert "colour" in obs[1] and obs[1].startswith("Error (ToolArgumentError)")
    assert obs[2].startswith("Error (PathOutsideCorpusError)")
    assert "Okafor" in obs[3] and not obs[3].startswith("Error")  # repaired and run
    assert obs[4].startswith("Error (ToolArgumentError)") and "not valid JSON" in obs[4]
    assert obs[5].startswith("Error (InvalidPatternError)")
    errors = [e for e in tracer.of_kind("tool") if e.error]
    assert len(errors) == 5
    assert any(e.name == "repair" for e in tracer.of_kind("note"))


def test_call_written_as_text_is_repaired_and_run(sample_corpus):
    text_call = 'Let me search.\n```json\n{"name": "functions.Grep", "arguments": {"pattern": "Kestrel"}}\n```'
    agent, model = make_agent(sample_corpus, [text_call, {"answer": "Saltmarsh", "doc_ids": [OKAFOR]}])
    result = agent.run(QUESTION)
    assert "Kestrel" in tool_messages(model, 1)[0]["content"]
    assert result.answer == "Saltmarsh" and result.answered_by == "model"


def test_model_without_tool_calls_is_nudged_then_its_text_taken(sample_corpus):
    agent, model = make_agent(sample_corpus, ["I think it is Saltmarsh.", "Saltmarsh."])
    result = agent.run(QUESTION)
    assert "You did not call a tool" in model.calls[1]["messages"][-1]["content"]
    assert result.answer == "Saltmarsh." and result.answered_by == "text" and result.stop_reason == "no_tool_call"


def test_step_budget_forces_a_final_answer_call(sample_corpus):
    agent, model = make_agent(
        sample_corpus,
        [tool("ls"), tool("grep", pattern="bridge"), tool("answer", answer="Dunmore", doc_ids=[BRIDGE])],
        budget=Budget(max_steps=2),
    )
    tracer = MemoryTracer()
    result = agent.run(QUESTION, trace=tracer)
    assert result.budget_exhausted == "steps" and result.stop_reason == "budget:steps"
    assert result.answered_by == "forced" and result.answer == "Dunmore"
    final = model.calls[-1]
    assert [t["function"]["name"] for t in final["tools"]] == ["answer"]  # it may only answer
    assert "Stop searching (steps limit reached)" in final["messages"][-1]["content"]
    assert QUESTION in final["messages"][-1]["content"]
    assert tracer.of_kind("budget")[0].data["budget"] == "steps"


def test_looping_model_is_stopped_by_the_budget_and_told_it_repeats(sample_corpus):
    agent, model = make_agent(
        sample_corpus, [], budget=Budget(max_steps=4, final_answer_call=False), max_repeats=None
    )
    model.default = tool("grep", pattern="Kestrel")  # the same call forever
    result = agent.run(QUESTION)
    assert result.steps == 4 and result.budget_exhausted == "steps"
    # no answer: the answer field stays empty; the note says why (never an observation or prompt text)
    assert result.answer is None and result.answered_by == "none" and result.stop_reason == "budget:steps"
    assert result.note.startswith("The step budget ran out before the model answered") and result.doc_ids == []
    assert "You already made" not in result.note and "matching lines" not in result.note
    last_obs = tool_messages(model, 3)[-1]["content"]
    assert last_obs.startswith("(You already made this exact call")
    assert len(model.calls) == 4  # no final call: final_answer_call=False


def test_token_budget(sample_corpus):
    agent, model = make_agent(sample_corpus, [], budget=Budget(max_tokens=150))
    model.default = tool("read", doc_id=BRIDGE)
    model.script = [tool("read", doc_id=BRIDGE)] * 10 + [tool("answer", answer="x", doc_ids=[])]
    result = agent.run(QUESTION)
    assert result.budget_exhausted == "tokens"
    assert result.steps < 10


def test_forced_call_that_fails_falls_back_to_last_observation(sample_corpus):
    agent, model = make_agent(
        sample_corpus, [tool("read", doc_id=OKAFOR), tool("grep", pattern="x")], budget=Budget(max_steps=1)
    )
    result = agent.run(QUESTION)
    assert result.answer is None and result.answered_by == "none" and result.doc_ids == []
    assert "the final answer call gave no usable answer" in result.note and OKAFOR in result.note
    assert "Saltmarsh" not in result.note  # the last observation is evidence, not an answer


def test_context_is_compacted_to_fit_a_small_window(sample_corpus):
    policy = ContextPolicy(context_tokens=600, max_result_chars=600, max_step_tokens=32, max_answer_tokens=32)
    script = [tool("read", doc_id=d) for d in Corpus(sample_corpus).doc_ids()[:6]]
    script.append(tool("answer", answer="Saltmarsh", doc_ids=[OKAFOR]))
    agent, model = make_agent(sample_corpus, script, context=policy)
    tracer = MemoryTracer()
    result = agent.run(QUESTION, trace=tracer)
    assert result.answer == "Saltmarsh"
    budget = policy.prompt_budget(policy.max_step_tokens)
    for call in model.calls:
        tokens = sum(len(str(m.get("content") or "").split()) + 4 for m in call["messages"])
        tokens += len(json.dumps(call["tools"], separators=(",", ":")).split())
        assert tokens <= budget
    later = model.calls[-1]["messages"]
    assert later[0]["role"] == "system" and later[1]["content"] == f"Question: {QUESTION}"  # the prefix is kept
    assert any(m.get("content") == CLEARED_MARKER for m in later)
    assert tracer.of_kind("note") and any(e.name == "context" for e in tracer.of_kind("note"))


def test_long_observation_is_capped(sample_corpus):
    agent, model = make_agent(
        sample_corpus, [tool("read", doc_id=OKAFOR), tool("answer", answer="x")], context=ContextPolicy(max_result_chars=120)
    )
    agent.run(QUESTION)
    obs = tool_messages(model, 1)[0]["content"]
    assert "more characters cut" in obs and len(obs) < 220


def test_stream_yields_each_node_then_the_result(sample_corpus):
    agent, _ = make_agent(sample_corpus, [tool("grep", pattern="Okafor"), tool("answer", answer="Saltmarsh")])
    events = list(agent.stream(QUESTION))
    assert [e.node for e in events if e.kind == "node"] == ["call_model", "run_tools", "call_model", "run_tools", "finish"]
    assert events[0].summary.startswith("calls grep(")
    assert events[-1].kind == "done" and events[-1].result.answer == "Saltmarsh"


def test_async_run(sample_corpus):
    agent, _ = make_agent(sample_corpus, [tool("grep", pattern="Okafor"), tool("answer", answer="Saltmarsh")])
    result = asyncio.run(agent.arun(QUESTION))
    assert result.answer == "Saltmarsh" and result.tool_calls == 2


def test_jsonl_trace_file(sample_corpus, tmp_path):
    agent, _ = make_agent(sample_corpus, [tool("grep", pattern="Okafor"), tool("answer", answer="Saltmarsh")])
    path = tmp_path / "run.jsonl"
    result = agent.run(QUESTION, trace=path, run_id="r1")
    events = read_trace(path)
    assert result.trace_path == str(path)
    assert {e.run_id for e in events} == {"r1"}
    assert events[0].kind == "run" and events[-1].kind == "run"
    assert [e.step for e in events] == list(range(1, len(events) + 1))


def test_bad_input(sample_corpus):
    agent, _ = make_agent(sample_corpus, [])
    with pytest.raises(ConfigError, match="empty"):
        agent.run("   ")
    with pytest.raises(ConfigError, match="unknown agent"):
        Agent(agent.config, agent="magic")
    with pytest.raises(ConfigError, match="needs a toolkit"):
        Agent(AgentConfig(model=ScriptedModel([])), agent="react")
    with pytest.raises(ConfigError, match="needs a retriever"):
        Agent(AgentConfig(model=ScriptedModel([])), agent="sira")
    with pytest.raises(ConfigError, match="resume needs a checkpoint"):
        agent.resume("nope")


def test_native_tool_call_result_objects_pass_through(sample_corpus):
    """A model returning ChatResult tool calls directly (the real client's shape) drives the graph the same."""

    class Native(ScriptedModel):
        def chat(self, messages, **kw):  # type: ignore[override]
            self.calls.append({"messages": messages, "tools": kw.get("tools")})
            n = len(self.calls)
            call = ToolCall(id=f"c{n}", name="answer", arguments={"answer": "Saltmarsh", "doc_ids": [OKAFOR]})
            result = ChatResult(tool_calls=[call], usage=Usage.one_call(10, 3, 0.001, "provider"))
            kw["tracer"].record("llm", "agent", usage=result.usage)
            return result

    corpus = Corpus(sample_corpus)
    agent = Agent(AgentConfig(model=Native([]), toolkit=corpus_tools(corpus), corpus=corpus), agent="react")
    result = agent.run(QUESTION)
    assert result.answer == "Saltmarsh" and result.usage.cost == 0.001 and result.usage.prompt_tokens == 10


def test_trace_file_survives_for_a_jsonl_tracer_passed_in(sample_corpus, tmp_path):
    agent, _ = make_agent(sample_corpus, [tool("answer", answer="Saltmarsh")])
    with JSONLTracer(tmp_path / "t.jsonl", run_id="x") as tracer:
        agent.run(QUESTION, trace=tracer)
        agent2, _ = make_agent(sample_corpus, [tool("answer", answer="again")])
        agent2.run(QUESTION, trace=tracer)  # still open: the agent does not close a tracer it was given
    answers = [e.data["answer"] for e in read_trace(tmp_path / "t.jsonl") if e.kind == "answer"]
    assert answers == ["Saltmarsh", "again"]


def test_repeated_identical_call_ends_the_search_early(sample_corpus):
    """Greedy decoding makes a small model repeat itself; the third identical call goes to the forced answer."""
    agent, model = make_agent(sample_corpus, [tool("read", doc_id="papers/rea")] * 3 + [tool("answer", answer="x")])
    tracer = MemoryTracer()
    result = agent.run(QUESTION, trace=tracer)
    assert result.steps == 3 and result.budget_exhausted == "repeats" and result.stop_reason == "budget:repeats"
    assert result.answered_by == "forced" and result.answer == "x"
    assert tracer.of_kind("budget")[0].data["times"] == 3


def test_forced_answer_that_parrots_the_instruction_is_rejected(sample_corpus):
    parrot = tool("answer", answer="Stop searching (steps limit reached). Question: Where", doc_ids=[])
    agent, _ = make_agent(sample_corpus, [tool("read", doc_id=OKAFOR), parrot], budget=Budget(max_steps=1))
    result = agent.run(QUESTION)
    assert result.answer is None and result.answered_by == "none"
    assert "repeated the instructions" in result.note and "Stop searching" not in result.note
