"""tool2vec end to end with the real MiniLM: the CLI (usage add / show / search --method tool2vec) and, on
MetaTool's seeded 80/20 split by query, usage vectors that beat the description vectors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

pytestmark = pytest.mark.slow


def test_cli_usage_add_show_and_search(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sleuth.cli.main import app, register_all
    from tests.unit.test_tool_catalog import SPECS

    register_all(["sleuth.cli.tools_cmds"])
    monkeypatch.setenv("SLEUTH_HOME", str(tmp_path / "home"))
    cat = tmp_path / "tools.json"
    cat.write_text(json.dumps(SPECS))
    usage = tmp_path / "usage.jsonl"
    lines = [("do I need an umbrella in Oslo", "get_weather"), ("is it freezing outside", "get_weather"),
             ("how many yen for 30 euros", "convert_currency"), ("play some jazz", "spotify")]
    usage.write_text("".join(json.dumps({"request": r, "tool": t}) + "\n" for r, t in lines))
    run = CliRunner().invoke
    r = run(app, ["tools", "usage", "add", str(usage), "--catalog", str(cat), "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["added"] == 3 and data["unknown_tools"] == {"spotify": 1} and len(data["fallback"]) == 3
    assert (tmp_path / ".sleuth" / "tools" / "tools.json" / "usage" / "meta.json").is_file()
    r = run(app, ["tools", "search", "will it snow tonight", "--catalog", str(cat), "--method", "tool2vec",
                  "--k", "3", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["tools"][0]["function"]["name"] == "get_weather"
    assert data["represented_by"]["get_weather"] == "usage"
    assert any("represented by their description" in w for w in data["warnings"])
    r = run(app, ["tools", "search", "will it snow tonight", "--catalog", str(cat), "--method", "tool2vec",
                  "--usage-fusion", "zscore", "--usage-fuse-with", "hybrid", "--k", "3", "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["tools"][0]["function"]["name"] == "get_weather", r.output
    r = run(app, ["tools", "search", "will it snow", "--catalog", str(cat), "--method", "tool2vec",
                  "--usage-fusion", "zscore", "--usage-fuse-with", "sparse", "--json"])
    assert r.exit_code == 2 and json.loads(r.output)["error"] == "ConfigError", r.output
    r = run(app, ["tools", "usage", "show", "--catalog", str(cat)])
    assert r.exit_code == 0 and "3 usage requests (3 given) for 2 of 5 tools" in r.output, r.output
    r = run(app, ["tools", "usage", "add", str(tmp_path / "nope.jsonl"), "--catalog", str(cat), "--json"])
    assert r.exit_code == 2 and json.loads(r.output)["error"] == "DataError"


@pytest.mark.data
def test_usage_vectors_beat_description_vectors_on_metatool() -> None:
    from sleuth.evals.datasets.tools import load_tools, split_by_query, usage_records
    from sleuth.retrieval.embeddings import get_embedder
    from sleuth.retrieval.tools import ToolCatalog, ToolSpec, evaluate_tool_retrieval
    from tests.conftest import shared_path

    es = load_tools(shared_path("metatool"))
    single = [q for q in es.questions if len(q.relevance) == 1]
    train, test = split_by_query(single, seed=0)
    assert (len(train), len(test)) == (16492, 4122)  # seeded: the split of docs/results/evals.md
    assert not {q.question.casefold() for q in train} & {q.question.casefold() for q in test}
    train, test = train[:2000], test[:200]  # a slice, to stay near a minute
    specs = [ToolSpec(name=t.id, description=t.description) for t in es.tools]
    emb = get_embedder("minilm", cache=True)  # $SLEUTH_HOME's vector cache
    cat, cat_c = ToolCatalog(specs, embedder=emb), ToolCatalog(specs, embedder=emb, usage_form="centroid")
    rep = cat.add_usage(usage_records(train))
    cat_c.add_usage(usage_records(train))
    assert rep.added + rep.duplicates == 2000 and rep.added > 1900 and rep.tools_with_usage > 150
    queries, gold = {q.id: q.question for q in test}, {q.id: list(q.relevance) for q in test}
    t2v = evaluate_tool_retrieval(cat, queries, gold, "tool2vec")
    dense = evaluate_tool_retrieval(cat, queries, gold, "dense")
    centroid = evaluate_tool_retrieval(cat_c, queries, gold, "tool2vec")
    # ~10 requests per tool: measured 0.730 (mean) and 0.706 (dense); the full 80% split: docs/results/evals.md
    assert t2v["ndcg@10"] > dense["ndcg@10"] + 0.01, (t2v, dense)
    assert centroid["ndcg@10"] > t2v["ndcg@10"], (centroid, t2v)


@pytest.mark.data
def test_an_eval_sets_tools_keep_their_names_as_titles_and_the_prompt_withholds_them() -> None:
    """RestBench's tools are ids ("4") with endpoint names; generated usage is asked with the name withheld."""
    from sleuth.evals.build import _tool_catalog
    from sleuth.evals.datasets.tools import load_tools
    from sleuth.retrieval.tools.usage_gen import UsageGenParams, messages_for
    from tests.conftest import shared_path

    es = load_tools(shared_path("mtrb"), "restbench")
    cat = _tool_catalog(es, None)
    by_id = {t.id: t for t in es.tools}
    assert all(t.title == by_id[t.name].name and t.name.isdigit() for t in cat.tools)
    tool = next(t for t in cat.tools if t.title == "GET /tv/popular")
    user = messages_for(tool, UsageGenParams())[1]["content"]
    assert user.startswith("Tool: (name withheld)\nWhat it does: this tool. ") and "/tv/popular" not in user
