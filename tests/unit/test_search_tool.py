"""The agent-facing `search` and `df` tools over injected retrievers."""

from __future__ import annotations

from pathlib import Path

import pytest

from sleuth.corpus import Corpus
from sleuth.llm.fake import ScriptedModel
from sleuth.retrieval.bm25 import BM25Retriever
from sleuth.retrieval.sira import SiraParams, SiraRetriever
from sleuth.tools.base import Toolkit
from sleuth.tools.search import search_tools


@pytest.fixture()
def corpus(tmp_path: Path) -> Corpus:
    (tmp_path / "a.txt").write_text("Imatinib is a kinase inhibitor used in chronic myeloid leukemia.", "utf-8")
    (tmp_path / "b.txt").write_text("Prion disease causes protein misfolding in the brain.", "utf-8")
    (tmp_path / "c.txt").write_text("Brain imaging of leukemia patients.", "utf-8")
    return Corpus(tmp_path)


def test_search_and_df_tools(corpus: Corpus) -> None:
    bm25 = BM25Retriever.open(corpus)
    sira = SiraRetriever(bm25, ScriptedModel(default={"phrases": ["kinase inhibitor"]}),
                         params=SiraParams(max_df_ratio=0.9))
    kit = Toolkit(search_tools(corpus, {"bm25": bm25, "sira": sira}))
    assert kit.names() == ["search", "df"]
    r = kit.invoke("search", {"query": "leukemia", "k": 2})
    assert not r.is_error and r.meta["method"] == "bm25"
    assert [d["doc_id"] for d in r.data] == ["c.txt", "a.txt"]
    assert "Brain imaging" in r.text
    r = kit.invoke("search", {"query": "leukemia", "k": 2, "method": "sira"})
    assert r.data[0]["doc_id"] == "a.txt" and "kinase inhibitor" in r.text
    assert kit.invoke("search", {"query": "the of", "k": 2}).data == []
    for bad in [{"query": ""}, {"query": "x", "method": "dense"}, {"query": "x", "k": 0}, {"q": "x"}]:
        assert kit.invoke("search", bad).is_error
    d = kit.invoke("df", {"terms": ["leukemia", "kinase inhibitor", "brain leukemia"]})
    assert [t["df"] for t in d.data["terms"]] == [2, 1, 0]
    schema = kit.openai_schemas()[0]["function"]["parameters"]
    assert set(schema["properties"]) == {"query", "k", "method", "where"}
    assert schema["properties"]["where"]["anyOf"][0] == {"items": {"type": "string"}, "type": "array"}


def test_default_retriever_is_bm25(corpus: Corpus) -> None:
    kit = Toolkit(search_tools(corpus))
    assert kit.invoke("search", {"query": "prion"}).data[0]["doc_id"] == "b.txt"


def test_where_filters_every_method_of_the_tool(corpus: Corpus) -> None:
    (corpus.root / "d.md").write_text("---\nyear: 2021\n---\nLeukemia in older adults.\n", "utf-8")
    bm25 = BM25Retriever.open(corpus, rebuild=True)
    sira = SiraRetriever(bm25, ScriptedModel(default={"phrases": ["kinase inhibitor"]}),
                         params=SiraParams(max_df_ratio=0.9))
    kit = Toolkit(search_tools(corpus, {"bm25": bm25, "sira": sira}))
    for method in ("bm25", "sira"):
        r = kit.invoke("search", {"query": "leukemia", "method": method, "where": ["year>=2020"]})
        assert not r.is_error and [d["doc_id"] for d in r.data] == ["d.md"], r.text
        assert r.meta["where"] == {"filter": "year>=2020", "matching": 1, "documents": 4}
        assert "among the 1 of 4 documents where year>=2020" in r.text
        r = kit.invoke("search", {"query": "leukemia", "method": method, "where": "path=*.txt"})
        assert {d["doc_id"] for d in r.data} == {"c.txt", "a.txt"}
    r = kit.invoke("search", {"query": "leukemia", "where": ["year>=2030"]})
    assert not r.is_error and r.data == [] and "no document has metadata where year>=2030" in r.text
    for bad, error in [(["colour=red"], "UnknownFieldError"), (["year=>1"], "FilterSyntaxError"),
                       ([3], "ToolArgumentError"), (["path=[a"], "InvalidGlobError")]:
        r = kit.invoke("search", {"query": "leukemia", "where": bad})
        assert r.is_error and error in r.text, r.text  # an observation the model can correct
    r = kit.invoke("search", {"query": "leukemia", "where": ["colour=red"]})
    assert "fields that exist: format, mtime, path, size, year" in r.text



