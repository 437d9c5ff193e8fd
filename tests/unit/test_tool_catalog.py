"""ToolCatalog: loading OpenAI / MCP / Python tools, bad input, BM25 retrieval, llm-query control flow, metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sleuth.errors import ConfigError, ToolArgumentError
from sleuth.llm.fake import ScriptedModel
from sleuth.retrieval.tool_catalog import (
    ToolCatalog,
    ToolCatalogError,
    ToolSpec,
    evaluate_tool_retrieval,
    parse_generated_queries,
    spec_from_callable,
    split_name,
)


def fn(name: str, desc: str, **props: str) -> dict:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": desc,
            "parameters": {
                "type": "object",
                "properties": {p: {"type": "string", "description": d} for p, d in props.items()},
                "required": list(props)[:1],
            },
        },
    }


SPECS = [
    fn("get_weather", "Get the current weather forecast for a city", city="the city name"),
    fn("searchMovies", "Search for movies by title and return their ids", title="movie title"),
    fn("send_email", "Send an email message to a recipient", to="recipient address", body="message text"),
    fn("convert_currency", "Convert an amount of money between currencies", amount="amount", target="currency code"),
    fn("book_flight", "Book a flight ticket between two airports", origin="departure airport"),
]


def test_openai_specs_bm25_retrieve_returns_specs() -> None:
    cat = ToolCatalog.from_openai(SPECS)
    assert len(cat) == 5 and cat.warnings == []
    out = cat.retrieve("what's the weather like in Paris tomorrow?", k=2)
    assert out[0] == SPECS[0]  # ready for tools=, unchanged
    hits = cat.search("email the report to my boss", k=3)
    assert hits[0].doc_id == "send_email" and hits[0].source == "bm25"
    assert cat.search("find the movie with title Alien", k=1)[0].doc_id == "searchMovies"
    # the name is indexed as words; parameter descriptions too
    assert cat.search("departure airport", k=1)[0].doc_id == "book_flight"


def test_bm25_returns_only_matching_tools() -> None:
    cat = ToolCatalog.from_openai(SPECS)
    assert cat.search("zzzz qqqq", k=3) == []  # no shared term: nothing, rather than arbitrary tools


def test_mcp_listing_and_python_callables(tmp_path: Path) -> None:
    listing = {"tools": [{"name": "read_file", "title": "Read File", "description": "Read a file", "inputSchema": {
        "type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}]}
    cat = ToolCatalog.from_mcp(listing)
    assert cat.tools[0].source == "mcp" and cat.tools[0].display_name() == "Read File"
    assert "title" not in cat.tools[0].to_openai()["function"]  # OpenAI specs have no title
    assert cat.retrieve("read the file notes.txt", 1)[0]["function"]["parameters"]["required"] == ["path"]

    def get_stock_price(ticker: str, exchange: str = "NYSE") -> float:
        """Look up the latest stock price.

        Args:
            ticker: The stock symbol, e.g. AAPL.
            exchange (str): Where it trades.

        Returns:
            The price.
        """
        return 0.0

    spec = spec_from_callable(get_stock_price)
    assert spec.description == "Look up the latest stock price."
    props = spec.parameters["properties"]
    assert props["ticker"] == {"type": "string", "description": "The stock symbol, e.g. AAPL."}
    assert props["exchange"]["default"] == "NYSE" and spec.parameters["required"] == ["ticker"]
    cat2 = ToolCatalog.from_callables([get_stock_price])
    assert cat2.retrieve("price of AAPL stock", 1)[0]["function"]["name"] == "get_stock_price"
    with pytest.raises(ToolCatalogError):
        spec_from_callable(lambda x: x)

    p = tmp_path / "mcp.json"
    p.write_text(json.dumps(listing))
    assert ToolCatalog.from_file(p).tools[0].name == "read_file"
    q = tmp_path / "tools.jsonl"
    q.write_text("\n".join(json.dumps(s) for s in SPECS))
    assert len(ToolCatalog.from_file(q)) == 5


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(ToolCatalogError, match="no catalog file"):
        ToolCatalog.from_file(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("[{not json")
    with pytest.raises(ToolCatalogError, match="not valid JSON"):
        ToolCatalog.from_file(bad)
    bad.write_text(json.dumps({"name": "x"}))
    with pytest.raises(ToolCatalogError, match="JSON list"):
        ToolCatalog.from_file(bad)


def test_empty_catalog_is_an_error() -> None:
    with pytest.raises(ToolCatalogError, match="empty") as e:
        ToolCatalog.from_openai([])
    assert e.value.hint


def test_duplicate_names_are_an_error() -> None:
    with pytest.raises(ToolCatalogError, match="duplicate tool names: 'get_weather'"):
        ToolCatalog.from_openai([*SPECS, fn("get_weather", "Another weather tool")])


def test_tool_without_description_is_indexed_by_name_with_a_warning() -> None:
    specs = [*SPECS, {"type": "function", "function": {"name": "translate_text", "parameters": {
        "type": "object", "properties": {"target_language": {"type": "string"}}}}}]
    cat = ToolCatalog.from_openai(specs)
    assert cat.warnings == ["tool 'translate_text' has no description; it is indexed by its name and parameters only"]
    assert cat.search("translate this text into German", 1)[0].doc_id == "translate_text"
    assert "description" not in cat.retrieve("translate text", 1)[0]["function"]
    with pytest.raises(ToolCatalogError, match="no description"):
        ToolCatalog.from_openai(specs, strict=True)


@pytest.mark.parametrize(
    ("params", "why"),
    [
        (["city"], "expected a JSON object"),
        ({"type": "string"}, 'top-level "type" must be "object"'),
        ({"type": "object", "properties": ["city"]}, '"properties" must be an object'),
        ({"type": "object", "properties": {"city": "string"}}, "has a str instead of a schema"),
        ({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["town"]}, "not in properties"),
        ({"type": "object", "properties": {"city": {"type": "strng"}}}, "malformed parameter schema"),
    ],
)
def test_malformed_schema_is_an_error(params: object, why: str) -> None:
    spec = {"type": "function", "function": {"name": "get_weather", "description": "d", "parameters": params}}
    with pytest.raises(ToolCatalogError, match="tool 'get_weather': malformed parameter schema") as e:
        ToolCatalog.from_openai([spec])
    assert why in str(e.value)


def test_nameless_tool_and_non_function_type() -> None:
    with pytest.raises(ToolCatalogError, match="no name"):
        ToolCatalog.from_openai([{"type": "function", "function": {"description": "x"}}])
    with pytest.raises(ToolCatalogError, match="not a function tool"):
        ToolCatalog.from_openai([{"type": "code_interpreter"}])


def test_bad_requests() -> None:
    cat = ToolCatalog.from_openai(SPECS)
    with pytest.raises(ToolArgumentError):
        cat.search("   ", 3)
    with pytest.raises(ToolArgumentError):
        cat.search("weather", 0)
    with pytest.raises(ConfigError, match="unknown tool retrieval method"):
        cat.search("weather", 3, method="magic")
    with pytest.raises(ConfigError, match="needs a chat model"):
        cat.search("weather", 3, method="llm-query", llm_base="bm25")


def test_llm_query_rewrites_and_interleaves() -> None:
    model = ScriptedModel(["1. Get the weather forecast for a city\n2. Book a flight ticket between airports\n"])
    cat = ToolCatalog.from_openai(SPECS, model=model)
    hits = cat.search("I'm going to Rome next week, sort out my trip and tell me if I need an umbrella", 2,
                      method="llm-query", llm_base="bm25")
    assert [h.doc_id for h in hits] == ["get_weather", "book_flight"]  # first hit of each generated line
    assert hits[0].metadata["generated_queries"] == [
        "Get the weather forecast for a city", "Book a flight ticket between airports"]
    prompt = model.calls[0]["messages"][0]["content"]
    assert "sort out my trip" in prompt and "describing what that tool does" in prompt
    assert cat.usage.calls == 1


def test_llm_query_falls_back_to_the_request_when_the_model_says_nothing() -> None:
    cat = ToolCatalog.from_openai(SPECS, model=ScriptedModel(["   \n"]))
    hits = cat.search("convert 20 dollars to euros currency", 1, method="llm-query", llm_base="bm25")
    assert hits[0].doc_id == "convert_currency"
    assert hits[0].metadata["generated_queries"] == ["convert 20 dollars to euros currency"]


def test_parse_generated_queries() -> None:
    text = '- Tool: Search flights\n* "Get hotel prices"\n\n3) Tool 3: Rent a car\n```\n'
    assert parse_generated_queries(text) == ["Search flights", "Get hotel prices", "Rent a car"]
    assert split_name("getWeatherForecast") == "get Weather Forecast"
    assert split_name("GET /movie/{movie_id}/credits") == "GET movie movie id credits"
    assert split_name("PDF&URLTool") == "PDF URL Tool"


@pytest.mark.slow  # ranx compiles its numba kernels on first use (~10 s)
def test_evaluate_tool_retrieval_by_hand_and_against_ranx() -> None:
    cat = ToolCatalog([ToolSpec(name=s["function"]["name"], description=s["function"]["description"],
                                parameters=s["function"]["parameters"]) for s in SPECS])
    queries = {"q1": "weather forecast for Oslo", "q2": "email the flight booking", "q3": "zzz"}
    gold = {"q1": ["get_weather"], "q2": ["send_email", "book_flight"], "q3": ["searchMovies"]}
    r = evaluate_tool_retrieval(cat, queries, gold, "bm25", ks=(1, 3))
    ranked = {q: [h.doc_id for h in cat.search(t, 10)] for q, t in queries.items()}
    assert ranked["q1"][0] == "get_weather" and ranked["q3"] == []
    r1 = (1 + len({"send_email", "book_flight"} & set(ranked["q2"][:1])) / 2 + 0) / 3
    assert r["recall@1"] == pytest.approx(r1, abs=1e-4)
    assert r["sufficiency@3"] == pytest.approx((1 + float({"send_email", "book_flight"} <= set(ranked["q2"][:3]))) / 3,
                                              abs=1e-4)
    from ranx import Qrels, Run, evaluate

    run = {q: {d: 10.0 - i for i, d in enumerate(ds)} or {"none": 0.0} for q, ds in ranked.items()}
    ref = evaluate(Qrels({q: {d: 1 for d in g} for q, g in gold.items()}), Run(run), ["ndcg@10", "recall@3"])
    assert r["ndcg@10"] == pytest.approx(ref["ndcg@10"], abs=1e-3)
    assert r["recall@3"] == pytest.approx(ref["recall@3"], abs=1e-3)
    assert r["n"] == 3


def test_llm_query_keeps_the_requests_own_ranking_first() -> None:
    cat = ToolCatalog.from_openai(SPECS, model=ScriptedModel(["Book a flight ticket"]))  # a poor rewrite
    hits = cat.search("convert 20 dollars into euros currency", 2, method="llm-query", llm_base="bm25")
    assert [h.doc_id for h in hits] == ["convert_currency", "book_flight"]


def test_tool_rankers_fuse_in_the_shared_hybrid_retriever():
    """The catalog's ``hybrid`` method fuses ToolBM25 and ToolDense with HybridRetriever, which calls ``run`` on
    each: both implement the Retriever protocol (they had only ``search`` and raised AttributeError)."""
    import numpy as np

    from sleuth.retrieval.base import Retriever
    from sleuth.retrieval.hybrid import HybridRetriever
    from sleuth.retrieval.tools.rankers import ToolBM25, ToolDense

    names = ["get_weather", "send_email", "book_flight"]
    texts = ["weather forecast for a city", "send an email message", "book a flight ticket"]
    vectors = np.eye(3, dtype=np.float32)
    query = "weather forecast"
    bm = ToolBM25(names, texts)
    dense = ToolDense(names, texts, vectors, embedder=None, query_vectors={query: vectors[0]})
    assert isinstance(bm, Retriever) and isinstance(dense, Retriever)
    assert bm.run(query, 2).hits[0].doc_id == "get_weather"
    hits = HybridRetriever([bm, dense], fusion="rrf").search(query, 2)
    assert hits[0].doc_id == "get_weather"
