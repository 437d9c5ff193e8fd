"""The schema budget (sleuth.retrieval.tools.budget) on hand-made specs with a counter whose counts are obvious."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sleuth.errors import ToolArgumentError
from sleuth.llm.tokenizer import TokenCounter
from sleuth.retrieval.tools.budget import MORE_TOOLS, fit_schemas, listing_spec, spec_tokens

CHARS = TokenCounter("chars", "one token per character", True, len)  # spec_tokens = 1 + len(json)


def _spec(name: str, desc_len: int) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "description": "x" * desc_len,
                                             "parameters": {"type": "object", "properties": {}}}}


RANKED = [_spec("alpha", 100), _spec("beta", 300), _spec("gamma", 400), _spec("delta", 400)]
COST = {s["function"]["name"]: 1 + len(json.dumps(s)) for s in RANKED}


def _listing(names: list[str]) -> int:
    return 1 + len(json.dumps(listing_spec(names)))


def test_spec_tokens_counts_the_line_and_json_the_template_writes() -> None:
    assert spec_tokens(RANKED[0], CHARS) == COST["alpha"]


def test_the_longest_ranking_prefix_that_fits_is_sent_and_the_rest_named() -> None:
    budget = COST["alpha"] + COST["beta"] + _listing(["gamma", "delta"])
    offer = fit_schemas(RANKED, budget, CHARS)
    assert offer.names == ["alpha", "beta"] and offer.listed == ["gamma", "delta"] and offer.omitted == 0
    assert offer.tokens == budget
    assert [s["function"]["name"] for s in offer.all_specs()] == ["alpha", "beta", MORE_TOOLS]
    assert offer.listing["function"]["parameters"]["properties"]["names"]["items"]["enum"] == ["gamma", "delta"]


def test_a_smaller_lower_ranked_schema_never_replaces_a_better_one() -> None:
    # big does not fit after alpha; small would, but the prefix stops at big: small is only named
    ranked = [RANKED[0], _spec("big", 2000), _spec("small", 5)]
    budget = COST["alpha"] + 1 + len(json.dumps(ranked[2])) + _listing(["big", "small"])
    offer = fit_schemas(ranked, budget, CHARS)
    assert offer.names == ["alpha"] and offer.listed == ["big", "small"]


def test_names_that_do_not_fit_are_left_out_and_counted() -> None:
    budget = COST["alpha"] + _listing(["beta"])  # room for the listing of one name only
    offer = fit_schemas(RANKED, budget, CHARS)
    assert offer.names == ["alpha"] and offer.listed == ["beta"] and offer.omitted == 2
    assert offer.tokens <= budget


def test_the_last_schema_gives_way_to_a_listing_but_the_best_stays_whole() -> None:
    # alpha and beta fit exactly, with no room for any listing: beta gives way to a listing of beta, gamma, delta
    budget = COST["alpha"] + COST["beta"]
    offer = fit_schemas(RANKED, budget, CHARS)
    assert offer.names == ["alpha"] and offer.listed[0] == "beta" and offer.tokens <= budget
    # alpha alone fits, no listing fits beside it: alpha stays, the rest are omitted
    offer = fit_schemas(RANKED, COST["alpha"], CHARS)
    assert offer.names == ["alpha"] and offer.listed == [] and offer.omitted == 3 and offer.listing is None


def test_a_budget_below_the_best_schema_sends_only_a_listing_or_nothing() -> None:
    ranked = [_spec("big", 2000), *RANKED]
    offer = fit_schemas(ranked, _listing(["big"]), CHARS)
    assert offer.names == [] and offer.listed == ["big"]
    offer = fit_schemas(RANKED, 5, CHARS)
    assert offer.names == [] and offer.listed == [] and offer.omitted == 4 and offer.tokens == 0


@pytest.mark.parametrize("budget", [0, -3, 1.5, True, None])
def test_a_bad_budget_is_a_tool_argument_error(budget: Any) -> None:
    with pytest.raises(ToolArgumentError):
        fit_schemas(RANKED, budget, CHARS)


def test_a_catalog_tool_named_like_the_listing_tool_is_refused() -> None:
    with pytest.raises(ToolArgumentError, match=MORE_TOOLS):
        fit_schemas([_spec(MORE_TOOLS, 10)], 1000, CHARS)


def test_more_tools_adds_the_asked_schemas_to_the_dispatchers_specs(sample_corpus: Any) -> None:
    from sleuth.integrations.openai_tools import openai_tools
    from sleuth.retrieval.tool_catalog import ToolCatalog

    catalog = ToolCatalog.from_openai([_spec("weather_forecast", 40), _spec("weather_history", 400),
                                       _spec("stock_price", 40)])
    budget = 1 + len(json.dumps(_spec("weather_forecast", 40))) + _listing(["weather_history", "stock_price"])
    specs, dispatch = openai_tools(sample_corpus, include=["read"], catalog=catalog, query="weather forecast",
                                   k=3, budget_tokens=budget, tokenizer=CHARS)
    assert [s["function"]["name"] for s in specs] == ["read", "weather_forecast", MORE_TOOLS]
    assert dispatch.offer.listed[0] == "weather_history"
    call = {"id": "c1", "function": {"name": MORE_TOOLS, "arguments": '{"names": ["weather_history"]}'}}
    out = dispatch([call])[0]["content"]
    assert out.startswith("1 tool schema(s) added") and '"weather_history"' in out
    assert [s["function"]["name"] for s in dispatch.specs] == ["read", "weather_forecast", "weather_history",
                                                               MORE_TOOLS]
    # a name that was not listed, and a malformed call, come back to the model as errors; nothing is added
    for args in ('{"names": ["delete_everything"]}', '{"names": 3}', "{not json"):
        bad = {"id": "c2", "function": {"name": MORE_TOOLS, "arguments": args}}
        assert "ToolArgumentError" in dispatch([bad])[0]["content"]
    assert len(dispatch.specs) == 4
    # the added tool is now offered: a call without a handler says so rather than "unknown tool"
    again = {"id": "c3", "function": {"name": "weather_history", "arguments": "{}"}}
    assert "has no handler" in dispatch([again])[0]["content"]


def test_budget_without_a_catalog_is_refused(sample_corpus: Any) -> None:
    from sleuth.integrations.openai_tools import openai_tools

    with pytest.raises(ToolArgumentError, match="catalog"):
        openai_tools(sample_corpus, include=["read"], budget_tokens=100)


def test_find_tools_returns_schemas_within_the_budget_and_names_the_rest() -> None:
    from sleuth.retrieval.tool_catalog import ToolCatalog
    from sleuth.tools.find_tools import find_tools_tool

    catalog = ToolCatalog.from_openai([_spec("weather_forecast", 40), _spec("weather_history", 400),
                                       _spec("stock_price", 40)])
    tool = find_tools_tool(catalog, budget_tokens=600, tokenizer=CHARS)
    res = tool.invoke({"request": "weather forecast", "k": 3})
    assert [t["function"]["name"] for t in res.data["tools"]] == ["weather_forecast"]
    assert res.data["listed"][0] == "weather_history" and res.data["budget"]["tokens"] <= 600
    res = tool.invoke({"names": ["weather_history"], "budget_tokens": 1000})
    assert [t["function"]["name"] for t in res.data["tools"]] == ["weather_history"]
    assert tool.invoke({"names": ["nope"]}).is_error
    assert tool.invoke({"request": "  "}).is_error


def test_counters_for_api_models_say_whether_they_are_exact() -> None:
    from sleuth.llm.tokenizer import counter_for

    assert counter_for("gpt-4o").exact and "o200k" in counter_for("gpt-4o").how
    other = counter_for("anthropic/claude-sonnet-4")
    assert not other.exact and "estimate" in other.how and other.count("hello world") > 0
    assert counter_for(CHARS) is CHARS


def test_without_transformers_or_a_cached_tokenizer_a_gguf_model_counts_with_tiktoken(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from sleuth.errors import ConfigError
    from sleuth.llm import tokenizer

    weights = tmp_path / "model.gguf"
    weights.write_bytes(b"GGUF")
    monkeypatch.setitem(sys.modules, "transformers", None)  # import fails
    with pytest.raises(ConfigError, match="transformers"):
        tokenizer.gguf_tokenizer(weights)
    monkeypatch.setattr("sleuth.llm.local.resolve_local_model", lambda spec: (weights, "k"))
    counter = tokenizer.counter_for("local")
    assert not counter.exact and "tiktoken" in counter.how
