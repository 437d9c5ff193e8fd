"""The schema budget holds in the prompt the embedded model actually sees (201-tool MetaTool catalog)."""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import shared_path

ROOT = Path(__file__).resolve().parents[2]


def _post(state: dict[str, Any], path: str, body: dict[str, Any]) -> Any:
    rq = urllib.request.Request(state["url"] + path, data=json.dumps(body).encode(), headers={
        "Content-Type": "application/json", "Authorization": f"Bearer {state['token']}"})
    with urllib.request.urlopen(rq, timeout=60) as r:
        return json.loads(r.read())


def _prompt_tokens(state: dict[str, Any], messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> int:
    """Tokens of the prompt llama.cpp renders for ``messages`` with ``tools`` (its chat template, its tokenizer)."""
    prompt = _post(state, "/apply-template", {"messages": messages, "tools": tools})["prompt"]
    return len(_post(state, "/tokenize", {"content": prompt})["tokens"])


def test_retrieved_schemas_cost_the_rendered_prompt_what_the_budget_counted(local_model: Any) -> None:
    sys.path.insert(0, str(ROOT / "examples"))
    from tool_retrieval_agent import DOC_REQUESTS, metatool_requests, metatool_specs

    from sleuth.integrations.openai_tools import openai_tools
    from sleuth.llm.tokenizer import counter_for
    from sleuth.retrieval.tool_catalog import ToolCatalog

    data = shared_path("metatool")
    catalog = ToolCatalog.from_openai(metatool_specs(data))
    counter = counter_for(local_model)
    assert counter.exact, counter.how  # the GGUF file's own tokenizer, not a tiktoken estimate
    local_model.server.connect()
    state = local_model.server.read_state()
    corpus = ROOT / "examples" / "corpus"
    base, _ = openai_tools(corpus, include=["search", "read"])
    requests = [r for r, _ in DOC_REQUESTS + metatool_requests(data, 6, 0)]
    checked = 0
    for request in requests:
        messages = [{"role": "user", "content": request}]
        without = _prompt_tokens(state, messages, base)
        for budget in (120, 300, 700):
            specs, dispatch = openai_tools(corpus, include=["search", "read"], catalog=catalog, query=request, k=10,
                                           budget_tokens=budget, tokenizer=counter)
            offer = dispatch.offer
            added = _prompt_tokens(state, messages, specs) - without
            assert added == offer.tokens, (request, budget, offer.summary())  # counted exactly
            assert added <= budget
            assert offer.specs, "the best tool fits any of these budgets"
            checked += 1
    assert checked == 3 * len(requests)


def test_the_201_tool_example_holds_every_request_to_the_budget(local_model: Any) -> None:
    import subprocess

    data = shared_path("metatool")
    p = subprocess.run([sys.executable, str(ROOT / "examples" / "tool_retrieval_agent.py"), "--metatool", str(data),
                        "--no-model", "-k", "10", "--budget-tokens", "300", "--limit", "100", "--json"],
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    summary = out["summary"]
    assert summary["tools_in_catalog"] == 201 and summary["requests"] == 102
    assert "GGUF" in summary["tokenizer"]
    assert all(r["schema_tokens"] <= 300 for r in out["rows"]) and summary["schema_tokens_max"] <= 300
    assert summary["schema_tokens_all_tools"] > 40 * 300  # the whole catalog would not fit 40 times over
    assert all(r["offered"][2:] and len(r["offered"]) - 2 + len(r["named"]) <= 11 for r in out["rows"])
