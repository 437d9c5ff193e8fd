"""The graphs' shapes, compared with committed Mermaid snapshots (set SLEUTH_UPDATE_SNAPSHOTS=1 to rewrite them)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sleuth.agents import AGENTS, mermaid
from sleuth.agents.graphs import compile_graph

SNAPSHOTS = Path(__file__).parent / "snapshots"


@pytest.mark.parametrize("agent", AGENTS)
def test_graph_matches_snapshot(agent):
    drawn = mermaid(agent)
    path = SNAPSHOTS / f"agent_{agent.replace('-', '_')}.mmd"
    if os.environ.get("SLEUTH_UPDATE_SNAPSHOTS") or not path.exists():
        path.write_text(drawn, encoding="utf-8")
    assert drawn == path.read_text(encoding="utf-8"), f"graph {agent} changed: rerun with SLEUTH_UPDATE_SNAPSHOTS=1"


def test_router_graph_holds_every_strategy_and_nothing_unreachable():
    graph = compile_graph("router").get_graph()
    nodes = set(graph.nodes)
    assert {"route_question", "call_model", "run_tools", "force_answer", "sira_search", "retrieve", "generate",
            "answer_from_passages", "answer_from_generation", "finish"} <= nodes
    targets = {e.target for e in graph.edges}
    assert nodes - targets == {"__start__"}


def test_router_limited_to_available_strategies():
    nodes = set(compile_graph("router", strategies=["sira"]).get_graph().nodes)
    assert "call_model" not in nodes and "sira_search" in nodes
