"""The `workspace_grep` tool (issue #13): grep inside the top n BM25 documents of a query; the workspace (query, n,
method, doc ids) in the trace event and the result; a listing without a pattern; the grep's caps and errors; its
OpenAI schema; and the toolset option that adds it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import MEDICAL_DOCS


@pytest.fixture()
def kit(make_corpus):  # type: ignore[no-untyped-def]
    from sleuth.corpus import Corpus
    from sleuth.retrieval.bm25 import BM25Retriever
    from sleuth.tools.base import Toolkit
    from sleuth.tools.workspace import workspace_tool

    docs = {**MEDICAL_DOCS, "g.html": "<html><title>Heart page</title><body>heart failure clinic</body></html>"}
    corpus = Corpus(make_corpus(docs))
    return corpus, Toolkit([workspace_tool(corpus, BM25Retriever.open(corpus))])


def test_grep_sees_only_the_workspace(kit) -> None:  # type: ignore[no-untyped-def]
    from sleuth.tools.grep import GrepArgs, grep
    from sleuth.tracing import MemoryTracer

    corpus, toolkit = kit
    everywhere = {m.doc_id for m in grep(corpus, GrepArgs(pattern="blood")).matches}
    assert everywhere == {"a.txt", "c.txt", "sub/e.txt", "sub/f.txt"}
    tracer = MemoryTracer()
    res = toolkit.invoke("workspace_grep", {"query": "insulin glucose", "n": 2, "pattern": "blood"}, tracer=tracer)
    assert not res.is_error, res.text
    ws = res.data["workspace"]
    assert ws == {"query": "insulin glucose", "n": 2, "method": "bm25", "size": 2}
    grep_part = res.data["grep"]
    assert {m["doc_id"] for m in grep_part["matches"]} == {"c.txt", "sub/f.txt"}  # the two insulin documents
    assert res.text.startswith("workspace: the top 2 documents of a bm25 search for 'insulin glucose' (n=2)")
    [event] = [e for e in tracer.events if e.kind == "tool"]
    assert event.args["query"] == "insulin glucose" and event.args["n"] == 2
    assert event.data["workspace"] == {"query": "insulin glucose", "n": 2, "method": "bm25",
                                       "doc_ids": ["c.txt", "sub/f.txt"]}
    assert event.data["doc_ids"] == ["c.txt", "sub/f.txt"]  # what the observation showed


def test_converted_documents_are_grepped_in_their_text(kit) -> None:  # type: ignore[no-untyped-def]
    _, toolkit = kit
    res = toolkit.invoke("workspace_grep", {"query": "heart failure clinic", "n": 3, "pattern": "clinic|Heart page"})
    assert [(m["doc_id"], m["line"]) for m in res.data["grep"]["matches"]][:1] == [("g.html", 1)]


def test_listing_without_a_pattern(kit) -> None:  # type: ignore[no-untyped-def]
    _, toolkit = kit
    res = toolkit.invoke("workspace_grep", {"query": "arteries", "n": 5})
    assert [h["doc_id"] for h in res.data["hits"]] == ["sub/e.txt", "a.txt"] and res.data["grep"] is None
    assert "1. sub/e.txt (score" in res.text


def test_empty_workspace_and_bad_arguments(kit) -> None:  # type: ignore[no-untyped-def]
    _, toolkit = kit
    res = toolkit.invoke("workspace_grep", {"query": "zebra", "pattern": "x"})
    assert not res.is_error and "nothing to grep" in res.text and res.data["workspace"]["size"] == 0
    for bad in ({"query": "heart", "n": 0}, {"query": "", "pattern": "x"}, {"query": "heart", "n": 5000},
                {"query": "heart", "pattern": "x", "surprise": 1}):
        assert toolkit.invoke("workspace_grep", bad).is_error, bad
    res = toolkit.invoke("workspace_grep", {"query": "heart", "pattern": "(unclosed"})
    assert res.is_error and res.error_type == "InvalidPatternError"


def test_caps_and_notes_as_grep(kit) -> None:  # type: ignore[no-untyped-def]
    _, toolkit = kit
    res = toolkit.invoke("workspace_grep", {"query": "heart blood", "n": 10, "pattern": "e", "max_matches": 2})
    g = res.data["grep"]
    assert len(g["matches"]) == 2 and g["not_shown_matches"] > 0 and res.truncated
    assert "more matches in" in res.text


def test_a_document_removed_after_the_index_is_left_out(kit) -> None:  # type: ignore[no-untyped-def]
    corpus, toolkit = kit
    (Path(corpus.root) / "c.txt").unlink()
    res = toolkit.invoke("workspace_grep", {"query": "insulin glucose", "n": 2, "pattern": "blood"})
    assert not res.is_error and {m["doc_id"] for m in res.data["grep"]["matches"]} == {"sub/f.txt"}


def test_schema_and_toolset_option(make_corpus) -> None:  # type: ignore[no-untyped-def]
    from sleuth.integrations.toolset import build_toolkit

    root = make_corpus(MEDICAL_DOCS)
    assert "workspace_grep" not in build_toolkit(root).toolkit.names()
    kit = build_toolkit(root, workspace=True).toolkit
    assert kit.names() == ["ls", "grep", "read", "df", "search", "workspace_grep"]
    schema = kit["workspace_grep"].openai_schema()
    assert schema["type"] == "function" and schema["function"]["name"] == "workspace_grep"
    params = schema["function"]["parameters"]
    assert params["required"] == ["query"] and {"query", "n", "pattern", "glob", "max_matches"} <= set(
        params["properties"])
    res = kit.invoke("workspace_grep", {"query": "exercise", "n": 3, "pattern": "pressure"})
    assert [m["doc_id"] for m in res.data["grep"]["matches"]] == ["sub/f.txt"]
