"""Handing an agent the schemas of the tools it most likely needs within a token budget.

A retrieved tool costs the prompt its whole schema (name, description, parameter JSON schema), and schemas vary a
lot in size (MetaTool's one-sentence plugins: 60-110 tokens; a Gorilla API record: several hundred). Given the
catalog's ranking and a budget, :func:`fit_schemas` sends the full schemas of the longest prefix of the ranking
that fits, and names the other top-k tools in one small extra tool, :data:`MORE_TOOLS`, whose description lists
them and whose call returns their schemas (the host adds them on the next turn:
:attr:`sleuth.integrations.openai_tools.ToolDispatcher.specs`). What is sent, the extra tool included, never
exceeds the budget; names that do not fit are left out and counted (``omitted``). When the listing of even one name
does not fit beside the prefix, the prefix's last schema gives way to it (the agent learns that more tools
exist), down to the best tool's, which stays whole.

Tokens are counted with the model's own tokenizer (:func:`sleuth.llm.tokenizer.counter_for`) on each schema as
the chat template embeds it: a line break and ``json.dumps(spec)`` (Qwen2.5's template puts each tool's JSON on
a line inside ``<tools>``; with the embedded model the count equals what the schemas add to the rendered prompt,
token for token); the template's own wrapper text is fixed per prompt and not part of the budget.
The ranking prefix is kept on purpose: a smaller, lower-ranked schema is never sent in place of a better one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sleuth.errors import ToolArgumentError
from sleuth.llm.tokenizer import TokenCounter

MORE_TOOLS = "more_tools"


@dataclass
class SchemaOffer:
    """What an agent is handed: ``specs`` (full OpenAI schemas, best first), ``listed`` (the next tools, named in
    :attr:`listing`), their ``tokens`` against ``budget`` and how they were counted (``counter``)."""

    specs: list[dict[str, Any]]
    listed: list[str]
    budget: int
    tokens: int
    tool_tokens: dict[str, int]
    counter: dict[str, Any]
    omitted: int = 0  # top-k tools neither sent nor named: their names did not fit either
    listing: dict[str, Any] | None = None  # the MORE_TOOLS spec, when some tools are only named
    by_name: dict[str, dict[str, Any]] = field(default_factory=dict)  # every top-k tool's schema (for MORE_TOOLS)

    @property
    def names(self) -> list[str]:
        return [s["function"]["name"] for s in self.specs]

    def all_specs(self) -> list[dict[str, Any]]:
        """The specs to pass as ``tools=``: the full ones, then the listing tool when there is one."""
        return [*self.specs, *([self.listing] if self.listing else [])]

    def summary(self) -> dict[str, Any]:
        return {"budget_tokens": self.budget, "tokens": self.tokens, "sent": self.names, "listed": self.listed,
                "omitted": self.omitted, "tool_tokens": self.tool_tokens, "counted_with": self.counter}


def spec_tokens(spec: dict[str, Any], counter: TokenCounter) -> int:
    """What one tool's schema adds to a prompt: a line break and its JSON, as Qwen2.5's chat template writes each
    tool inside ``<tools>`` (``tests/model/test_tool_budget_local.py`` checks the sum against the server's
    rendered prompt)."""
    return counter.count("\n" + json.dumps(spec, ensure_ascii=False))


def listing_spec(names: Sequence[str]) -> dict[str, Any]:
    """The extra tool that names tools not sent in full; calling it returns their schemas."""
    return {"type": "function", "function": {
        "name": MORE_TOOLS,
        "description": "Get the schemas of more tools that may fit this request (not loaded, to save space): "
                       "call this with the names you need, from the list below.",
        "parameters": {"type": "object", "properties": {"names": {"type": "array", "items": {
            "type": "string", "enum": list(names)}}}, "required": ["names"]},
    }}


def fit_schemas(ranked: Sequence[dict[str, Any]], budget: int, counter: TokenCounter) -> SchemaOffer:
    """The offer for the ranked OpenAI ``specs`` (best first) within ``budget`` tokens (see the module doc)."""
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ToolArgumentError(f"budget_tokens must be a positive integer, got {budget!r}")
    names = [s["function"]["name"] for s in ranked]
    if MORE_TOOLS in names:
        raise ToolArgumentError(f"a catalog tool is named {MORE_TOOLS!r}, the name of the listing tool",
                                hint="rename that tool")
    cost = {n: spec_tokens(s, counter) for n, s in zip(names, ranked, strict=True)}
    prefix = [0]
    for n in names:
        prefix.append(prefix[-1] + cost[n])
    n_full = max(i for i, used in enumerate(prefix) if used <= budget)
    listed: list[str] = []
    listing = None
    listing_tokens = 0
    # the tools after the prefix are named in the listing tool, as many as fit, best first; when not even one
    # name fits, the last full schema gives way to the listing (the agent should know more tools exist), except
    # the best tool's
    while n_full < len(names) and listing is None:
        rest, room = names[n_full:], budget - prefix[n_full]
        for m in range(len(rest), 0, -1):
            spec = listing_spec(rest[:m])
            t = spec_tokens(spec, counter)
            if t <= room:
                listed, listing, listing_tokens = rest[:m], spec, t
                break
        if listing is None:
            if n_full <= 1:  # the best tool stays whole: callable now beats named
                break
            n_full -= 1
    used = prefix[n_full]
    rest = names[n_full:]
    return SchemaOffer(
        specs=list(ranked[:n_full]), listed=listed, budget=budget, tokens=used + listing_tokens,
        tool_tokens=cost, counter=counter.describe(), omitted=len(rest) - len(listed), listing=listing,
        by_name=dict(zip(names, ranked, strict=True)),
    )
