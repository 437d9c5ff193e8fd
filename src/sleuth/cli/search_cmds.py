"""`sleuth index | search | df | enrich`: the BM25 index, ranked search (bm25, sira, ...), document frequency, and
SIRA corpus-side enrichment. Heavy imports (bm25s, numba, litellm) happen inside the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from sleuth.cli.common import (
    API_BASE_OPTION,
    API_KEY_ENV_OPTION,
    BUILD_INDEX_OPTION,
    CORPUS_OPTION,
    STATE_DIR_OPTION,
    allow_index_build,
    cli_progress,
    get_model,
    open_corpus,
)
from sleuth.cli.output import JSON_OPTION, Output, run_command

QUIET_OPTION = typer.Option(False, "--quiet", "-q", help="No progress lines on stderr.")


def _corpus(path: Path | None, state_dir: Path | None = None) -> Any:
    return open_corpus(path, state_dir)


def _indexed_corpus(path: Path | None, state_dir: Path | None, build_index: bool, as_json: bool) -> Any:
    """The corpus of a command that reads its BM25 index (``--build-index`` decides whether a first build may run)."""
    c = _corpus(path, state_dir)
    allow_index_build(c, state_dir, build_index, as_json)
    return c


def index_cmd(
    corpus: Path = typer.Argument(None, help="The corpus folder (default: $SLEUTH_CORPUS)."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Rebuild even if the index is up to date."),
    k1: float = typer.Option(None, "--k1", help="BM25 k1 (default 0.9)."),
    b: float = typer.Option(None, "--b", help="BM25 b (default 0.4)."),
    no_stem: bool = typer.Option(False, "--no-stem", help="Do not stem."),
    no_stopwords: bool = typer.Option(False, "--no-stopwords", help="Keep stopwords."),
    state_dir: Path = STATE_DIR_OPTION,
    quiet: bool = QUIET_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Build (or check) the BM25 index of a corpus in CORPUS/.sleuth/bm25 (or --state-dir DIR)."""

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
        # the one open-or-build path (under the index's lock): a missing, stale or corrupt index is rebuilt,
        # --rebuild rebuilds an up-to-date one too; without custom parameters a rebuild keeps the index's own
        index = BM25Index.open(c, params=BM25Params(**custom) if custom else None, rebuild=True, force=rebuild,
                               progress=cli_progress(as_json, quiet))
        status = index.status
        data = {"corpus": str(c.root), "index": str(index.path), "status": status, "documents": index.n_docs,
                "vocabulary": len(index.vocab), "tokens": int(index.meta["n_tokens"]), "backend": index.backend,
                "params": index.params.model_dump(), "seconds": round(time.perf_counter() - t0, 2)}
        text = (f"{status}: {index.n_docs} documents, {len(index.vocab)} terms, {data['tokens']} tokens "
                f"({index.backend} backend) at {index.path} in {data['seconds']} s")
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
    enrich_weight: float = typer.Option(0.0, "--enrich-weight", help="Fuse the enrichment index with this lambda."),
    max_df_ratio: float = typer.Option(None, "--max-df-ratio", help="SIRA: keep phrases with df below ratio*N."),
    weight: float = typer.Option(None, "--weight", help="SIRA: weight of the kept phrases."),
    fusion: str = typer.Option(None, "--fusion", help="hybrid: rrf, zscore, minmax, vstash or adaptive."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Rebuild a stale index instead of failing."),
    snippet: int = typer.Option(200, "--snippet", help="Characters of text per hit (people output)."),
    rerank: str = typer.Option(None, "--rerank", help="Rerank the candidates: listwise, first or icr."),
    candidates: int = typer.Option(20, "--candidates", min=1, max=200, help="With --rerank: candidates to rerank."),
    state_dir: Path = STATE_DIR_OPTION,
    build_index: bool = BUILD_INDEX_OPTION,
    quiet: bool = QUIET_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Ranked search over a corpus (optionally reranked)."""

    def work() -> Any:
        from sleuth.errors import ConfigError
        from sleuth.retrieval import get_retriever

        c = _indexed_corpus(corpus, state_dir, build_index, as_json)
        opts: dict[str, Any] = {"rebuild": rebuild, "progress": cli_progress(as_json, quiet)}
        if enrich_weight:
            opts["enrich_weight"] = enrich_weight
        if fusion is not None:
            if method != "hybrid":
                raise ConfigError("--fusion goes with --method hybrid", hint="add --method hybrid, or drop --fusion")
            opts["fusion"] = fusion
        llm = None
        if method == "sira" or (rerank and rerank != "icr"):
            llm = get_model(model, api_base, api_key_env)
        if method == "sira":
            sira = {k_: v for k_, v in {"max_df_ratio": max_df_ratio, "weight": weight}.items() if v is not None}
            if sira:
                opts["sira"] = sira
        retriever = get_retriever(method, c, model=llm, **opts)
        first_k = max(k, candidates) if rerank else k
        if method == "sira":
            res: Any = retriever.run(query, first_k)  # a SiraResult: proposed, kept and rejected phrases
            hits = res.hits
            data: dict[str, Any] = {"query": query, "method": method, "hits": hits,
                                    "sira": res.model_dump(exclude={"hits"})}
        elif method == "hybrid":
            res = retriever.run(query, first_k)  # a HybridResult: the fusion, this query's weights and signals
            hits = res.hits
            data = {"query": query, "method": method, "hits": hits, "fusion": res.fusion, "weights": res.weights,
                    "signals": res.signals}
        else:
            hits = retriever.search(query, first_k)
            data = {"query": query, "method": method, "hits": hits}
        if rerank:
            from sleuth.rerank import get_reranker

            reranker = get_reranker(rerank, model=llm if llm is not None else model)
            hits = reranker.rerank(query, hits[:candidates], k=k)
            data.update(hits=hits, rerank=rerank, candidates=candidates)
        lines = []
        if method == "sira":
            for d in res.decisions:
                mark = "+" if d.kept else "-"
                lines.append(f"  {mark} {d.phrase!r}: {d.reason}")
            head = "SIRA expansion" + (f" (fallback: {res.fallback})" if res.fallback else "")
            lines.insert(0, head + ":")
            lines.append(f"  usage: {res.usage.total_tokens} tokens, cost {res.usage.cost_text()}")
        if method == "hybrid":
            lines.append(f"fusion {res.fusion}: " + ", ".join(f"{n} {w:.3f}" for n, w in res.weights.items()))
        if not hits:
            lines.append("no hits")
        for rank, h in enumerate(hits, 1):
            text = " ".join(h.text.split())[:snippet]
            score = f"{h.score:.3f}" if h.score is not None else "-"  # None: a rank-only reranker (listwise, first)
            lines.append(f"{rank:>3}. {h.doc_id}  {score}  {text}")
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
        docfreq = DocFrequency(BM25Index.open(c))
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
    limit: int = typer.Option(None, "--limit", help="Enrich at most this many more documents."),
    concurrency: int = typer.Option(4, "--concurrency", min=1, max=64),
    max_df_ratio: float = typer.Option(0.05, "--max-df-ratio"),
    min_df: int = typer.Option(1, "--min-df", help="0 admits phrases absent from the corpus."),
    state_dir: Path = STATE_DIR_OPTION,
    build_index: bool = BUILD_INDEX_OPTION,
    quiet: bool = QUIET_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """SIRA corpus side: the model proposes missing search vocabulary per document (resumable; an extra index)."""

    def work() -> Any:
        from sleuth.retrieval.enrich import EnrichParams, enrich_corpus

        c = _indexed_corpus(corpus, state_dir, build_index, as_json)
        params = EnrichParams(concurrency=concurrency, max_df_ratio=max_df_ratio, min_df=min_df)
        llm = get_model(model, api_base, api_key_env)
        try:
            rep = enrich_corpus(c, llm, params=params, limit=limit, progress=cli_progress(as_json, quiet))
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
