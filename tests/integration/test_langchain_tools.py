"""sleuth tools as LangChain BaseTools, run by a real LangGraph ToolNode inside a compiled graph."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langchain_core", reason="needs the `langchain` extra (langchain-core)")

from langchain_core.messages import AIMessage, ToolMessage  # noqa: E402
from langchain_core.tools import BaseTool  # noqa: E402
from langgraph.graph import END, START, MessagesState, StateGraph  # noqa: E402
from langgraph.prebuilt import ToolNode  # noqa: E402

from sleuth.integrations.langchain_tools import langchain_tools  # noqa: E402


def _graph(tools: list[Any]) -> Any:
    g = StateGraph(MessagesState)
    g.add_node("tools", ToolNode(tools))
    g.add_edge(START, "tools")
    g.add_edge("tools", END)
    return g.compile()


def _run(tools: list[Any], calls: list[dict[str, Any]]) -> list[ToolMessage]:
    msg = AIMessage(content="", tool_calls=[{**c, "type": "tool_call"} for c in calls])
    out = _graph(tools).invoke({"messages": [msg]})["messages"][1:]
    assert all(isinstance(m, ToolMessage) for m in out)
    return sorted(out, key=lambda m: m.tool_call_id)


def test_tools_are_basetools_with_sleuth_schemas(sample_corpus: Path) -> None:
    tools = langchain_tools(sample_corpus)
    names = [t.name for t in tools]
    assert {"ls", "grep", "read", "search", "df"} <= set(names)
    for t in tools:
        assert isinstance(t, BaseTool)
        assert t.description
    grep = next(t for t in tools if t.name == "grep")
    schema = grep.tool_call_schema.model_json_schema()
    assert "pattern" in schema["properties"] and "pattern" in schema["required"]


def test_toolnode_runs_sleuth_tools(sample_corpus: Path) -> None:
    tools = langchain_tools(sample_corpus, include=["grep", "read", "search", "df"])
    out = _run(
        tools,
        [
            {"id": "1", "name": "grep", "args": {"pattern": "Okafor", "files_with_matches": True}},
            {"id": "2", "name": "read", "args": {"doc_id": "people/bram_okafor.md"}},
            {"id": "3", "name": "search", "args": {"query": "who designed the Kestrel Bridge", "k": 3}},
            {"id": "4", "name": "df", "args": {"terms": ["bridge"]}},
        ],
    )
    assert [m.status for m in out] == ["success"] * 4
    assert "people/bram_okafor.md" in out[0].content
    assert "Kestrel Bridge" in out[1].content
    assert out[1].artifact["doc_id"] == "people/bram_okafor.md"  # sleuth's structured data rides along
    assert "projects/kestrel_bridge.txt" in out[2].content
    assert out[3].artifact["terms"][0]["df"] >= 1


def test_bad_calls_become_error_tool_messages_and_the_graph_finishes(sample_corpus: Path) -> None:
    tools = langchain_tools(sample_corpus, include=["grep", "read"])
    out = _run(
        tools,
        [
            {"id": "1", "name": "read", "args": {"doc_id": "../../etc/passwd"}},
            {"id": "2", "name": "grep", "args": {"pattern": "("}},
            {"id": "3", "name": "grep", "args": {"pattern": "x", "bogus": 1}},
            {"id": "4", "name": "teleport", "args": {}},
            {"id": "5", "name": "read", "args": {"doc_id": "places/dunmore.md"}},
        ],
    )
    assert [m.status for m in out] == ["error", "error", "error", "error", "success"]
    assert "PathOutsideCorpusError" in out[0].content and "root:" not in out[0].content
    assert "InvalidPatternError" in out[1].content
    assert "bogus" in out[2].content
    assert "teleport" in out[3].content
    assert "Dunmore" in out[4].content


def test_real_faults_are_reported_with_their_hint() -> None:
    from sleuth.errors import IndexMissingError
    from sleuth.tools.base import Tool, ToolArgs, Toolkit

    class Q(ToolArgs):
        query: str

    def run(args: Q) -> Any:
        raise IndexMissingError("no BM25 index at /c/.sleuth/bm25")

    tools = langchain_tools(toolkit=Toolkit([Tool("search", "Search.", Q, run)]))
    out = _run(tools, [{"id": "1", "name": "search", "args": {"query": "bridge"}}])
    assert out[0].status == "error"
    assert "IndexMissingError" in out[0].content and "sleuth index" in out[0].content  # the hint


def test_needs_a_corpus_or_a_toolkit() -> None:
    with pytest.raises(ValueError):
        langchain_tools()
