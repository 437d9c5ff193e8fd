"""`sleuth tools search`: pick the tools a request needs from a catalog of OpenAI or MCP tool specs.
`sleuth tools usage add|generate|show`: the catalog's usage requests for ``--method tool2vec``, kept in
``<catalog folder>/.sleuth/tools/<catalog file name>/`` (``--usage-dir`` elsewhere)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from sleuth.cli.common import API_BASE_OPTION, API_KEY_ENV_OPTION
from sleuth.cli.output import JSON_OPTION, Output, run_command

tools_app = typer.Typer(help="Tool retrieval over a catalog of function-calling specs.", no_args_is_help=True)
usage_app = typer.Typer(help="Usage requests of a catalog's tools (for --method tool2vec).", no_args_is_help=True)
tools_app.add_typer(usage_app, name="usage")
CATALOG = typer.Option(..., "--catalog", help="JSON/JSONL file: OpenAI tool specs or an MCP tool listing.")
USAGE_CATALOG = typer.Option(None, "--catalog", help="JSON/JSONL file: OpenAI tool specs or an MCP tool listing.")
DATA = typer.Option(None, "--data", help="Or the tools of an evaluation set (as `sleuth eval tools --data`).")
SUBSET = typer.Option(None, "--subset", help="With --data: which set inside it (gorilla: torchhub, ...).")
USAGE_DIR = typer.Option(None, "--usage-dir", help="Where the usage index is kept (default: beside the catalog).")
EMBEDDER = typer.Option(None, "--embedder", help="Embedding model for dense/hybrid/tool2vec (default: minilm).")


def state_dir(catalog: Path) -> Path:
    """The catalog's own state folder: ``<catalog folder>/.sleuth/tools/<catalog file name>``."""
    return catalog.resolve().parent / ".sleuth" / "tools" / catalog.name


def _catalog(catalog: Path | None, usage_dir: Path | None, embedder: str | None, data: str | None = None,
             subset: str | None = None) -> tuple[Any, Path]:
    """The catalog (a file, or an evaluation set's tools as `sleuth eval tools` builds them) and its state folder
    (an evaluation set's: ``$SLEUTH_HOME/tools/<set name>``)."""
    from sleuth.retrieval.embeddings import get_embedder
    from sleuth.retrieval.tool_catalog import ToolCatalog

    emb = get_embedder(embedder, cache=True)
    if (catalog is None) == (data is None):
        from sleuth.errors import UsageError

        raise UsageError("pass one of --catalog FILE or --data DIR", hint="e.g. --catalog tools.json")
    if catalog is not None:
        where = usage_dir.parent if usage_dir else state_dir(catalog)
        return ToolCatalog.from_file(catalog, embedder=emb, usage_dir=usage_dir or where / "usage"), where
    from sleuth.config import sleuth_home
    from sleuth.evals.build import _tool_catalog
    from sleuth.evals.datasets.tools import load_tools

    es = load_tools(data, subset)  # type: ignore[arg-type]
    where = usage_dir.parent if usage_dir else sleuth_home() / "tools" / es.name
    cat = _tool_catalog(es, None, usage_dir=usage_dir or where / "usage")
    cat.embedder = emb
    return cat, where


