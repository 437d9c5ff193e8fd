"""``--agent auto`` with the scripted model over the real sample corpus, the real BM25 index and the real SIRA
retriever: the plan (router choice, budget-shaped), decomposition (used, empty, looping), the sufficiency check and
escalation (sira -> iter-retgen -> explore), escalation stopped by the budget, and the policies in the explore loop
(forced first search, constrained arguments, an unsupported answer sent back)."""

from __future__ import annotations

import pytest

from sleuth.agents import Agent, AgentConfig, Budget
from sleuth.agents.budget import STEP_COSTS, StepCost
from sleuth.agents.policies import Policies
from sleuth.corpus import Corpus
from sleuth.llm.fake import ScriptedModel, tool
from sleuth.retrieval.bm25 import BM25Retriever
from sleuth.retrieval.sira import SiraRetriever
from sleuth.tools import Toolkit, corpus_tools
from sleuth.tools.search import search_tool
from sleuth.tracing import MemoryTracer

QUESTION = "Where was the designer of the Kestrel Bridge born?"
OKAFOR = "people/bram_okafor.md"
BRIDGE = "projects/kestrel_bridge.txt"
NO_DECOMPOSE = Policies.parse("default,-decompose", "auto")


@pytest.fixture()
def setup(sample_corpus):
    corpus = Corpus(sample_corpus)
    bm25 = BM25Retriever.open(corpus)

    def make(script, policies=NO_DECOMPOSE, **kw):
        model = ScriptedModel(script)
        retrievers = {"bm25": bm25, "sira": SiraRetriever(bm25, model)}
        toolkit = Toolkit([*corpus_tools(corpus), search_tool(retrievers)])
        config = AgentConfig(model=model, toolkit=toolkit, retrievers=retrievers, corpus=corpus,
                             search_methods=list(retrievers), policies=policies, **kw)
        return Agent(config, agent="auto"), model

    return make


def route(strategy):
    return {"strategy": strategy, "reason": f"chose {strategy}"}


def notes(tracer, name):
    return [e.data for e in tracer.of_kind("note") if e.name == name]


def test_sira_first_and_a_supported_answer_ends_the_run(setup):
    agent, model = setup([route("sira"), {"phrases": []}, {"answer": "Saltmarsh", "doc_ids": [OKAFOR]}])
    tracer = MemoryTracer()
    result = agent.run(QUESTION, trace=tracer)
    assert result.answer == "Saltmarsh" and result.agent == "auto" and result.strategy == "auto"
    assert result.plan == ["sira", "iter-retgen", "explore"] and result.escalations == [] and result.caveat == ""
    assert [c["name"] for c in model.calls] == ["route", "sira_expand", "answer"]
    assert [t["node"] for t in result.trail] == ["plan_question", "sira_search", "answer_from_passages", "check",
                                                 "finish"]
    assert sum(t["tokens"] for t in result.trail) == result.usage.total_tokens
    check = notes(tracer, "check")[0]
    assert check["supported"] is True and check["signal"] == OKAFOR  # the passage that holds the answer's words
    assert notes(tracer, "plan")[0]["plan"] == result.plan
    assert result.policies["sufficiency"] == "lexical" and not result.policies["decompose"]


def test_an_unsupported_answer_escalates_to_iter_retgen_with_it_as_the_draft(setup):
    agent, _model = setup([
        route("sira"), {"phrases": []}, {"answer": "Paris", "doc_ids": [OKAFOR]},  # not in any passage
        "Bram Okafor designed the bridge.", "Okafor was born in Saltmarsh.",
        {"answer": "Saltmarsh", "doc_ids": [OKAFOR]},
    ])
    tracer = MemoryTracer()
    result = agent.run(QUESTION, trace=tracer)
    assert result.answer == "Saltmarsh" and result.caveat == ""
    (esc,) = result.escalations
    assert esc["from"] == "sira" and esc["to"] == "iter-retgen" and "'Paris'" in esc["reason"]
    assert notes(tracer, "escalate") == [esc]
    queries = [e.args["query"] for e in tracer.of_kind("retrieval")]
    assert queries[1] == f"{QUESTION} Paris"  # Iter-RetGen's round: the question with the unsupported draft
    assert len(queries) == 4  # sira's one, then T=3
    checks = notes(tracer, "check")
    assert [c["supported"] for c in checks] == [False, True] and [c["step"] for c in checks] == ["sira", "iter-retgen"]