def test_concurrent_sira_searches_each_get_their_own_phrases(corpus: Corpus) -> None:
    """Two threads searching through one SIRA retriever behind one `search` tool: each observation names the
    phrases kept for *its* query. Thread A is held right after SIRA's ``run`` returns while thread B runs a whole
    search (the tool once read ``sira.last_result``, shared by every caller, so A reported B's phrases)."""
    import sys
    import threading

    phrases = {"leukemia": "kinase inhibitor", "brain": "protein misfolding"}

    def expand(messages, tools):  # type: ignore[no-untyped-def]
        user = messages[-1]["content"]
        return {"phrases": [p for q, p in phrases.items() if q in user]}

    sira = SiraRetriever(BM25Retriever.open(corpus), ScriptedModel(default=expand),
                         params=SiraParams(max_df_ratio=0.9))
    kit = Toolkit(search_tools(corpus, {"sira": sira}))
    a_paused, b_done = threading.Event(), threading.Event()
    out: dict[str, list[str]] = {}
    run_code = SiraRetriever.run.__code__

    def hold_after_run(frame, event, arg):  # type: ignore[no-untyped-def]
        if event == "call" and frame.f_code is run_code:
            def on_return(frame, event, arg):  # type: ignore[no-untyped-def]
                if event == "return":
                    a_paused.set()
                    assert b_done.wait(30)
                return on_return
            return on_return
        return None

    def search(query: str, trace: bool) -> None:
        if trace:
            sys.settrace(hold_after_run)
        try:
            out[query] = kit.invoke("search", {"query": query, "k": 2, "method": "sira"}).meta["sira"]["kept"]
        finally:
            sys.settrace(None)

    a = threading.Thread(target=search, args=("leukemia", True))
    a.start()
    assert a_paused.wait(30)
    b = threading.Thread(target=search, args=("brain", False))
    b.start()
    b.join(30)
    b_done.set()
    a.join(30)
    assert out == {"leukemia": ["kinase inhibitor"], "brain": ["protein misfolding"]}


def test_result_records_say_what_each_method_decided(corpus: Corpus) -> None:
    """bm25: a plain record (no model call, cost 0); sira: kept/rejected phrases and usage; hybrid over both: each
    list's own record, the summed usage, and the per-call tracer reaching SIRA inside it."""
    from sleuth.retrieval.base import Retriever
    from sleuth.retrieval.hybrid import HybridResult, HybridRetriever
    from sleuth.tracing.tracer import MemoryTracer

    bm25 = BM25Retriever.open(corpus)
    res = bm25.run("leukemia", 2)
    assert (res.method, res.k, res.usage.calls, res.usage.cost) == ("bm25", 2, 0, 0.0)
    assert res.decided() == {} and [h.doc_id for h in res.hits] == [h.doc_id for h in bm25.search("leukemia", 2)]
    own = MemoryTracer()
    sira = SiraRetriever(bm25, ScriptedModel(default={"phrases": ["kinase inhibitor", "zebrafish"]}),
                         params=SiraParams(max_df_ratio=0.9), tracer=own)
    hybrid = HybridRetriever([bm25, sira], fusion="rrf")
    for r in (bm25, sira, hybrid):
        assert isinstance(r, Retriever)
    per_call = MemoryTracer()
    h = hybrid.run("leukemia", 2, tracer=per_call)
    assert isinstance(h, HybridResult) and [p.method for p in h.parts] == ["bm25", "sira"]
    assert h.decided()["sira"]["kept"] == ["kinase inhibitor"]
    assert h.decided()["sira"]["rejected"][0]["phrase"] == "zebrafish"
    assert h.usage.calls == 1 and h.usage.cost == "unmeasured"
    assert "sira: expanded with: kinase inhibitor" in h.note()
    assert own.events == [] and len(per_call.of_kind("sira")) == 1
    again = HybridResult.model_validate(h.model_dump())  # the record round-trips, each part as its own record
    assert again.parts[1].decided() == h.parts[1].decided() and again == h


def test_a_retriever_without_run_cannot_be_built() -> None:
    from sleuth.retrieval.base import RetrieverBase

    class OnlySearch(RetrieverBase):
        name = "old"

        def search(self, query, k=10, *, tracer=None):  # type: ignore[no-untyped-def,override]
            return []

    with pytest.raises(TypeError, match="abstract"):
        OnlySearch()  # type: ignore[abstract]


def test_the_agents_search_tool_filters_with_and_without_an_index(make_corpus) -> None:
    from sleuth.agents.defaults import default_config, default_toolkit
    from sleuth.agents.fallback import GrepRetriever
    from sleuth.tracing import MemoryTracer

    root = make_corpus({"a.md": "---\nyear: 2021\n---\nOtters eat fish.\n",
                        "b.md": "---\nyear: 2010\n---\nOtters sleep; otters swim.\n", "c.txt": "otters"})
    config = default_config(root, model=ScriptedModel(), agent="react")
    full = next(s for s in config.toolkit.openai_schemas() if s["function"]["name"] == "search")
    assert "where" in full["function"]["parameters"]["properties"]
    # the slimmed schema a small model is shown leaves it out (a 0.5B model fills every field it sees)
    slim = next(s for s in config.react_schemas if s["function"]["name"] == "search")
    assert "where" not in slim["function"]["parameters"]["properties"]
    for tracer in (None, MemoryTracer()):  # with a tracer, the run's per-call retriever wrapper
        r = config.toolkit.invoke("search", {"query": "otters", "where": ["year>=2020"]}, tracer=tracer)
        assert not r.is_error and [d["doc_id"] for d in r.data] == ["a.md"], r.text
    kit = default_toolkit(Corpus(root), {"grep": GrepRetriever(Corpus(root))})  # no index: the grep ranking
    r = kit.invoke("search", {"query": "otters", "where": ["path=*.md", "year<2020"]}, tracer=MemoryTracer())
    assert not r.is_error and [d["doc_id"] for d in r.data] == ["b.md"], r.text
