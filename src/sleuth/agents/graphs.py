"""The strategies as LangGraph graphs: ``react``, ``sira``, ``iter-retgen``, ``router`` (which holds those three
behind a first node where the model picks one), ``dci`` (grep/read/ls only, with context management) and ``auto``
(every strategy a step of one graph, with a plan it revises: :mod:`sleuth.agents.auto`).

```
react:        call_model -> run_tools -> call_model ... -> finish      (budget out -> force_answer -> finish)
sira:         sira_search -> answer_from_passages -> finish
iter-retgen:  retrieve -> generate -> ... (T rounds) -> answer_from_generation -> finish   (the paper's form)
              retrieve -> generate -> ... (T retrievals) -> answer_from_passages -> finish  (separate-call)
router:       route_question -> one of the above
dci:          call_model -> run_tools -> manage_context -> call_model ... -> finish
auto:         plan_question -> [decompose -> hop ...] | sira_search | retrieve | start_explore
              -> answer_from_passages -> check -> finish | the next step of the plan (retrieve, start_explore)
```
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from sleuth.agents import auto, dci_nodes, loop_nodes, nodes, passage_nodes
from sleuth.agents.config import AgentConfig
from sleuth.agents.state import AGENTS, AgentState
from sleuth.errors import ConfigError

# The graphs are typed with their state and their runtime context: nodes read the run's model, tools, tracer and
# budgets from ``runtime.context`` (an AgentConfig), never from closures or globals.
Graph = StateGraph[AgentState, AgentConfig, AgentState, AgentState]
CompiledGraph = CompiledStateGraph[AgentState, AgentConfig, AgentState, AgentState]

FIRST_NODE = {"react": "call_model", "sira": "sira_search", "iter-retgen": "retrieve"}


def _after_call_model(state: AgentState) -> str:
    if state.get("exhausted"):
        return "force_answer"
    if state.get("answer") is not None:
        return "finish"
    if state.get("pending"):
        return "run_tools"
    return "call_model"


def _after_run_tools(state: AgentState) -> str:
    if state.get("answer") is not None:
        return "finish"
    return "force_answer" if state.get("exhausted") else "call_model"


def _iter_retgen_answer_node(state: AgentState) -> str:
    return "answer_from_passages" if state.get("iter_retgen_answer") == "separate-call" else "answer_from_generation"


def _after_dci_tools(state: AgentState) -> str:
    step = _after_run_tools(state)
    return "manage_context" if step == "call_model" else step


def _after_retrieve(state: AgentState) -> str:
    if state.get("exhausted"):
        return _iter_retgen_answer_node(state)
    return "answer_from_passages" if state.get("last_retrieval") else "generate"


def _after_generate(state: AgentState) -> str:
    if state.get("exhausted"):
        return _iter_retgen_answer_node(state)
    return "answer_from_generation" if state.get("final_generation") else "retrieve"


def _after_route(state: AgentState) -> str:
    return FIRST_NODE[state["strategy"]]


def _add_react(g: Graph, *, dci: bool = False) -> None:
    g.add_node("call_model", nodes.node(loop_nodes.call_model))
    g.add_node("run_tools", nodes.node(loop_nodes.run_tools))
    g.add_node("force_answer", nodes.node(loop_nodes.force_answer))
    g.add_conditional_edges("call_model", _after_call_model, ["run_tools", "call_model", "force_answer", "finish"])
    if dci:  # every tool turn passes the context node before the next model call
        g.add_node("manage_context", nodes.node(dci_nodes.manage_context))
        g.add_conditional_edges("run_tools", _after_dci_tools, ["manage_context", "force_answer", "finish"])
        g.add_edge("manage_context", "call_model")
    else:
        g.add_conditional_edges("run_tools", _after_run_tools, ["call_model", "force_answer", "finish"])
    g.add_edge("force_answer", "finish")


def _add_dci(g: Graph) -> None:
    _add_react(g, dci=True)


def _add_answer(g: Graph, then: str = "finish") -> None:
    if "answer_from_passages" not in g.nodes:
        g.add_node("answer_from_passages", nodes.node(passage_nodes.answer_from_passages))
        g.add_edge("answer_from_passages", then)


def _add_sira(g: Graph, then: str = "finish") -> None:
    g.add_node("sira_search", nodes.node(passage_nodes.sira_search))
    _add_answer(g, then)
    g.add_edge("sira_search", "answer_from_passages")


def _add_iter_retgen(g: Graph, then: str = "finish") -> None:
    g.add_node("retrieve", nodes.node(passage_nodes.retrieve))
    g.add_node("generate", nodes.node(passage_nodes.generate))
    g.add_node("answer_from_generation", nodes.node(passage_nodes.answer_from_generation))
    g.add_edge("answer_from_generation", then)
    _add_answer(g, then)
    ends = ["answer_from_passages", "answer_from_generation"]
    g.add_conditional_edges("retrieve", _after_retrieve, ["generate", *ends])
    g.add_conditional_edges("generate", _after_generate, ["retrieve", *ends])


def _add_auto(g: Graph) -> None:
    """Every strategy one step away: the fixed pipelines' nodes answer into ``check``, which finishes or runs the
    next step of the plan; explore is the react loop over every tool."""
    _add_sira(g, then="check")
    _add_iter_retgen(g, then="check")
    _add_react(g)
    g.add_node("plan_question", nodes.node(auto.plan_question))
    g.add_node("decompose", nodes.node(auto.decompose))
    g.add_node("hop", nodes.node(auto.hop))
    g.add_node("check", nodes.node(auto.check))
    g.add_node("start_explore", nodes.node(auto.start_explore))
    firsts = ["sira_search", "retrieve", "start_explore"]
    g.add_edge(START, "plan_question")
    g.add_conditional_edges("plan_question", auto.next_step, ["decompose", *firsts])
    g.add_conditional_edges("decompose", auto.next_step, ["hop", *firsts])
    g.add_conditional_edges("hop", auto.after_hop, ["hop", "answer_from_passages"])
    g.add_conditional_edges("check", auto.next_step, ["finish", "retrieve", "start_explore"])
    g.add_edge("start_explore", "call_model")


_BUILDERS: dict[str, Callable[[Graph], None]] = {
    "react": _add_react, "sira": _add_sira, "iter-retgen": _add_iter_retgen,
}


def build_graph(agent: str = "router", strategies: list[str] | None = None) -> Graph:
    """The uncompiled graph for ``agent`` (router | auto | dci | react | sira | iter-retgen).

    For the router, ``strategies`` limits the strategies it can route to (default: all three).
    """
    if agent not in AGENTS:
        raise ConfigError(f"unknown agent {agent!r}", hint=f"use one of: {', '.join(AGENTS)}")
    g: Graph = StateGraph(AgentState, context_schema=AgentConfig)
    g.add_node("finish", nodes.node(nodes.finish))
    g.add_edge("finish", END)
    if agent == "router":
        chosen = list(strategies or _BUILDERS)
        for s in chosen:
            _BUILDERS[s](g)
        g.add_node("route_question", nodes.node(nodes.route_question))
        g.add_edge(START, "route_question")
        g.add_conditional_edges("route_question", _after_route, [FIRST_NODE[s] for s in chosen])
    elif agent == "auto":
        _add_auto(g)
    elif agent == "dci":
        _add_dci(g)
        g.add_edge(START, "call_model")
    else:
        _BUILDERS[agent](g)
        g.add_edge(START, FIRST_NODE[agent])
    return g


def compile_graph(
    agent: str = "router", *, checkpointer: Any = None, strategies: list[str] | None = None
) -> CompiledGraph:
    return build_graph(agent, strategies).compile(checkpointer=checkpointer, name=f"sleuth-{agent}")


def mermaid(agent: str) -> str:
    """The graph as a Mermaid diagram (what the snapshot tests compare)."""
    return compile_graph(agent).get_graph().draw_mermaid()