def test_escalation_reaches_explore_which_sees_what_earlier_steps_found(setup):
    agent, model = setup([
        route("iter-retgen"), "d1", "d2", {"answer": "Paris", "doc_ids": [OKAFOR]},
        tool("grep", pattern="Okafor was born"), tool("answer", answer="Saltmarsh", doc_ids=[OKAFOR]),
    ])
    tracer = MemoryTracer()
    result = agent.run(QUESTION, trace=tracer)
    assert result.plan == ["iter-retgen", "explore"] and result.answer == "Saltmarsh"
    assert [e["to"] for e in result.escalations] == ["explore"]
    explore = model.calls[4]
    assert explore["messages"][0]["content"].startswith("You answer questions by searching a collection")
    assert "Two examples of good searches" in explore["messages"][0]["content"]  # fewshot: the stable prefix
    said = explore["messages"][2]["content"]
    assert "answered 'Paris'" in said and OKAFOR in said
    names = [t["function"]["name"] for t in explore["tools"]]
    assert names == ["grep", "read", "ls", "search", "answer"]


def test_a_tight_budget_plans_sira_alone_without_the_router_call(setup):
    agent, model = setup([{"phrases": []}, {"answer": "Saltmarsh", "doc_ids": [OKAFOR]}],
                         budget=Budget(max_tokens=2000))
    tracer = MemoryTracer()
    result = agent.run(QUESTION, trace=tracer)
    assert result.plan == ["sira"] and result.answer == "Saltmarsh"
    assert [c["name"] for c in model.calls] == ["sira_expand", "answer"]
    assert "tight budget (tokens: 2000 left" in notes(tracer, "plan")[0]["reason"]


def test_escalation_past_the_budget_answers_with_what_it_has_and_says_so(setup):
    costs = {**STEP_COSTS, "route": StepCost(0, 0), "sira": StepCost(0, 0), "iter-retgen": StepCost(5000, 0)}
    agent, model = setup([route("sira"), {"phrases": []}, {"answer": "Paris", "doc_ids": [OKAFOR]}],
                         budget=Budget(max_tokens=5000), step_costs=costs)
    tracer = MemoryTracer()
    result = agent.run(QUESTION, trace=tracer)
    assert result.answer == "Paris" and result.stop_reason == "budget:tokens"
    (esc,) = result.escalations
    assert esc["to"] is None and esc["stopped_by"].startswith("tokens: ") and "needs about 5000" in esc["stopped_by"]
    assert "escalating to iter-retgen was stopped by the budget" in result.caveat
    assert len(model.calls) == 3  # nothing ran after the check


def test_the_last_step_unsupported_keeps_the_answer_with_a_caveat(setup):
    agent, _ = setup([{"phrases": []}, {"answer": "Paris", "doc_ids": [OKAFOR]}], budget=Budget(max_tokens=2000))
    result = agent.run(QUESTION)
    assert result.answer == "Paris" and "no step of the plan was left" in result.caveat


def test_budget_running_out_inside_a_step_answers_from_what_was_found(setup):
    costs = {**STEP_COSTS, "iter-retgen": StepCost(0, 0)}  # so the plan is not cut to sira alone
    agent, _ = setup([route("iter-retgen"), "draft one", {"answer": "Paris", "doc_ids": [OKAFOR]}],
                     budget=Budget(max_steps=1), step_costs=costs)
    result = agent.run(QUESTION)
    assert result.answer == "Paris" and result.budget_exhausted == "steps" and result.answered_by == "forced"
    assert "steps budget ran out" in result.caveat and result.escalations == []


def test_decomposition_hops_find_the_bridge_then_search_for_it(setup):
    agent, model = setup([
        route("sira"),
        {"kind": "bridge", "sub_questions": ["Who designed the Kestrel Bridge?", "Where was #1 born?"]},
        {"phrases": []}, {"answer": "Bram Okafor", "doc_ids": [BRIDGE]},  # hop 1: its search, the bridge
        {"phrases": []},  # hop 2's search
        {"answer": "Saltmarsh", "doc_ids": [OKAFOR, BRIDGE]},
    ], policies=Policies.for_agent("auto"))
    tracer = MemoryTracer()
    result = agent.run(QUESTION, trace=tracer)
    assert result.answer == "Saltmarsh"
    assert [c["name"] for c in model.calls] == ["route", "decompose", "sira_expand", "bridge", "sira_expand",
                                                "answer"]
    assert [e.args["query"] for e in tracer.of_kind("retrieval")] == [
        "Who designed the Kestrel Bridge?", "Where was Bram Okafor born?"]
    dec = notes(tracer, "decompose")[0]
    assert dec["used"] and dec["kind"] == "bridge"
    # the answer saw both hops' passages
    answer_prompt = model.calls[-1]["messages"][-1]["content"]
    assert f"[{OKAFOR}]" in answer_prompt and f"[{BRIDGE}]" in answer_prompt


