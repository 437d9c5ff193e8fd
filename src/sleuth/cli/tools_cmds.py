"""`sleuth tools search`: pick the tools a request needs from a catalog of OpenAI or MCP tool specs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from sleuth.cli.common import API_BASE_OPTION, API_KEY_ENV_OPTION
from sleuth.cli.output import JSON_OPTION, Output, run_command

tools_app = typer.Typer(help="Tool retrieval over a catalog of function-calling specs.", no_args_is_help=True)


@tools_app.command("search")
def search_cmd(
    request: str = typer.Argument(..., help="What the user wants done."),
    catalog: Path = typer.Option(..., "--catalog", help="JSON/JSONL file: OpenAI tool specs or an MCP tool listing."),
    k: int = typer.Option(5, "--k", "-k", min=1, help="How many tools to return."),
    method: str = typer.Option("bm25", "--method", "-m", help="bm25, dense, hybrid or llm-query."),
    embedder: str = typer.Option(None, "--embedder", help="Embedding model for dense/hybrid (default: minilm)."),
    model: str = typer.Option(None, "--model", help="Chat model for llm-query (default: SLEUTH_MODEL or local)."),
    api_base: str = API_BASE_OPTION,
    api_key_env: str = API_KEY_ENV_OPTION,
    llm_base: str = typer.Option("dense", "--llm-base", help="Retriever for llm-query's generated queries."),
    fusion: str = typer.Option(None, "--fusion", help="hybrid: rrf, zscore, minmax, vstash or adaptive."),
    as_json: bool = JSON_OPTION,
) -> None:
    """The K tools most likely needed for REQUEST; --json prints specs ready for `tools=` of a chat completion."""

    def work() -> Any:
        from sleuth.retrieval.tool_catalog import METHODS, ToolCatalog

        if method not in METHODS:
            from sleuth.errors import ConfigError

            raise ConfigError(f"unknown method {method!r}", hint=f"use one of {', '.join(METHODS)}")
        emb = None
        if method in ("dense", "hybrid") or (method == "llm-query" and llm_base != "bm25"):
            from sleuth.retrieval.embeddings import get_embedder

            emb = get_embedder(embedder, cache=True)  # tool texts are embedded once per machine
        chat = None
        if method == "llm-query":
            from sleuth.cli.common import get_model

            chat = get_model(model, api_base, api_key_env)
        cat = ToolCatalog.from_file(catalog, embedder=emb, model=chat, fusion=fusion)
        tracer = None
        if method == "hybrid":
            from sleuth.tracing import MemoryTracer

            tracer = MemoryTracer()
        hits = cat.search(request, k, method, llm_base=llm_base, tracer=tracer)
        data: dict[str, Any] = {
            "request": request,
            "method": method,
            "k": k,
            "catalog_size": len(cat),
            "tools": [cat.by_name[h.doc_id].to_openai() for h in hits],
            "scores": [{"name": h.doc_id, "score": h.score} for h in hits],
            "query_truncated": bool(hits and hits[0].metadata.get("query_truncated")),
            "warnings": cat.warnings,
        }
        fused = [e for e in (tracer.events if tracer is not None else []) if e.name == "hybrid"]
        if fused:
            data["fusion"] = {k_: fused[0].data[k_] for k_ in ("fusion", "weights", "signals")}
        if hits and "generated_queries" in hits[0].metadata:
            data["generated_queries"] = hits[0].metadata["generated_queries"]
            data["usage"] = cat.usage
        lines = [f"{len(hits)} of {len(cat)} tools ({method}):"]
        if fused:
            w = fused[0].data["weights"]
            lines[0] += f" fusion {cat.fusion}, weights " + ", ".join(f"{n} {x:.3f}" for n, x in w.items())
        for n, h in enumerate(hits, 1):
            desc = cat.by_name[h.doc_id].description.replace("\n", " ")
            lines.append(f"{n:>2}. {h.doc_id}  [{h.score:.3f}]  {desc[:100]}")
        if data.get("generated_queries"):
            lines.append("generated queries: " + " | ".join(data["generated_queries"]))
        if data["query_truncated"]:
            lines.append("note: the request is longer than the embedding window; only its start was embedded")
        lines += [f"warning: {w}" for w in cat.warnings[:5]]
        return Output(data, "\n".join(lines))

    run_command(as_json, work, typer.echo)


def register(app: typer.Typer) -> None:
    app.add_typer(tools_app, name="tools")
