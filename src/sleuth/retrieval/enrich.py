"""SIRA, corpus side: an offline job in which a model reads each document (its first ``max_chars`` characters) and
proposes search vocabulary the document lacks; the phrases that pass the df filter are added to the index.

The filter (``EnrichParams.filter``), by default the reference's (facebookresearch/sira ``NGramIndex::
filter_candidates`` as ``scripts/add_doc_index_adapter.py`` calls it, ``require_in_vocab=False``): a phrase with no
indexable word is dropped; one whose rarest seen 1..2-gram has ``df > int(N * max_df_ratio)`` is too common; every
other phrase is kept, including one whose words the corpus has never seen (new vocabulary). ``filter="sleuth"`` is
the earlier rule: not already in the document, ``min_df <= df < max_df_ratio * N`` for the whole phrase as a
contiguous n-gram, no duplicate, at most ``max_phrases``.

Storage (never the raw documents): ``corpus.state_dir / "enrich"``:

* ``enrich.jsonl``: one line per document, appended as soon as it is done (flushed), with the document's file
  signature (size, mtime). A rerun skips documents whose line exists with the same signature, so an interrupted
  job resumes and recomputes nothing; a torn last line is ignored. A document that cannot be read as text (binary,
  not UTF-8) gets one line with ``skipped`` (the reason) and no model call, and is not retried until it changes.
  When a real fault stops the job (the model server died), the documents already answered are still written.
* ``index/``: the enriched index (the reference's form, :mod:`sleuth.retrieval.enriched`): the base index with
  each document's kept phrases appended to it, a separate build, rebuilt from the JSONL at the end of every run
  (``sleuth enrich CORPUS --limit 0`` rebuilds it without a model call). ``get_retriever("bm25"|"sira", corpus,
  enriched=True)`` and ``sleuth eval beir --enriched`` search it.
* ``bm25/`` (the named option ``enrich_weight``, sleuth's earlier form): a second BM25 index over each document's
  kept phrases alone, fused as ``score = bm25(text) + lambda * bm25(enrich)``; the main index stays an index of the
  raw documents and lambda can change per query. Built when first used, kept up to date by later runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed, wait
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from sleuth.cluster import PidMixin
from sleuth.errors import BinaryDocumentError, ModelOutputError, ToolArgumentError
from sleuth.fsutil import end_torn_line, read_jsonl_models
from sleuth.llm.base import ChatModel
from sleuth.records import Hit, SearchResult, Usage
from sleuth.retrieval.base import RetrieverBase, timed_result, where_filter
from sleuth.retrieval.bm25 import BM25Index, BM25Retriever, _topk_numpy
from sleuth.retrieval.bm25_build import build_index
from sleuth.retrieval.bm25_ngrams import MAX_N, ensure_bigrams, ngram_dfs
from sleuth.retrieval.df import DocFrequency
from sleuth.retrieval.sira import MAX_PHRASE_WORDS, SiraProposal, reference_max_df
from sleuth.usagetap import UsageTap

if TYPE_CHECKING:
    from sleuth.corpus import Corpus

PROMPT = "sira_enrich"
DIRNAME = "enrich"
JSONL = "enrich.jsonl"


class EnrichParams(BaseModel):
    filter: Literal["reference", "sleuth"] = "reference"
    max_chars: int = Field(4000, ge=200)  # the reference's max_doc_chars
    max_phrases: int = Field(10, ge=1, le=10)
    max_df_ratio: float = Field(0.05, gt=0, le=1)
    min_df: int = Field(1, ge=0)  # filter="sleuth" only: 0 also admits vocabulary new to the corpus
    concurrency: int = Field(4, ge=1, le=64)
    max_tokens: int = Field(120, ge=16)
    retries: int = Field(1, ge=0)


class EnrichRecord(BaseModel):
    doc_id: str
    sig: str
    proposed: list[str] = Field(default_factory=list)
    kept: list[str] = Field(default_factory=list)
    rejected: list[dict[str, Any]] = Field(default_factory=list)
    error: str | None = None
    skipped: str | None = None  # why the document was not sent to the model (it cannot be read as text)
    filter: str | None = None  # which filter decided ``kept`` (None: written before the option existed, "sleuth")
    usage: Usage = Field(default_factory=Usage)


class EnrichReport(BaseModel):
    documents: int
    done_before: int
    enriched_now: int
    errors: int
    kept_phrases: int
    usage: Usage
    seconds: float
    skipped: int = 0  # unreadable documents recorded now (no model call)
    skipped_before: int = 0  # unreadable documents recorded by an earlier run (unchanged since)
    filter: str = "reference"
    enriched_index: str | None = None  # where the enriched index was (re)built
    enriched_docs: int = 0  # documents with at least one kept phrase in it
    new_terms: int = 0  # words the enrichment added to the vocabulary

    def summary(self) -> str:
        n_skipped = self.skipped + self.skipped_before
        skipped = f", {n_skipped} skipped as unreadable" if n_skipped else ""
        index = (f"; enriched index: {self.enriched_docs} documents with phrases, {self.new_terms} new terms, at "
                 f"{self.enriched_index}" if self.enriched_index else "")
        return (f"{self.enriched_now} documents enriched now ({self.done_before} done before, {self.errors} "
                f"errors{skipped}), {self.kept_phrases} phrases kept ({self.filter} filter); "
                f"{self.usage.total_tokens} tokens ({self.usage.prompt_tokens} prompt + "
                f"{self.usage.completion_tokens} completion) in {self.usage.calls} calls, cost "
                f"{self.usage.cost_text()}; {self.seconds:.1f} s{index}")


def _sig(corpus: Corpus, doc_id: str) -> str:
    st = corpus.path_of(doc_id).stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def read_records(path: Path) -> dict[str, EnrichRecord]:
    return read_jsonl_models(path, EnrichRecord, lambda r: r.doc_id)


def messages_for(document: str, max_phrases: int, max_chars: int) -> list[dict[str, str]]:
    from sleuth.prompts import load

    system, _, user = load(PROMPT).partition("=== user ===")
    fill = {"document": document[:max_chars], "max_phrases": max_phrases}
    return [{"role": "system", "content": system.strip().format(**fill)},
            {"role": "user", "content": user.strip().format(**fill)}]


def reference_filter(index: BM25Index, phrases: Sequence[str],
                     params: EnrichParams) -> tuple[list[str], list[dict[str, Any]]]:
    """The reference's document-side filter (``filter_candidates`` with ``require_in_vocab=False``): keep a phrase
    unless it has no indexable word or its rarest seen 1..max_n-gram has ``df > int(N * max_df_ratio)``; a phrase
    whose n-grams the corpus never saw is kept (new vocabulary). Unlike the query side, ``int(N * ratio) = 0`` is a
    bound here too (the reference's script passes it as is): on a corpus of fewer than 1/ratio documents only
    phrases of unseen words are kept."""
    max_n = MAX_N if index.bigrams is not None else 1
    max_df = reference_max_df(index.n_docs, params.max_df_ratio)
    kept: list[str] = []
    rejected: list[dict[str, Any]] = []
    for raw in phrases:
        text = " ".join(str(raw).split())
        toks = index.analyzer.tokens(text)
        if not text:
            rejected.append({"phrase": text, "reason": "empty", "df": None})
            continue
        if not toks:
            rejected.append({"phrase": text, "reason": "no indexable words", "df": None})
            continue
        seen = [df for _, _, df in ngram_dfs(index, toks, max_n) if df > 0]
        if seen and min(seen) > max_df:
            rejected.append({"phrase": text, "df": min(seen),
                             "reason": f"too common (rarest 1..{max_n}-gram df = {min(seen)} > {max_df})"})
            continue
        kept.append(text)
    return kept, rejected


def _filter(index: BM25Index, docfreq: DocFrequency, doc_tokens: set[str], phrases: Sequence[str],
            params: EnrichParams) -> tuple[list[str], list[dict[str, Any]]]:
    kept: list[str] = []
    rejected: list[dict[str, Any]] = []
    seen: set[tuple[str, ...]] = set()
    limit = params.max_df_ratio * index.n_docs
    for raw in phrases:
        text = " ".join(str(raw).split())
        toks = index.analyzer.tokens(text)
        reason = None
        df = None
        if not toks:
            reason = "no indexable words"
        elif len(text.split()) > MAX_PHRASE_WORDS:
            reason = "too long"
        elif tuple(toks) in seen:
            reason = "duplicate"
        elif set(toks) <= doc_tokens:
            reason = "already in the document"
        else:
            df = docfreq.df(text).df
            if df < params.min_df:
                reason = f"absent from the corpus (df = {df} < {params.min_df})"
            elif df >= limit:
                reason = f"too common (df = {df})"
            elif len(kept) >= params.max_phrases:
                reason = "over the limit"
        if toks:
            seen.add(tuple(toks))
        if reason:
            rejected.append({"phrase": text, "reason": reason, "df": df})
        else:
            kept.append(text)
    return kept, rejected


class DocEnricher:
    """One document's enrichment: the model's proposal for its text, filtered against the index. The same for
    the threads of :func:`enrich_corpus` and for a Ray worker (:class:`RayEnricher`)."""

    def __init__(self, corpus: Corpus, model: ChatModel | None, params: EnrichParams, index: BM25Index,
                 docfreq: DocFrequency | None = None, tracer: Any = None) -> None:
        self.corpus, self.model, self.params, self.index = corpus, model, params, index
        self.docfreq = docfreq or DocFrequency(index)
        self.tracer = tracer

    def __call__(self, doc_id: str) -> EnrichRecord:
        corpus, params, index = self.corpus, self.params, self.index
        sig = _sig(corpus, doc_id)
        try:
            text = corpus.read_text(doc_id)
        except BinaryDocumentError as e:  # recorded once; a rerun skips it until the file changes
            return EnrichRecord(doc_id=doc_id, sig=sig, skipped=e.message)
        tap = UsageTap(self.tracer)
        assert self.model is not None  # checked by the caller: there is work only with a model
        try:
            proposal, result = self.model.structured(
                messages_for(text, params.max_phrases, params.max_chars), SiraProposal, retries=params.retries,
                max_tokens=params.max_tokens, tracer=tap, name="sira_enrich",
            )
        except (ModelOutputError, ValueError) as e:
            return EnrichRecord(doc_id=doc_id, sig=sig, error=f"{type(e).__name__}: {str(e)[:200]}", usage=tap.usage)
        phrases = [p if isinstance(p, str) else p.text for p in proposal.phrases]
        if params.filter == "reference":
            kept, rejected = reference_filter(index, phrases, params)
        else:
            doc_tokens = set(index.analyzer.tokens(text[: params.max_chars]))
            kept, rejected = _filter(index, self.docfreq, doc_tokens, phrases, params)
        return EnrichRecord(doc_id=doc_id, sig=sig, proposed=phrases, kept=kept, rejected=rejected,
                            filter=params.filter, usage=tap.usage if tap.usage.calls else result.usage)


def enrich_corpus(
    corpus: Corpus,
    model: ChatModel | None,
    *,
    params: EnrichParams | None = None,
    limit: int | None = None,
    progress: bool = False,
    tracer: Any = None,
    ray: RayEnrich | None = None,
) -> EnrichReport:
    """Enrich up to ``limit`` not-yet-enriched documents (in doc id order), then rebuild the enriched index (and
    the fused field index when it exists). ``limit=0`` sends nothing (``model`` may be None) and only rebuilds.
    ``ray``: the documents go to Ray workers, each with its own model (:class:`RayEnrich`); the records are
    written here as they come, exactly as from the threads."""
    from sleuth.errors import ConfigError
    from sleuth.retrieval.enriched import build_enriched_index, open_enriched

    params = params or EnrichParams()
    t0 = time.perf_counter()
    index = BM25Index.open(corpus)  # StaleIndexError if the corpus changed: rebuild the main index first
    from sleuth.retrieval.enriched import refuse_sharded

    refuse_sharded(index)
    from sleuth.retrieval.bm25_overlay import OverlaidBM25Index

    if isinstance(index, OverlaidBM25Index):  # the enriched index copies one token stream: fold the overlay in
        index = BM25Index.open(corpus, force=True)
    if params.filter == "reference" and index.bigrams is None:
        index = ensure_bigrams(index)  # the filter's bigram df (this job writes into the corpus's state folder)
    docfreq = DocFrequency(index)
    folder = corpus.state_dir / DIRNAME
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / JSONL
    done = read_records(path)
    todo = []
    done_before = skipped_before = 0
    for doc_id in index.doc_ids:
        rec = done.get(doc_id)
        if rec is not None and rec.error is None and rec.sig == _sig(corpus, doc_id):
            if rec.skipped:
                skipped_before += 1
            else:
                done_before += 1
            continue
        todo.append(doc_id)
    if limit is not None:
        todo = todo[:limit]
    if todo and model is None and ray is None:
        raise ConfigError("enrichment needs a model", hint="pass --model (e.g. local), or --limit 0 to only rebuild")
    lock = threading.Lock()
    total = Usage()
    errors = kept_n = skipped = 0

    from sleuth.progress import progress_bar

    def write(fh: Any, rec: EnrichRecord, bar: Any) -> None:
        nonlocal total, errors, kept_n, skipped
        with lock:
            fh.write(rec.model_dump_json() + "\n")
            fh.flush()
            total = total + rec.usage
            errors += rec.error is not None
            skipped += rec.skipped is not None
            kept_n += len(rec.kept)
        bar.advance()

    # on a model fault (server died) or an interrupt, what is written stays and a rerun resumes
    end_torn_line(path)
    with path.open("a", encoding="utf-8") as fh, progress_bar(len(todo), "enrich", progress) as bar:
        if ray is not None and todo:
            ray.run(corpus, params, todo, lambda rec: write(fh, rec, bar))
        elif todo:
            _on_threads(DocEnricher(corpus, model, params, index, docfreq, tracer), todo, params.concurrency,
                        lambda rec: write(fh, rec, bar))
    target = build_enriched_index(corpus, index)
    enriched = open_enriched(corpus, index)
    if (folder / "bm25" / "meta.json").is_file():  # the fused field (enrich_weight), when someone uses it
        build_enrich_index(corpus, index)
    return EnrichReport(documents=index.n_docs, done_before=done_before, enriched_now=len(todo) - errors - skipped,
                        errors=errors, kept_phrases=kept_n, usage=total, seconds=time.perf_counter() - t0,
                        skipped=skipped, skipped_before=skipped_before, filter=params.filter,
                        enriched_index=str(target), enriched_docs=int(enriched.meta.get("enriched_docs", 0)),
                        new_terms=int(enriched.meta.get("new_terms", 0)))


def _on_threads(enricher: DocEnricher, todo: list[str], concurrency: int,
                write: Callable[[EnrichRecord], None]) -> None:
    """``concurrency`` documents at once; each record is written (and flushed) as soon as its doc is done. On a
    fault or an interrupt the calls already running finish and are written: keep what they paid for."""
    written: set[Future[EnrichRecord]] = set()
    with ThreadPoolExecutor(concurrency) as pool:
        futures = [pool.submit(enricher, d) for d in todo]
        try:
            for fut in as_completed(futures):
                write(fut.result())
                written.add(fut)
        except BaseException:
            for f in futures:
                f.cancel()
            wait(futures)
            for f in futures:
                if f not in written and not f.cancelled() and f.exception() is None:
                    write(f.result())
            raise


class _RayEnricher(PidMixin):
    """A Ray worker: the corpus and its index opened from their paths, the model made from its name."""

    def __init__(self, root: str, state_dir: str, model: str | None, api_base: str | None, api_key_env: str | None,
                 params: EnrichParams) -> None:
        from sleuth.corpus import Corpus
        from sleuth.llm import get_model

        corpus = Corpus(root, state_dir=state_dir)
        index = BM25Index.open(corpus)
        self.enrich = DocEnricher(corpus, get_model(model, api_base=api_base, api_key_env=api_key_env), params, index)

    def run(self, doc_id: str) -> EnrichRecord:
        return self.enrich(doc_id)


class RayEnrich:
    """Where ``sleuth enrich --ray`` sends the documents: ``workers`` actors on the cluster at ``address``, each
    with the model named by ``model`` (with ``--model local``, one embedded server per machine, shared)."""

    def __init__(self, address: str, workers: int, model: str | None, api_base: str | None = None,
                 api_key_env: str | None = None, on_started: Callable[[list[int]], None] | None = None) -> None:
        self.address, self.workers, self.model = address, workers, model
        self.api_base, self.api_key_env, self.on_started = api_base, api_key_env, on_started

    def run(self, corpus: Corpus, params: EnrichParams, todo: list[str], write: Callable[[EnrichRecord], None]) -> None:
        from sleuth.cluster import actor_map, ray_cluster

        def failed(doc_id: str, e: BaseException) -> None:  # an error record: a rerun enriches it again
            write(EnrichRecord(doc_id=doc_id, sig=_sig(corpus, doc_id), error=f"ray worker: {type(e).__name__}"))

        init = (str(corpus.root), str(corpus.state_dir), self.model, self.api_base, self.api_key_env, params)
        with ray_cluster(self.address, num_cpus=self.workers if self.address == "local" else None) as ray:
            actor_map(ray, _RayEnricher, init, todo, self.workers, lambda _d, rec: write(rec), failed,
                      on_started=self.on_started)


def build_enrich_index(corpus: Corpus, index: BM25Index) -> Path:
    """(Re)build the enrichment index from the JSONL, aligned with ``index``'s doc order."""
    folder = corpus.state_dir / DIRNAME
    recs = read_records(folder / JSONL)
    texts = [" ; ".join(recs[d].kept) if d in recs else "" for d in index.doc_ids]
    params = index.params.model_copy(update={"store_chars": 0})
    build_index(folder / "bm25", index.doc_ids, texts, params=params,
                fingerprint=str(index.meta.get("fingerprint", "")), bigrams=False,
                extra_meta={"base_built_at": index.meta.get("built_at"), "enriched_docs": len(recs)})
    return folder / "bm25"


class EnrichedBM25Retriever(RetrieverBase):
    """BM25 over the text fused with BM25 over the enrichment field: ``bm25(text) + weight * bm25(enrich)``."""

    name = "bm25"
    filters = True

    def __init__(self, base: BM25Retriever, enrich: BM25Index, weight: float = 0.3) -> None:
        if enrich.doc_ids != base.index.doc_ids:
            from sleuth.errors import StaleIndexError

            raise StaleIndexError("the enrichment index is not aligned with the BM25 index",
                                  hint="rebuild it with `sleuth enrich CORPUS --model M` (nothing is recomputed)")
        self.base = base
        self.index = base.index  # analyzer, df and doc order come from the main index
        self.enrich = enrich
        self.weight = weight
        self.with_text = base.with_text

    @classmethod
    def open(cls, corpus: Corpus, base: BM25Retriever, weight: float = 0.3) -> EnrichedBM25Retriever:
        """Over the field index, built from the enrichment file when missing or misaligned (no model call)."""
        from sleuth.errors import IndexMissingError

        path = corpus.state_dir / DIRNAME / "bm25"
        if not (corpus.state_dir / DIRNAME / JSONL).is_file():
            raise IndexMissingError(f"{corpus.root} has no enrichment",
                                    hint=f"run `sleuth enrich {corpus.root} --model MODEL` first")
        try:
            enrich: BM25Index | None = BM25Index.load(path)
        except IndexMissingError:
            enrich = None
        if enrich is None or enrich.doc_ids != base.index.doc_ids or enrich.meta.get(
            "fingerprint"
        ) != base.index.meta.get("fingerprint"):
            build_enrich_index(corpus, base.index)
            enrich = BM25Index.load(path)
        return cls(base, enrich, weight)

    def run(self, query: str, k: int = 10, *, tracer: Any = None, where: Any = None) -> SearchResult:
        """No model call at query time: ``tracer`` is accepted and unused. ``where``: a metadata filter."""
        if not isinstance(query, str) or not query.strip():
            raise ToolArgumentError("empty query", hint="pass some words to search for")
        return timed_result(self.name, query, k, lambda: self.search_weighted([(query, 1.0)], k, where=where))

    def search_weighted(self, terms: Sequence[tuple[str, float]], k: int = 10, *, where: Any = None
                        ) -> list[Hit]:
        if k < 1:
            raise ToolArgumentError(f"k must be at least 1, got {k}")
        flt = where_filter(where, self.index.corpus)
        tok, w = self.index.weighted_token_ids(terms)
        scores = self.index.score_vector(tok, w)
        if self.weight > 0:
            etok, ew = self.enrich.weighted_token_ids(terms)
            if len(etok):
                scores = scores + np.float32(self.weight) * self.enrich.score_vector(etok, ew)
        if flt is not None:
            scores = np.where(flt.mask(self.index.doc_ids), scores, np.float32(0))
        top, idx = _topk_numpy(scores, k)
        keep = top > 0
        return self.index.hits(top[keep], idx[keep], "bm25+enrich", self.with_text)
