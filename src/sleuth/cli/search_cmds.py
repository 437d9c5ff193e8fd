"""`sleuth index | search | df | enrich`: the BM25 index, ranked search (bm25, sira, ...), document frequency, and
SIRA corpus-side enrichment. Heavy imports (bm25s, numba, litellm) happen inside the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import typer

from sleuth.cli.common import (
    API_BASE_OPTION,
    API_KEY_ENV_OPTION,
    BUILD_INDEX_OPTION,
    CHUNK_OVERLAP_OPTION,
    CHUNK_SIZE_OPTION,
    CORPUS_OPTION,
    RERANK_OPT_OPTION,
    STATE_DIR_OPTION,
    allow_index_build,
    chunking,
    cli_progress,
    get_model,
    open_corpus,
    parse_options,
)
from sleuth.cli.otel_opts import (
    OTEL_ENDPOINT_OPTION,
    OTEL_OPTION,
    TRACE_CONTENT_OPTION,
    capture_content,
    close_live,
    live_tracer,
    status_line,
)
from sleuth.cli.output import JSON_OPTION, Output, run_command

QUIET_OPTION = typer.Option(False, "--quiet", "-q", help="No progress lines on stderr.")
PASSAGES_OPTION = typer.Option(
    None, "--passages/--whole-docs", help="bm25, dense, hybrid: search passages (each document scored by its best "
    "passage, which the hit names: DOC_ID#p3) or whole documents. Default: passages for dense, whole documents for "
    "bm25 (measured: docs/results/chunking.md)."
)


def hit_name(h: Any) -> str:
    """A hit's doc id, with its passage id and lines when it names a passage."""
    p = h.metadata.get("passage")
    if not isinstance(p, dict):
        return str(h.doc_id)
    return f"{p['id']} (lines {p['start_line']}-{p['end_line']}, chars {p['start']}-{p['end']})"
# one query per process: numpy scoring (same scores and order) costs less than importing numba and loading its JIT
ONE_QUERY_BACKEND: Literal["numpy"] = "numpy"


def _corpus(path: Path | None, state_dir: Path | None = None) -> Any:
    return open_corpus(path, state_dir)


def _indexed_corpus(path: Path | None, state_dir: Path | None, build_index: bool, as_json: bool) -> Any:
    """The corpus of a command that reads its BM25 index (``--build-index`` decides whether a first build may run)."""
    c = _corpus(path, state_dir)
    allow_index_build(c, state_dir, build_index, as_json)
    return c


def traced_search(retriever: Any, query: str, k: int, tracer: Any, method: str, where: Any = None) -> Any:
    """``retriever.run(query, k)`` (filtered by ``where``, a DocFilter); with a tracer, inside a ``retrieval``
    span that records the hits."""
    import time

    from sleuth.records import TraceEvent
    from sleuth.retrieval.base import run_filtered
    from sleuth.tracing import ForwardingTracer

    if tracer is None:
        return run_filtered(retriever, query, k, where=where)
    span = ForwardingTracer(tracer, span=True)
    t0 = time.perf_counter()
    res = run_filtered(retriever, query, k, where=where, tracer=span)
    args: dict[str, Any] = {"query": query, "k": k}
    if where is not None:
        args["where"] = str(where.where)
    span.emit(span.own(TraceEvent(
        kind="retrieval", name=method, args=args, latency_s=time.perf_counter() - t0,
        usage=res.usage if res.usage.calls else None, preview=", ".join(h.doc_id for h in res.hits)[:300],
        data={"hits": [{"doc_id": h.doc_id, "score": h.score} for h in res.hits]},
    )))
    return res


def _serve_shards_on_ray(retriever: Any, address: str) -> None:
    """``search --ray``: the sharded BM25 index behind ``retriever`` (bm25, sira) served by Ray actors."""
    from sleuth.errors import ConfigError
    from sleuth.retrieval.bm25_ray import serve_on_ray

    bm25 = getattr(retriever, "bm25", retriever)
    index = getattr(bm25, "index", None)
    if index is None or not getattr(index, "sharded", False):
        raise ConfigError("--ray serves the shards of a sharded BM25 index (--method bm25 or sira)",
                          hint="build it with `sleuth index CORPUS --shards N`, or drop --ray")
    serve_on_ray(index, address)