def test_a_decomposition_that_returns_nothing_falls_back_to_the_plain_step(setup):
    agent, _model = setup([route("sira"), "not json", "still not json", {"phrases": []},
                          {"answer": "Saltmarsh", "doc_ids": [OKAFOR]}], policies=Policies.for_agent("auto"))
    tracer = MemoryTracer()
    result = agent.run(QUESTION, trace=tracer)
    assert result.answer == "Saltmarsh"
    dec = notes(tracer, "decompose")[0]
    assert dec["used"] is False and dec["why"].startswith("no decomposition")
    assert "hop" not in [t["node"] for t in result.trail]


def test_a_decomposition_that_loops_is_cut(setup):
    # sub-questions that repeat each other or the question are dropped: nothing usable is left
    agent, _ = setup([route("sira"), {"kind": "bridge", "sub_questions": [QUESTION, "Who designed it?",
                                                                          "who designed it"]},
                      {"phrases": []}, {"answer": "Saltmarsh", "doc_ids": [OKAFOR]}],
                     policies=Policies.for_agent("auto"))
    tracer = MemoryTracer()
    agent.run(QUESTION, trace=tracer)
    dec = notes(tracer, "decompose")[0]
    assert dec["used"] is False and dec["sub_questions"] == ["Who designed it?"] and len(dec["dropped"]) == 2
    # a hop whose query repeats an earlier one is skipped, not searched again
    agent, _model = setup([route("sira"), {"kind": "comparison", "sub_questions": [
        "Who designed the Kestrel Bridge?", "#1 Who designed the Kestrel Bridge?"]},
        {"phrases": []}, {"answer": "Saltmarsh", "doc_ids": [OKAFOR]}], policies=Policies.for_agent("auto"))
    tracer = MemoryTracer()
    agent.run(QUESTION, trace=tracer)
    assert len(tracer.of_kind("retrieval")) == 1
    assert notes(tracer, "hop")[-1]["skipped"] == "repeats an earlier hop"


def test_explore_forces_a_first_search_before_an_answer(setup):
    agent, model = setup([route("react"), tool("answer", answer="Dunmore"),
                          tool("answer", answer="Saltmarsh", doc_ids=[OKAFOR])])
    tracer = MemoryTracer()
    result = agent.run(QUESTION, trace=tracer)
    assert result.plan == ["explore"] and result.answer == "Saltmarsh"
    forced = notes(tracer, "force_search")
    assert forced == [{"tool": "search", "args": {"query": QUESTION}}]
    assert [e.name for e in tracer.of_kind("tool")] == ["answer", "search", "answer"]
    obs = next(m for m in model.calls[2]["messages"] if m["role"] == "tool")["content"]
    assert obs.startswith("(You answered before searching") and OKAFOR in obs


def test_explore_constrains_doc_ids_to_those_seen_and_methods_to_the_enum(setup):
    agent, model = setup([route("react"), tool("search", query="Kestrel Bridge designer"),
                          tool("answer", answer="Saltmarsh", doc_ids=[OKAFOR])])
    agent.run(QUESTION)
    first = {t["function"]["name"]: t["function"]["parameters"] for t in model.calls[1]["tools"]}
    assert first["search"]["properties"]["method"]["enum"] == ["bm25", "sira"]
    assert "enum" not in first["read"]["properties"]["doc_id"]  # nothing seen yet: no doc id enum
    after = {t["function"]["name"]: t["function"]["parameters"] for t in model.calls[2]["tools"]}
    seen = after["read"]["properties"]["doc_id"]["enum"]
    assert OKAFOR in seen and after["answer"]["properties"]["doc_ids"]["items"]["enum"] == seen
    # switched off: the schemas are the tools' own
    agent, model = setup([route("react"), tool("search", query="Kestrel"), tool("answer", answer="Saltmarsh")],
                         policies=Policies.parse("none"))
    agent.run(QUESTION)
    assert "enum" not in {t["function"]["name"]: t["function"]["parameters"]
                          for t in model.calls[2]["tools"]}["read"]["properties"]["doc_id"]


