"""`sleuth mcp`: serve a corpus's tools to chat assistants over MCP (stdio or streamable HTTP)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from sleuth.cli.common import API_BASE_OPTION, API_KEY_ENV_OPTION


def register(app: typer.Typer) -> None:
    app.command("mcp")(mcp)


def mcp(
    corpus: Path = typer.Option(..., "--corpus", "-c", help="The folder of documents to serve (read-only)."),
    transport: str = typer.Option("stdio", "--transport", "-t", help="stdio (for desktop assistants) or http."),
    host: str = typer.Option(
        "127.0.0.1",
        "--host",
        help="HTTP transport: address to bind. Anything but loopback needs --allow-host and a token.",
    ),
    port: int = typer.Option(8765, "--port", help="HTTP transport: port (the endpoint is /mcp)."),
    allow_host: list[str] = typer.Option(
        [],
        "--allow-host",
        help="HTTP transport: a host name (or name:port) clients use to reach the server, checked against their "
        "Host and Origin headers; repeatable. Required with a non-loopback --host.",
    ),
    token: str = typer.Option(
        None,
        "--token",
        envvar="SLEUTH_MCP_TOKEN",
        show_default=False,
        help="HTTP transport: require `Authorization: Bearer TOKEN` on every request (prefer the SLEUTH_MCP_TOKEN "
        "variable: a command line is visible to other users). Required with a non-loopback --host.",
    ),
    tools: str = typer.Option(
        "", "--tools", help="Comma-separated tool names to serve (default: every tool available for the corpus)."
    ),
    model: str = typer.Option(
        "",
        "--model",
        help="Model for the `ask` tool (`local`, a litellm string). Without it, `ask` is not served: the "
        "assistant is the model.",
    ),
    api_base: str = API_BASE_OPTION,
    api_key_env: str = API_KEY_ENV_OPTION,
    budget: str = typer.Option(
        "", "--budget", help="Budget for each `ask` run, comma-separated: steps=6, tokens=20000, seconds=120 "
        "(default: the agent's)."
    ),
    reranker: str = typer.Option(
        "",
        "--reranker",
        help="Reranker for the `rerank` tool: listwise or first (use --model), icr (needs sleuth-search[attention]). "
        "Default with --model: listwise.",
    ),
    methods: str = typer.Option(
        "",
        "--methods",
        help="Search methods besides bm25 (comma-separated: sira, dense, hybrid). Default: those usable without "
        "building anything (dense/hybrid when their index exists; sira with --model).",
    ),
    build_index: bool = typer.Option(
        True,
        "--build-index/--no-build-index",
        help="Build a missing BM25 index (and the dense index for methods named in --methods) into CORPUS/.sleuth "
        "before serving, and rebuild a stale one. With --no-build-index, search and df need a fresh index.",
    ),
    max_result_chars: int = typer.Option(
        100_000, "--max-result-chars", min=1000,
        help="The most characters one tool result (text plus structured copy) or resource read sends; longer ones "
        "are cut, saying so. Lower it for hosts with a smaller message limit.",
    ),
    catalog: Path = typer.Option(
        None, "--catalog", help="A tool catalog (JSON/JSONL of OpenAI specs or an MCP listing): adds `find_tools`, "
        "which returns the schemas a request needs within a token budget."),
    catalog_method: str = typer.Option("bm25", "--catalog-method", help="find_tools ranking: bm25, dense, hybrid."),
    tool_budget: int = typer.Option(
        1500, "--tool-budget", min=1, help="find_tools' default schema budget, in tokens of --model's tokenizer "
        "(the GGUF file's own for local models)."),
    tool_tokenizer: str = typer.Option("", "--tool-tokenizer",
                                       help="Whose tokens --tool-budget counts (default: --model, else local)."),
    log_level: str = typer.Option("warning", "--log-level", help="Log level for messages on stderr."),
) -> None:
    """Serve ls, grep, read, search, df (and rerank, ask with --model) as MCP tools, confined to the corpus; the
    documents as resources (sleuth://doc/{id}) and the search strategies as prompts."""
    import logging

    from sleuth.cli.output import cli_errors

    if transport not in ("stdio", "http"):
        raise typer.BadParameter("use stdio or http", param_hint="--transport")
    allow_hosts = [h.strip() for entry in allow_host for h in entry.split(",") if h.strip()]
    if transport == "stdio" and allow_hosts:  # (a token, maybe from the environment, is unused over stdio)
        raise typer.BadParameter("--allow-host applies to --transport http", param_hint="--allow-host")
    with cli_errors(False):
        from sleuth.integrations import mcp_server
        from sleuth.integrations.toolset import build_toolkit

        if transport == "http":  # refuse an exposed server before building anything
            mcp_server.check_http_exposure(host, allow_hosts, token or None)

        mcp_server._stderr_logging(getattr(logging, log_level.upper(), logging.WARNING))
        options: dict[str, Any] = {"build_index": build_index}
        if budget.strip():
            from sleuth.agents.budget import Budget

            options["budget"] = Budget.parse(budget)
        if reranker.strip():
            options["reranker"] = reranker.strip()
        if methods.strip():
            options["methods"] = [m.strip() for m in methods.split(",") if m.strip()]
        if model:
            from sleuth.cli.common import get_model

            options["model"] = get_model(model, api_base, api_key_env)
        include = [t.strip() for t in tools.split(",") if t.strip()] or None
        extra = []
        if catalog is not None:
            from sleuth.retrieval.tool_catalog import ToolCatalog
            from sleuth.tools.find_tools import find_tools_tool

            emb = None
            if catalog_method in ("dense", "hybrid"):
                from sleuth.retrieval.embeddings import get_embedder

                emb = get_embedder(None, cache=True)
            cat = ToolCatalog.from_file(catalog, embedder=emb)
            extra.append(find_tools_tool(cat, method=catalog_method, budget_tokens=tool_budget,
                                         tokenizer=tool_tokenizer or model or "local"))
        try:
            toolset = build_toolkit(corpus, include=include, extra_tools=extra, **options)
            instructions = mcp_server.default_instructions(toolset.toolkit, toolset.corpus.root, toolset.omitted)
            if transport == "http":
                guard = "token required" if token else "no token: loopback only"
                typer.echo(
                    f"sleuth MCP server on http://{host}:{port}/mcp ({guard}; {', '.join(toolset.toolkit.names())})",
                    err=True,
                )
            mcp_server.run(toolset.toolkit, transport=transport, host=host, port=port, instructions=instructions,
                           allow_hosts=allow_hosts or None, token=(token or None) if transport == "http" else None,
                           corpus=toolset.corpus, max_result_chars=max_result_chars)
        finally:
            close = getattr(options.get("model"), "close", None)
            if close is not None:
                close()