@tools_app.command("search")
def search_cmd(
    request: str = typer.Argument(..., help="What the user wants done."),
    catalog: Path = CATALOG,
    k: int = typer.Option(5, "--k", "-k", min=1, help="How many tools to return."),
    method: str = typer.Option("bm25", "--method", "-m", help="bm25, dense, hybrid, llm-query or tool2vec."),
    embedder: str = EMBEDDER,
    model: str = typer.Option(None, "--model", help="Chat model for llm-query (default: SLEUTH_MODEL or local)."),
    api_base: str = API_BASE_OPTION,
    api_key_env: str = API_KEY_ENV_OPTION,
    llm_base: str = typer.Option("dense", "--llm-base", help="Retriever for llm-query's generated queries."),
    fusion: str = typer.Option(None, "--fusion", help="hybrid: rrf, zscore, minmax, vstash or adaptive."),
    usage_dir: Path = USAGE_DIR,
    usage_form: str = typer.Option("mean", "--usage-form", help="tool2vec: mean (the paper's) or centroid."),
    usage_fusion: str = typer.Option(None, "--usage-fusion",
                                     help="tool2vec: fuse with the description ranking (rrf, zscore, ...)."),
    usage_fuse_with: str = typer.Option("dense", "--usage-fuse-with",
                                        help="With --usage-fusion: the description's dense ranking, or hybrid (its "
                                             "BM25 and dense rankings)."),
    budget_tokens: int = typer.Option(None, "--budget-tokens", min=1,
                                      help="Send full schemas only while they fit in this many tokens; name the "
                                           "other top-K tools in a `more_tools` tool."),
    tokenizer: str = typer.Option(None, "--tokenizer",
                                  help="With --budget-tokens: whose tokens count (a model string; default --model, "
                                       "else local: the GGUF file's own tokenizer)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """The K tools most likely needed for REQUEST; --json prints specs ready for `tools=` of a chat completion."""

    def work() -> Any:
        from sleuth.retrieval.tool_catalog import METHODS, ToolCatalog

        if method not in METHODS:
            from sleuth.errors import ConfigError

            raise ConfigError(f"unknown method {method!r}", hint=f"use one of {', '.join(METHODS)}")
        emb = None
        if method in ("dense", "hybrid", "tool2vec") or (method == "llm-query" and llm_base != "bm25"):
            from sleuth.retrieval.embeddings import get_embedder

            emb = get_embedder(embedder, cache=True)  # tool texts are embedded once per machine
        chat = None
        if method == "llm-query":
            from sleuth.cli.common import get_model

            chat = get_model(model, api_base, api_key_env)
        cat = ToolCatalog.from_file(catalog, embedder=emb, model=chat, fusion=fusion, usage_form=usage_form,
                                    usage_fusion=usage_fusion, usage_fuse_with=usage_fuse_with,
                                    usage_dir=usage_dir or state_dir(catalog) / "usage")
        tracer = None
        if method in ("hybrid", "tool2vec"):
            from sleuth.tracing import MemoryTracer

            tracer = MemoryTracer()
        hits = cat.search(request, k, method, llm_base=llm_base, tracer=tracer)
        specs = [cat.by_name[h.doc_id].to_openai() for h in hits]
        offer = None
        if budget_tokens is not None:
            from sleuth.llm.tokenizer import counter_for
            from sleuth.retrieval.tools.budget import fit_schemas

            offer = fit_schemas(specs, budget_tokens, counter_for(tokenizer or model or "local"))
            specs = offer.all_specs()
        data: dict[str, Any] = {
            "request": request,
            "method": method,
            "k": k,
            "catalog_size": len(cat),
            "tools": specs,
            "scores": [{"name": h.doc_id, "score": h.score} for h in hits],
            "query_truncated": bool(hits and hits[0].metadata.get("query_truncated")),
            "warnings": cat.warnings,
        }
        fused = [e for e in (tracer.events if tracer is not None else []) if e.name == "hybrid"]
        if fused:
            data["fusion"] = {k_: fused[0].data[k_] for k_ in ("fusion", "weights", "signals")}
        if method == "tool2vec":
            data["represented_by"] = {h.doc_id: h.metadata.get("represented_by") for h in hits}
            data["warnings"] = cat.warnings + cat.usage_index().report([t.name for t in cat.tools]).warnings()
        if hits and "generated_queries" in hits[0].metadata:
            data["generated_queries"] = hits[0].metadata["generated_queries"]
            data["usage"] = cat.usage
        if offer is not None:
            data["budget"] = offer.summary()
        lines = [f"{len(hits)} of {len(cat)} tools ({method}):"]
        if fused:
            w = fused[0].data["weights"]
            lines[0] += f" fusion {cat.fusion}, weights " + ", ".join(f"{n} {x:.3f}" for n, x in w.items())
        sent = set(offer.names) if offer is not None else None
        listed = set(offer.listed) if offer is not None else set()
        for n, h in enumerate(hits, 1):
            desc = cat.by_name[h.doc_id].description.replace("\n", " ")
            mark = "" if sent is None else ("  (schema sent)" if h.doc_id in sent else
                                            "  (named in more_tools)" if h.doc_id in listed else "  (left out)")
            lines.append(f"{n:>2}. {h.doc_id}  [{h.score:.3f}]{mark}  {desc[:100]}")
        if offer is not None:
            lines.append(f"schema budget {offer.budget} tokens ({offer.counter['tokenizer']}): {len(offer.specs)} "
                         f"sent whole ({offer.tokens} tokens with the listing), {len(offer.listed)} named in "
                         f"more_tools" + (f", {offer.omitted} left out" if offer.omitted else ""))
        if data.get("generated_queries"):
            lines.append("generated queries: " + " | ".join(data["generated_queries"]))
        if data["query_truncated"]:
            lines.append("note: the request is longer than the embedding window; only its start was embedded")
        lines += [f"warning: {w}" for w in cat.warnings[:5]]
        return Output(data, "\n".join(lines))

    run_command(as_json, work, typer.echo)


@usage_app.command("add")
def usage_add_cmd(
    usage: Path = typer.Argument(..., help='JSONL file: one {"request": ..., "tool": ...} per line.'),
    catalog: Path = USAGE_CATALOG, data: str = DATA, subset: str = SUBSET, usage_dir: Path = USAGE_DIR,
    embedder: str = EMBEDDER, as_json: bool = JSON_OPTION,
) -> None:
    """Add real usage requests to the catalog's usage index (only new ones are embedded)."""

    def work() -> Any:
        cat, _ = _catalog(catalog, usage_dir, embedder, data, subset)
        rep = cat.add_usage(usage)
        text = "\n".join([rep.summary(), *(f"warning: {w}" for w in rep.warnings())])
        return Output(rep.model_dump() | {"usage_dir": str(cat.usage_dir)}, text)

    run_command(as_json, work, typer.echo)


@usage_app.command("generate")
def usage_generate_cmd(
    catalog: Path = USAGE_CATALOG, data: str = DATA, subset: str = SUBSET,
    model: str = typer.Option(None, "--model", help="Chat model that writes the requests (default: local)."),
    api_base: str = API_BASE_OPTION,
    api_key_env: str = API_KEY_ENV_OPTION,
    n: int = typer.Option(10, "--n", min=1, max=50, help="Requests asked for per tool."),
    limit: int = typer.Option(None, "--limit", min=0, help="At most this many tools now (the rest on a rerun)."),
    concurrency: int = typer.Option(4, "--concurrency", min=1, max=64, help="Model calls in flight."),
    demonstrations: bool = typer.Option(True, "--demonstrations/--no-demonstrations",
                                        help="Show the model two tools with real requests first (the default), or "
                                             "the instructions alone."),
    mask_name: bool = typer.Option(True, "--mask-name/--show-name",
                                   help="Withhold the tool's name and mask it in the description (the default), so "
                                        "the model cannot write requests that name it."),
    usage_dir: Path = USAGE_DIR, embedder: str = EMBEDDER,
    progress: bool = typer.Option(True, "--progress/--no-progress", help="A progress line on stderr."),
    as_json: bool = JSON_OPTION,
) -> None:
    """The model writes N requests per tool (resumable: a rerun skips finished tools); the kept ones are added to
    the usage index as generated usage."""

    def work() -> Any:
        from sleuth.retrieval.tools.usage_gen import UsageGenParams, generate_usage

        chat = None
        if limit != 0:
            from sleuth.cli.common import get_model

            chat = get_model(model, api_base, api_key_env)
        cat, folder = _catalog(catalog, usage_dir, embedder, data, subset)
        params = UsageGenParams(n=n, concurrency=concurrency, demonstrations=demonstrations, mask_name=mask_name)
        rep = generate_usage(cat, chat, folder / "generated.jsonl", params=params, limit=limit, progress=progress)
        return Output(rep.model_dump(mode="json") | {"tokens_per_tool": rep.tokens_per_tool()}, rep.summary())

    run_command(as_json, work, typer.echo)


@usage_app.command("show")
def usage_show_cmd(
    catalog: Path = USAGE_CATALOG, data: str = DATA, subset: str = SUBSET, usage_dir: Path = USAGE_DIR,
    embedder: str = EMBEDDER, as_json: bool = JSON_OPTION,
) -> None:
    """What the usage index holds: requests per source, tools without usage."""

    def work() -> Any:
        cat, _ = _catalog(catalog, usage_dir, embedder, data, subset)
        idx = cat.usage_index()
        rep = idx.report([t.name for t in cat.tools])
        m = idx.manifest()
        out = {k: m[k] for k in ("embedder", "requests", "sources", "generated_by")} | {
            "tools": len(cat), "tools_with_usage": rep.tools_with_usage, "fallback": rep.fallback,
            "usage_dir": str(cat.usage_dir)}
        text = (f"{m['requests']} usage requests ({', '.join(f'{v} {k}' for k, v in m['sources'].items()) or 'none'})"
                f" for {rep.tools_with_usage} of {len(cat)} tools, embedded with {m['embedder']}, in {cat.usage_dir}")
        return Output(out, "\n".join([text, *(f"warning: {w}" for w in rep.warnings())]))

    run_command(as_json, work, typer.echo)


def register(app: typer.Typer) -> None:
    app.add_typer(tools_app, name="tools")
