"""`find_tools`: the tools of a catalog a request needs, as full schemas within a token budget.

For agents served through MCP, LangChain or a toolkit: ``sleuth mcp --corpus DIR --catalog tools.json`` adds it.
The result holds the best tools' OpenAI schemas (within ``budget_tokens`` of the model's tokens, the catalog's
default when the call names none) and the names of the next ones (:mod:`sleuth.retrieval.tools.budget`); a
second call with ``names`` returns those tools' schemas.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from sleuth.errors import ToolArgumentError
from sleuth.tools.base import Tool, ToolArgs, ToolResult

MAX_BUDGET = 100_000


class FindToolsArgs(ToolArgs):
    request: str = Field("", max_length=4000, description="What the user wants done, in their words.")
    k: int = Field(5, ge=1, le=50, description="How many candidate tools to consider.")
    budget_tokens: int | None = Field(
        None, ge=1, le=MAX_BUDGET, description="The most tokens the returned schemas may cost (default: the "
        "server's).")
    names: list[str] = Field(default_factory=list, max_length=50,
                             description="Instead of a request: the catalog tools whose schemas you want.")


class FindToolsResult(BaseModel):
    tools: list[dict[str, Any]]
    listed: list[str]
    budget: dict[str, Any] | None = None


def find_tools_tool(catalog: Any, *, method: str = "bm25", budget_tokens: int = 1500,
                    tokenizer: Any = None) -> Tool[FindToolsArgs]:
    """``find_tools`` over a :class:`~sleuth.retrieval.tools.catalog.ToolCatalog` ranked with ``method``;
    ``budget_tokens`` is the default budget, counted with ``tokenizer`` (see
    :func:`sleuth.llm.tokenizer.counter_for`; it is loaded once, here)."""
    from sleuth.llm.tokenizer import counter_for
    from sleuth.retrieval.tools.budget import fit_schemas

    counter = counter_for(tokenizer)

    def run(args: FindToolsArgs) -> ToolResult:
        if args.names:
            unknown = [n for n in args.names if n not in catalog.by_name]
            if unknown:
                raise ToolArgumentError(f"no such tools in the catalog: {', '.join(unknown[:10])}",
                                        hint="use names from a find_tools result")
            specs = [catalog.by_name[n].to_openai() for n in dict.fromkeys(args.names)]
            offer = fit_schemas(specs, args.budget_tokens or budget_tokens, counter)
        elif args.request.strip():
            offer = catalog.offer(args.request, args.budget_tokens or budget_tokens, args.k, method,
                                  tokenizer=counter)
        else:
            raise ToolArgumentError("find_tools needs a request (or names)", hint="pass request='what to do'")
        lines = [f"{len(offer.specs)} tool schema(s), {offer.tokens} of {offer.budget} tokens"]
        lines += [f"- {s['function']['name']}: {s['function'].get('description', '')[:160]}" for s in offer.specs]
        if offer.listed:
            lines.append("also relevant, schemas not sent (call find_tools with names=[...]): "
                         + ", ".join(offer.listed))
        if offer.omitted:
            lines.append(f"{offer.omitted} more candidate(s) did not fit even by name")
        result = FindToolsResult(tools=offer.specs, listed=offer.listed, budget=offer.summary())
        return ToolResult(text="\n".join(lines), data=result.model_dump(mode="json"))

    return Tool(
        "find_tools",
        f"Find the tools (of a catalog of {len(catalog)}) that a request needs: their full schemas, best first, "
        "within a token budget, and the names of further candidates.",
        FindToolsArgs,
        run,
        tags={"catalog"},
        output_type=FindToolsResult,
    )