def _dense_index(c: Any, spec: str | None, ray: str | None, ray_workers: int, rebuild: bool,
                 progress: bool | None) -> dict[str, Any]:
    """``sleuth index --dense``: the dense index opened, built or updated, its embedding on Ray with ``--ray``."""
    from sleuth.errors import ConfigError
    from sleuth.retrieval.dense import DenseIndex
    from sleuth.retrieval.embeddings import get_embedder

    emb: Any = get_embedder(spec)
    if ray:
        from sleuth.retrieval.embed_ray import RayEmbedder

        emb = RayEmbedder(spec, address=ray, workers=ray_workers, local=emb)
    elif ray_workers != 2:
        raise ConfigError("--ray-workers goes with --ray", hint="add --ray local (or an address), or drop it")
    dense = DenseIndex.open(c, emb, rebuild=True, force=rebuild, progress=progress)
    return {"index": str(dense.path), "status": dense.status, "documents": len(dense), "embedder": emb.name,
            "ray": ray}


def index_cmd(
    corpus: Path = typer.Argument(None, help="The corpus folder (default: $SLEUTH_CORPUS)."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Rebuild even if the index is up to date."),
    k1: float = typer.Option(None, "--k1", help="BM25 k1 (default 0.9)."),
    b: float = typer.Option(None, "--b", help="BM25 b (default 0.4)."),
    no_stem: bool = typer.Option(False, "--no-stem", help="Do not stem."),
    no_stopwords: bool = typer.Option(False, "--no-stopwords", help="Keep stopwords."),
    no_bigrams: bool = typer.Option(
        False, "--no-bigrams", help="Build without the bigram tier (SIRA adds it on demand; plain BM25 never uses it)."
    ),
    shards: int = typer.Option(
        None, "--shards", help="Split the index into N shards scored with global statistics (same results as one "
        "index); built in parallel processes. Default: keep the index's layout."),
    workers: int = typer.Option(None, "--workers", help="Processes that build the shards (default: the cores)."),
    dense: bool = typer.Option(False, "--dense", help="Build (or update) the dense index too (MiniLM by default)."),
    embedder: str = typer.Option(None, "--embedder", help="With --dense: the embedder (default: $SLEUTH_EMBEDDER, "
                                 "else minilm)."),
    ray: str = typer.Option(None, "--ray", metavar="ADDRESS", help="With --dense: embed on Ray workers (the ray "
                            "extra): local, auto or HOST:PORT."),
    ray_workers: int = typer.Option(2, "--ray-workers", min=1, help="With --ray: how many workers."),
    passages: bool = typer.Option(
        False, "--passages", help="Also build the passage BM25 index (CORPUS/.sleuth/bm25-passages), for `search "
        "--passages`; the document index stays (df, sira and the default bm25 search use it)."
    ),
    chunk_size: int = CHUNK_SIZE_OPTION,
    chunk_overlap: int = CHUNK_OVERLAP_OPTION,
    state_dir: Path = STATE_DIR_OPTION,
    quiet: bool = QUIET_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Build (or check) the BM25 index of a corpus in CORPUS/.sleuth/bm25 (or --state-dir DIR), with its bigram
    tier (added to an index that predates it); sharded with --shards N."""

    def work() -> Any:
        import time

        from sleuth.retrieval.bm25 import BM25Index, BM25Params

        c = _corpus(corpus, state_dir)
        custom: dict[str, Any] = {k: v for k, v in {"k1": k1, "b": b}.items() if v is not None}
        if no_stem:
            custom["stemmer"] = None
        if no_stopwords:
            custom["stopwords"] = None
        t0 = time.perf_counter()
        entries = c.entries(progress=cli_progress(as_json, quiet))  # converts new and changed PDF, DOCX, ... files
        unreadable = {d: {"reason": e.reason, "message": e.message} for d, e in sorted(entries.items())
                      if not e.readable}
        converted: dict[str, int] = {}
        notes = {d: e.notes for d, e in sorted(entries.items()) if e.notes}
        for e in entries.values():
            if e.status == "converted":
                converted[e.format] = converted.get(e.format, 0) + 1
        # the one open-or-build path (under the index's lock): a missing, stale or corrupt index is rebuilt,
        # --rebuild rebuilds an up-to-date one too; without custom parameters a rebuild keeps the index's own
        index = BM25Index.open(c, params=BM25Params(**custom) if custom else None, rebuild=True, force=rebuild,
                               progress=cli_progress(as_json, quiet), bigrams=not no_bigrams, shards=shards,
                               workers=workers)
        if not no_bigrams:
            from sleuth.retrieval.bm25_ngrams import ensure_bigrams

            index = ensure_bigrams(index)
        status = index.status
        dense_data = None
        if dense:
            dense_data = _dense_index(c, embedder, ray, ray_workers, rebuild, cli_progress(as_json, quiet))
        n_bigrams = len(index.bigrams) if index.bigrams is not None else None
        data = {"corpus": str(c.root), "index": str(index.path), "status": status, "documents": index.n_docs,
                "vocabulary": len(index.vocab), "bigrams": n_bigrams, "tokens": int(index.meta["n_tokens"]),
                "backend": index.backend, "params": index.params.model_dump(),
                "shards": len(index.parts) if index.sharded else None,
                "seconds": round(time.perf_counter() - t0, 2),
                "converted": converted, "unreadable": unreadable, "notes": notes, "dense": dense_data}
        tier = f", {n_bigrams} bigrams" if n_bigrams is not None else ", no bigram tier"
        tier += f", {len(index.parts)} shards" if index.sharded else ""
        text = (f"{status}: {index.n_docs} documents, {len(index.vocab)} terms{tier}, {data['tokens']} tokens "
                f"({index.backend} backend) at {index.path} in {data['seconds']} s")
        if dense_data:
            text += (f"\ndense: {dense_data['status']}, {dense_data['documents']} documents ({dense_data['embedder']}"
                     + (f", embedded on ray {ray}" if ray else "") + f") at {dense_data['index']}")
        if passages or chunk_size is not None or chunk_overlap is not None:
            from sleuth.retrieval.passages import as_chunker, open_bm25_passages

            chunker = as_chunker(chunking(chunk_size, chunk_overlap))
            pidx = open_bm25_passages(c, chunker, params=BM25Params(**custom) if custom else None, rebuild=True,
                                      force=rebuild, progress=cli_progress(as_json, quiet))
            data["passages"] = {"index": str(pidx.path), "status": pidx.status, "passages": pidx.n_docs,
                                "chunking": chunker.params()}
            text += (f"\npassages {pidx.status}: {pidx.n_docs} passages of at most {chunker.size} characters "
                     f"(overlap {chunker.overlap}) at {pidx.path}")
        if converted:
            text += "\n  text converted from " + ", ".join(f"{n} {fmt.upper()}" for fmt, n in sorted(converted.items()))
        for d, why in notes.items():
            text += f"\n  {d}: " + "; ".join(why)
        if unreadable:
            text += f"\n{len(unreadable)} files are not documents (not indexed):"
            text += "".join(f"\n  {d}: {u['message']}" for d, u in unreadable.items())
        return Output(data, text)

    run_command(as_json, work, typer.echo)


def search_cmd(
    query: str = typer.Argument(..., help="The query."),
    corpus: Path = CORPUS_OPTION,
    method: str = typer.Option("bm25", "--method", "-m", help="bm25, sira, or another registered retriever."),
    k: int = typer.Option(10, "--k", "-k", min=1, max=1000),
    model: str = typer.Option(None, "--model", help="The model for sira and --rerank (local, openai/gpt-4o-mini)."),
    api_base: str = API_BASE_OPTION,
    api_key_env: str = API_KEY_ENV_OPTION,
    enriched: bool = typer.Option(
        False, "--enriched", help="Search the in-index enrichment (`sleuth enrich`; the SIRA reference's corpus side)."
    ),
    enrich_weight: float = typer.Option(
        0.0, "--enrich-weight", help="Fuse the enrichment field index with this lambda (sleuth's earlier form)."
    ),
    sira_form: str = typer.Option(None, "--sira-form", help="SIRA: reference (default) or sleuth (earlier rules)."),
    max_df_ratio: float = typer.Option(None, "--max-df-ratio", help="SIRA: the filter's df limit, as a share of N."),
    weight: float = typer.Option(None, "--weight", help="SIRA: weight of the kept phrases."),
    fusion: str = typer.Option(None, "--fusion", help="hybrid: rrf, zscore, minmax, vstash or adaptive."),
    passages: bool = PASSAGES_OPTION,
    chunk_size: int = CHUNK_SIZE_OPTION,
    chunk_overlap: int = CHUNK_OVERLAP_OPTION,
    rebuild: bool = typer.Option(False, "--rebuild", help="Rebuild a stale index instead of failing."),
    snippet: int = typer.Option(200, "--snippet", help="Characters of text per hit (people output)."),
    rerank: str = typer.Option(None, "--rerank", help="Rerank the candidates: listwise, first or icr."),
    candidates: int = typer.Option(20, "--candidates", min=1, max=200, help="With --rerank: candidates to rerank."),
    rerank_opt: list[str] = RERANK_OPT_OPTION,
    where: list[str] = typer.Option(
        None, "--where", "-w",
        help="Metadata filter FIELD OP VALUE (OP: = != < <= > >= ~ glob !~); repeat to AND. E.g. 'year>=2020', "
             "'author=Smith', \"title~'*cancer*'\", 'path=notes/*.md'. A field no document has is an error that "
             "lists the fields that exist.",
    ),
    glob: str = typer.Option(None, "--glob", "-g", help="Only documents whose path matches this glob (= --where "
                             "'path=GLOB')."),
    ray: str = typer.Option(None, "--ray", metavar="ADDRESS", help="Serve the shards of a sharded BM25 index from Ray "
                            "actors (auto, HOST:PORT; the ray extra); the index at the same path on every node."),
    state_dir: Path = STATE_DIR_OPTION,
    build_index: bool = BUILD_INDEX_OPTION,
    quiet: bool = QUIET_OPTION,
    otel: bool = OTEL_OPTION,
    otel_endpoint: str = OTEL_ENDPOINT_OPTION,
    trace_content: bool = TRACE_CONTENT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Ranked search over a corpus (optionally reranked)."""

    def work() -> Any:
        from sleuth.tracing import MemoryTracer

        if not (otel or otel_endpoint):
            return _search(None)
        # with --otel the search is one trace: a root span over a retrieval span (SIRA's model call under it)
        # and a rerank span (the reranker's model calls under it)
        tracer = live_tracer(MemoryTracer(capture_content=capture_content(trace_content)), otel, otel_endpoint)
        try:
            result = _search(tracer)
        finally:
            otel_status = close_live(tracer)
        result.data["otel"] = otel_status
        result.text += "\n" + status_line(otel_status)
        return result

    def _search(tracer: Any) -> Any:
        from sleuth.errors import ConfigError
        from sleuth.retrieval import get_retriever

        c = _indexed_corpus(corpus, state_dir, build_index, as_json)
        opts: dict[str, Any] = {"rebuild": rebuild, "progress": cli_progress(as_json, quiet)}
        if method == "bm25":
            opts["backend"] = ONE_QUERY_BACKEND
        if passages is not None:
            opts["passages"] = passages
        if (chunk := chunking(chunk_size, chunk_overlap)) is not None:
            opts["chunking"] = chunk
        if enrich_weight:
            opts["enrich_weight"] = enrich_weight
        if enriched:
            opts["enriched"] = True
        if fusion is not None:
            if method != "hybrid":
                raise ConfigError("--fusion goes with --method hybrid", hint="add --method hybrid, or drop --fusion")
            opts["fusion"] = fusion
        llm = None
        if method == "sira" or (rerank and rerank != "icr"):
            llm = get_model(model, api_base, api_key_env)
        if method == "sira":
            sira = {k_: v for k_, v in {"max_df_ratio": max_df_ratio, "weight": weight, "form": sira_form}.items()
                    if v is not None}
            if sira:
                opts["sira"] = sira
        retriever = get_retriever(method, c, model=llm, **opts)
        if ray:
            _serve_shards_on_ray(retriever, ray)
        conditions = [*(where or []), *([f"path={glob}"] if glob else [])]
        flt = c.filter(conditions) if conditions else None  # after the index's open: the corpus as it is now
        first_k = max(k, candidates) if rerank else k
        if tracer is not None:
            tracer.record("run", "start", args={"query": query, "name": f"search {method}", "method": method,
                                                "k": k, "rerank": rerank})
        res: Any = traced_search(retriever, query, first_k, tracer, method, flt)
        hits = res.hits
        if method == "sira":  # a SiraResult: proposed, kept and rejected phrases
            data: dict[str, Any] = {"query": query, "method": method, "hits": hits,
                                    "sira": res.model_dump(exclude={"hits"})}
        elif method == "hybrid":  # a HybridResult: the fusion, this query's weights and signals
            data = {"query": query, "method": method, "hits": hits, "fusion": res.fusion, "weights": res.weights,
                    "signals": res.signals}
        else:
            data = {"query": query, "method": method, "hits": hits}
        if flt is not None:
            data["where"] = {"filter": str(flt.where), "matching": len(flt.matching), "documents": flt.n_docs}
        if rerank:
            from sleuth.rerank import get_reranker

            reranker = get_reranker(rerank, model=llm if llm is not None else model, **parse_options(rerank_opt))
            reranked = reranker.run(query, hits[:candidates], k=k, tracer=tracer)
            hits = reranked.hits
            data.update(hits=hits, rerank=rerank, candidates=candidates, rerank_stats=reranked.stats)
        lines = []
        if method == "sira":
            for d in res.decisions:
                mark = "+" if d.kept else "-"
                lines.append(f"  {mark} {d.phrase!r}: {d.reason}")
            st = res.stats
            head = (f"SIRA expansion ({st.get('form')} form: {st.get('filter')} filter, tiers "
                    f"{'+'.join(st.get('tiers', []))}, {st.get('weights')})"
                    + (f" (fallback: {res.fallback})" if res.fallback else ""))
            if st.get("tier_note"):
                head += f"\n  note: {st['tier_note']}"
            lines.insert(0, head + ":")
            lines.append(f"  usage: {res.usage.total_tokens} tokens, cost {res.usage.cost_text()}")
        if method == "hybrid":
            lines.append(f"fusion {res.fusion}: " + ", ".join(f"{n} {w:.3f}" for n, w in res.weights.items()))
        if flt is not None:
            lines.append(f"where {flt.where}: {len(flt.matching)} of {flt.n_docs} documents")
        if not hits:
            lines.append("no hits")
        for rank, h in enumerate(hits, 1):
            text = " ".join(h.text.split())[:snippet]
            score = f"{h.score:.3f}" if h.score is not None else "-"  # None: a rank-only reranker (listwise, first)
            lines.append(f"{rank:>3}. {hit_name(h)}  {score}  {text}")
        return Output(data, "\n".join(lines))

    run_command(as_json, work, typer.echo)


def df_cmd(
    terms: list[str] = typer.Argument(..., help="Words or quoted phrases."),
    corpus: Path = CORPUS_OPTION,
    state_dir: Path = STATE_DIR_OPTION,
    build_index: bool = BUILD_INDEX_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Document frequency of words (index vocabulary) and phrases (contiguous stemmed tokens)."""

    def work() -> Any:
        from sleuth.retrieval.bm25 import BM25Index
        from sleuth.retrieval.df import DocFrequency

        c = _indexed_corpus(corpus, state_dir, build_index, as_json)
        docfreq = DocFrequency(BM25Index.open(c, backend=ONE_QUERY_BACKEND))
        rows = docfreq.many(terms)
        data = {"n_docs": docfreq.n_docs, "terms": [{**r.model_dump(), "ratio": r.ratio} for r in rows]}
        lines = [f"{docfreq.n_docs} documents"]
        for r in rows:
            note = f"  [{r.note}]" if r.note else ""
            lines.append(f"{r.df:>8}  {100 * r.ratio:6.2f}%  {r.term}  ({r.method}){note}")
        return Output(data, "\n".join(lines))

    run_command(as_json, work, typer.echo)


def enrich_cmd(
    corpus: Path = typer.Argument(None, help="The corpus folder (default: $SLEUTH_CORPUS)."),
    model: str = typer.Option(None, "--model", help="The model (default: $SLEUTH_MODEL, config.toml, else local)."),
    api_base: str = API_BASE_OPTION,
    api_key_env: str = API_KEY_ENV_OPTION,
    limit: int = typer.Option(
        None, "--limit", min=0, help="Enrich at most this many more documents (0: only rebuild the enriched index)."
    ),
    concurrency: int = typer.Option(4, "--concurrency", min=1, max=64),
    ray: str = typer.Option(
        None, "--ray", metavar="ADDRESS", help="Enrich on Ray workers (the ray extra): local (a Ray instance started "
        "for the job), auto or HOST:PORT; each worker starts its own model. Resumable as without it."
    ),
    ray_workers: int = typer.Option(2, "--ray-workers", min=1, help="With --ray: how many workers."),
    filter_: str = typer.Option(
        "reference", "--filter", help="reference (the SIRA reference's doc filter, admits new words) or sleuth."
    ),
    max_df_ratio: float = typer.Option(0.05, "--max-df-ratio"),
    min_df: int = typer.Option(1, "--min-df", help="--filter sleuth: 0 admits phrases absent from the corpus."),
    state_dir: Path = STATE_DIR_OPTION,
    build_index: bool = BUILD_INDEX_OPTION,
    quiet: bool = QUIET_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """SIRA corpus side: the model proposes missing search vocabulary per document (resumable); the kept phrases
    go into the enriched index (.sleuth/enrich/index; the raw files are never changed)."""

    def work() -> Any:
        from sleuth.errors import ConfigError
        from sleuth.retrieval.enrich import EnrichParams, enrich_corpus

        if filter_ not in ("reference", "sleuth"):
            raise ConfigError(f"unknown --filter {filter_!r}", hint="use --filter reference or --filter sleuth")
        c = _indexed_corpus(corpus, state_dir, build_index, as_json)
        params = EnrichParams.model_validate({"concurrency": concurrency, "max_df_ratio": max_df_ratio,
                                              "min_df": min_df, "filter": filter_})
        on_ray = None
        if ray and limit != 0:
            from sleuth.retrieval.enrich import RayEnrich

            on_ray = RayEnrich(ray, ray_workers, model, api_base=api_base, api_key_env=api_key_env)
        llm = None if limit == 0 or on_ray is not None else get_model(model, api_base, api_key_env)
        try:
            rep = enrich_corpus(c, llm, params=params, limit=limit, progress=cli_progress(as_json, quiet), ray=on_ray)
        finally:
            close = getattr(llm, "close", None)
            if close is not None:
                close()
        return Output(rep.model_dump(), rep.summary())

    run_command(as_json, work, typer.echo)


def register(app: typer.Typer) -> None:
    app.command("index")(index_cmd)
    app.command("search")(search_cmd)
    app.command("df")(df_cmd)
    app.command("enrich")(enrich_cmd)
