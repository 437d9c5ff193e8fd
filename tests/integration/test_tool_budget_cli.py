"""The schema budget from the shell (`sleuth tools search --budget-tokens`) and over MCP (`find_tools`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.unit.test_tool_catalog import SPECS


def test_tools_search_holds_the_schemas_to_the_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sleuth.cli.main import app, register_all
    from sleuth.llm.tokenizer import counter_for
    from sleuth.retrieval.tools.budget import MORE_TOOLS, spec_tokens

    register_all(["sleuth.cli.tools_cmds"])
    monkeypatch.setenv("SLEUTH_HOME", str(tmp_path / "home"))
    cat = tmp_path / "tools.json"
    cat.write_text(json.dumps(SPECS))
    counter = counter_for("gpt-4o")
    run = CliRunner().invoke
    r = run(app, ["tools", "search", "weather in Oslo", "--catalog", str(cat), "--k", "5", "--json"])
    full = json.loads(r.output)["tools"]
    budget = spec_tokens(full[0], counter) + 60
    r = run(app, ["tools", "search", "weather in Oslo", "--catalog", str(cat), "--k", "5", "--budget-tokens",
                  str(budget), "--tokenizer", "gpt-4o", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    names = [t["function"]["name"] for t in data["tools"]]
    assert names[0] == full[0]["function"]["name"] and len(names) < len(full) + 1
    assert sum(spec_tokens(t, counter) for t in data["tools"]) == data["budget"]["tokens"] <= budget
    assert data["budget"]["counted_with"]["tokenizer"].startswith("tiktoken o200k")
    if data["budget"]["listed"]:
        assert names[-1] == MORE_TOOLS
    r = run(app, ["tools", "search", "weather in Oslo", "--catalog", str(cat), "--budget-tokens", str(budget),
                  "--tokenizer", "gpt-4o"])
    assert r.exit_code == 0 and f"schema budget {budget} tokens" in r.output, r.output
    r = run(app, ["tools", "search", "weather", "--catalog", str(cat), "--budget-tokens", "0"])
    assert r.exit_code == 2


pytest.importorskip("mcp", reason="the MCP server needs the `mcp` extra")

import anyio  # noqa: E402
from mcp import Client  # noqa: E402

from tests.integration.mcp_helpers import sleuth_stdio, write_corpus  # noqa: E402


def test_mcp_find_tools_serves_schemas_within_the_budget(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path)
    cat = tmp_path / "tools.json"
    cat.write_text(json.dumps(SPECS))

    async def main() -> dict[str, Any]:
        params = sleuth_stdio(corpus, "--catalog", str(cat), "--tool-budget", "150", "--tool-tokenizer", "gpt-4o")
        async with Client(params, read_timeout_seconds=60) as client:
            listed = {t.name for t in (await client.list_tools()).tools}
            assert "find_tools" in listed and "grep" in listed
            res = await client.call_tool("find_tools", {"request": "weather in Oslo", "k": 5})
            assert not res.is_error
            bad = await client.call_tool("find_tools", {"names": ["no_such_tool"]})
            assert bad.is_error or "no such tools" in bad.content[0].text
            return dict(res.structured_content or {})

    data = anyio.run(main)
    assert data["tools"] and data["tools"][0]["function"]["name"] == "get_weather"
    assert data["budget"]["tokens"] <= 150 and data["budget"]["budget_tokens"] == 150