def test_explore_sends_an_unsupported_answer_back_once(setup):
    agent, model = setup([route("react"), tool("search", query="Kestrel Bridge"),
                          tool("answer", answer="Paris", doc_ids=[OKAFOR]),
                          tool("answer", answer="Paris", doc_ids=[OKAFOR])])
    tracer = MemoryTracer()
    result = agent.run(QUESTION, trace=tracer)
    assert result.answer == "Paris"  # the second time it is taken: the check sends an answer back once
    sent_back = notes(tracer, "sufficiency")
    assert len(sent_back) == 1 and sent_back[0]["supported"] is False and sent_back[0]["sent_back"] is True
    obs = [m for m in model.calls[3]["messages"] if m["role"] == "tool"][-1]["content"]
    assert obs.startswith("(That answer is not supported by the documents")


def test_explore_with_a_model_that_never_answers_ends_on_a_budget(setup):
    agent, model = setup([route("react")], budget=Budget(max_steps=3))
    model.default = tool("grep", pattern="Kestrel")
    result = agent.run(QUESTION)
    assert result.answer is None and result.stop_reason == "budget:repeats"
    assert [t["node"] for t in result.trail][-2:] == ["force_answer", "finish"]


def test_named_strategies_keep_their_fixed_graphs_and_no_policies():
    assert Policies.for_agent("sira").active() == [] and Policies.for_agent("dci").active() == []
    assert Policies.for_agent("auto").active() == ["fewshot", "force_search", "decompose", "constrain_args",
                                                   "sufficiency=lexical"]


def test_policy_spec_parsing():
    assert Policies.parse("none").active() == []
    assert Policies.parse("fewshot,sufficiency=model").active() == ["fewshot", "sufficiency=model"]
    assert Policies.parse("default,-fewshot,no-decompose", "auto").active() == [
        "force_search", "constrain_args", "sufficiency=lexical"]
    from sleuth.errors import ConfigError

    with pytest.raises(ConfigError):
        Policies.parse("magic")
    with pytest.raises(ConfigError):
        Policies.parse("sufficiency=vibes")


def test_doc_ids_listed_by_ls_may_be_read_under_constrained_arguments(setup):
    agent, model = setup([route("react"), tool("ls", prefix="people"), tool("search", query="Kestrel"),
                          tool("answer", answer="Saltmarsh", doc_ids=[OKAFOR])])
    agent.run(QUESTION)
    after = {t["function"]["name"]: t["function"]["parameters"] for t in model.calls[3]["tools"]}
    enum = after["read"]["properties"]["doc_id"]["enum"]
    assert "people/ada_morrow.md" in enum and "people/greta_lind.md" in enum  # listed, not shown, readable


def test_the_budgets_last_answer_call_follows_force_search_and_constrain_args(sample_corpus):
    """react, two steps: a grep that finds nothing (no evidence, so it does not count as a search), then the
    step budget's last call. force_search runs the question's search before it, and constrain_args holds its
    doc_ids to what that search found; with both off the last call sees neither."""
    corpus = Corpus(sample_corpus)
    bm25 = BM25Retriever.open(corpus)

    def run(policies):
        model = ScriptedModel([tool("grep", pattern="Kestrel Bridge designer birthplace"),
                               tool("grep", pattern="nowhere to be found"),
                               tool("answer", answer="Saltmarsh", doc_ids=[OKAFOR])])
        toolkit = Toolkit([*corpus_tools(corpus), search_tool({"bm25": bm25})])
        config = AgentConfig(model=model, toolkit=toolkit, retrievers={"bm25": bm25}, corpus=corpus,
                             search_methods=["bm25"], policies=policies, budget=Budget(max_steps=2))
        tracer = MemoryTracer()
        return Agent(config, agent="react").run(QUESTION, trace=tracer), model, tracer

    on, model, tracer = run(Policies(force_search=True, constrain_args=True))
    assert on.answered_by == "forced" and on.doc_ids == [OKAFOR] and OKAFOR in on.docs_seen
    assert notes(tracer, "force_search") == [{"tool": "search", "args": {"query": QUESTION}}]
    last = model.calls[-1]
    assert any(m["role"] == "user" and m["content"].startswith("(You answered before searching")
               and OKAFOR in m["content"] for m in last["messages"])
    enum = last["tools"][0]["function"]["parameters"]["properties"]["doc_ids"]["items"]["enum"]
    assert OKAFOR in enum
    off, model, tracer = run(Policies())
    assert off.answered_by == "forced" and off.doc_ids == [] and off.dropped_doc_ids == [OKAFOR]
    assert notes(tracer, "force_search") == []
    assert "enum" not in model.calls[-1]["tools"][0]["function"]["parameters"]["properties"]["doc_ids"].get(
        "items", {})
