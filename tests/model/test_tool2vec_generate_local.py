"""Generated usage with the real embedded model (Qwen2.5-Coder-0.5B): three MetaTool-like tools, five requests
asked for each. Measured with the default prompt (demonstrations, name withheld): the 0.5B model writes one request
per tool, and for flight_tracker that one repeats the description (rejected, said so). So: most tools get usage,
every kept request passes the filter and finds its tool first, and a tool left without is reported as falling back
to its description."""

from __future__ import annotations

from pathlib import Path

import pytest

from sleuth.retrieval.tools import ToolCatalog, ToolSpec
from sleuth.retrieval.tools.usage_gen import UsageGenParams, generate_usage, read_gen_records

pytestmark = [pytest.mark.model, pytest.mark.slow, pytest.mark.long]

TOOLS = [
    ToolSpec(name="currency_converter", description="Convert an amount between two currencies at today's rate."),
    ToolSpec(name="recipe_finder", description="Find cooking recipes from the ingredients you have at home."),
    ToolSpec(name="flight_tracker", description="Track the live status, delays and gate of a flight by its number."),
]


def test_local_model_writes_usage_that_tool2vec_finds(local_model, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from sleuth.retrieval.embeddings import get_embedder

    cat = ToolCatalog(TOOLS, embedder=get_embedder("minilm"), usage_dir=tmp_path / "usage")
    gen = tmp_path / "generated.jsonl"
    rep = generate_usage(cat, local_model, gen, params=UsageGenParams(n=5, concurrency=1))
    recs = read_gen_records(gen)
    print(rep.summary())  # shown with -s: tokens per tool, kept and rejected
    for r in recs.values():
        print(r.tool, r.usage.prompt_tokens, r.usage.completion_tokens, "kept", r.kept, "rejected", r.rejected)
    assert rep.errors == 0 and sorted(recs) == sorted(t.name for t in TOOLS)
    with_usage = [t.name for t in TOOLS if recs[t.name].kept]
    assert len(with_usage) >= 2, {t: r.rejected for t, r in recs.items()}
    for t in TOOLS:
        assert all(t.name not in q.casefold() for q in recs[t.name].kept)
        assert not any("zip code" in q for q in recs[t.name].kept), "a demonstration's request was copied"
        assert recs[t.name].kept or recs[t.name].rejected  # nothing proposed is lost without a reason
    assert rep.usage.calls == 3 and rep.usage.total_tokens > 0 and rep.added.tools_with_usage == len(with_usage)
    assert sorted(rep.added.fallback) == sorted(set(recs) - set(with_usage))
    # each tool's generated requests, as queries, find that tool first (its vector is their average)
    for name in with_usage:
        assert cat.search(recs[name].kept[0], k=1, method="tool2vec")[0].doc_id == name
    # a rerun asks nothing
    assert generate_usage(cat, local_model, gen, params=UsageGenParams(n=5)).usage.calls == 0
