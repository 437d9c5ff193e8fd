"""Passage indexes: BM25 and dense search over the passages of a corpus (:mod:`sleuth.retrieval.chunking`),
with hits that name their passage and rankings of documents or of passages.

* ``CORPUS/.sleuth/bm25-passages`` is a BM25 index (:mod:`sleuth.retrieval.bm25_build`, the same builder, lock
  and checks) whose units are passages: its doc ids are passage ids (``a.pdf#p3``) and ``meta.json`` holds the
  chunker's parameters and every passage's ``[start, end, start_line, end_line]``.
* ``CORPUS/.sleuth/dense-passages`` is a dense index (:func:`sleuth.retrieval.dense.write_dense_units`: vectors of
  unchanged passages are reused) with the same table in its ``meta.json``.

Both open through :func:`sleuth.retrieval.index_store.open_or_build`: an index built from another corpus state or
with other chunking parameters is stale (rebuilt when allowed, else :class:`~sleuth.errors.StaleIndexError`).
A passage index is always rebuilt whole when the corpus changes (no incremental update, unlike the document BM25
index); the dense one embeds only new or changed passages.

:class:`PassageRetriever` searches such an index and returns, by default, a ranking of **documents**: a document's
score is the best score of its passages (max over passages), its hit carries that passage's text, its line
(``Hit.line``) and ``metadata["passage"]`` (id, n, start, end, start_line, end_line) plus how many of its passages
were in the ranked list (``metadata["passages_ranked"]``). ``group="passage"`` returns the passages themselves
(a document can then appear several times; ``doc_id`` is still the document's id). Fusion (hybrid) and the evals
use document rankings.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sleuth.errors import ConfigError, CorpusError, PassageNotFoundError, ToolArgumentError
from sleuth.records import Hit, SearchResult
from sleuth.retrieval.base import Retriever, RetrieverBase
from sleuth.retrieval.chunking import Chunker, Passage, passage_id, split_passage_id

if TYPE_CHECKING:
    from sleuth.corpus import Corpus
    from sleuth.retrieval.bm25 import BM25Index, BM25Params
    from sleuth.retrieval.dense import DenseIndex
    from sleuth.retrieval.embeddings import Embedder
    from sleuth.tracing import Tracer

BM25_PASSAGES = "bm25-passages"
DENSE_PASSAGES = "dense-passages"
Group = Literal["doc", "passage"]


def as_chunker(value: Chunker | dict[str, Any] | None) -> Chunker:
    """A :class:`Chunker` from itself, a dict of its fields (``size``, ``overlap``) or None (the default)."""
    if value is None:
        return Chunker()
    if isinstance(value, Chunker):
        return value
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"size", "overlap"})
        if unknown:
            raise ConfigError(f"unknown chunking options {unknown}", hint="chunking takes size and overlap")
        return Chunker(**value)
    raise ConfigError(f"chunking must be a Chunker or a dict, got {type(value).__name__}")


@dataclass
class PassageTable:
    """The passages of an index, in index order: ``ids[i]`` is row ``i``; spans are ``[start, end, start_line,
    end_line]``."""

    chunker: Chunker
    ids: list[str]
    spans: list[list[int]]

    @classmethod
    def from_meta(cls, meta: dict[str, Any], ids: list[str], path: Path) -> PassageTable:
        from sleuth.errors import IndexCorruptError

        info = meta.get("passages")
        if not (isinstance(info, dict) and isinstance(info.get("spans"), list) and len(info["spans"]) == len(ids)):
            raise IndexCorruptError(f"{path}/meta.json has no passage table for its {len(ids)} rows",
                                    hint="rebuild it: `sleuth index CORPUS --passages --rebuild`", path=str(path))
        return cls(Chunker.from_params(info["chunking"]), ids, info["spans"])

    def passage(self, i: int) -> Passage:
        parsed = split_passage_id(self.ids[i])
        assert parsed is not None  # the builder wrote passage ids
        s, e, l1, l2 = self.spans[i]
        return Passage(parsed[0], parsed[1], int(s), int(e), int(l1), int(l2))


def corpus_passages(corpus: Corpus, chunker: Chunker, doc_ids: Sequence[str] | None = None) -> Iterator[
        tuple[str, list[Passage]]]:
    """``(doc id, its passages)`` for every document (a document without text has none; one that became unreadable
    since the listing is skipped)."""
    for d in corpus.doc_ids() if doc_ids is None else doc_ids:
        try:
            text = corpus.read_text(d)
        except CorpusError:
            continue
        yield d, chunker.chunk(d, text)


def find_passage(corpus: Corpus, value: str, chunker: Chunker | None = None) -> tuple[Passage, str] | None:
    """The passage named by ``value`` (``doc_id#p3``) and the document's text; None when ``value`` is not a
    passage id or names a document itself. :class:`PassageNotFoundError` when the document has fewer passages."""
    parsed = split_passage_id(value)
    if parsed is None or value in corpus:
        return None
    doc_id, n = parsed
    text = corpus.read_text(doc_id)  # DocumentNotFoundError names the document when it does not exist
    found = (chunker or Chunker()).chunk(doc_id, text)
    if n > len(found):
        what = "no passages (it has no text)" if not found else f"{len(found)} passages"
        raise PassageNotFoundError(f"{doc_id!r} has {what}; there is no passage p{n}")
    return found[n - 1], text


# --- building and opening ------------------------------------------------------------------------------------


def _stale_rule(corpus: Corpus, chunker: Chunker, fp: str, check_stale: bool, extra: Any = None) -> Any:
    def stale(index: Any) -> str | None:
        info = index.meta.get("passages") if isinstance(index.meta.get("passages"), dict) else {}
        if info.get("chunking") != chunker.params():
            return f"it was built with chunking {info.get('chunking')}, not {chunker.params()}"
        if extra is not None and (why := extra(index)):
            return str(why)
        if check_stale and index.meta.get("fingerprint") != fp:
            return "the corpus changed after the index was built"
        return None

    return stale


def _table(corpus: Corpus, chunker: Chunker) -> tuple[list[str], list[list[int]]]:
    ids: list[str] = []
    spans: list[list[int]] = []
    for _, found in corpus_passages(corpus, chunker):
        for p in found:
            ids.append(p.id)
            spans.append([p.start, p.end, p.start_line, p.end_line])
    return ids, spans


def _texts(corpus: Corpus, ids: list[str], spans: list[list[int]], whole: list[str | None] | None = None
           ) -> Iterator[str]:
    """The text of every passage, reading each document once (in order: a document's passages are adjacent).
    ``whole``, when given, gets the document's text for a passage that is all of it (else None)."""
    doc, text = None, ""
    for pid, (s, e, _, _) in zip(ids, spans, strict=True):
        d = pid.rsplit("#p", 1)[0]
        if d != doc:
            doc = d
            try:
                text = corpus.read_text(d)
            except CorpusError:
                text = ""
        piece = text[s:e]
        if whole is not None:
            whole.append(text if len(piece) == len(text.strip()) else None)
        yield piece


def open_bm25_passages(
    corpus: Corpus, chunker: Chunker | None = None, *, params: BM25Params | None = None, rebuild: bool = False,
    build_missing: bool = True, progress: bool = False, check_stale: bool = True, force: bool = False,
    lock_timeout: float | None = None, backend: Any = "auto",
) -> BM25Index:
    """The corpus's passage BM25 index (built when missing, rebuilt when stale and ``rebuild``), see the module
    docstring. ``params``: BM25 parameters (default: the index's own, else BM25's defaults)."""
    from sleuth.retrieval.bm25 import BM25Index, BM25Params
    from sleuth.retrieval.bm25_build import build_index
    from sleuth.retrieval.index_store import LOCK_TIMEOUT_S, open_or_build

    chunker = chunker or Chunker()
    target = corpus.state_dir / BM25_PASSAGES
    timeout = LOCK_TIMEOUT_S if lock_timeout is None else lock_timeout
    fp = corpus.fingerprint() if (check_stale or rebuild or force) else ""

    def other_params(index: Any) -> str | None:
        if params is not None and params.model_dump() != index.params.model_dump():
            return "the requested BM25 parameters differ from the index's"
        return None

    def build() -> None:
        ids, spans = _table(corpus, chunker)
        p = params or BM25Params()
        p = p.model_copy(update={"store_chars": max(p.store_chars, chunker.size)})  # hits carry whole passages
        build_index(target, ids, _texts(corpus, ids, spans), params=p, fingerprint=fp, progress=progress,
                    lock_timeout=timeout, bigrams=False,
                    extra_meta={"passages": {"chunking": chunker.params(), "spans": spans}})

    opened = open_or_build(
        target, load=lambda: BM25Index.load(target, backend=backend),
        stale=_stale_rule(corpus, chunker, fp, check_stale, other_params), build=build, rebuild=rebuild,
        build_missing=build_missing, force=force, timeout=timeout, what="passage BM25 index",
        fix=f"rebuild it with `sleuth index {corpus.root} --passages --rebuild`",
    )
    opened.index.corpus = corpus
    opened.index.status = opened.status
    return opened.index


def open_dense_passages(
    corpus: Corpus, embedder: Embedder, chunker: Chunker | None = None, *, rebuild: bool = False,
    build_missing: bool = True, kind: Any = "auto", threshold: int | None = None, progress: bool | None = False,
    check_stale: bool = True, force: bool = False, lock_timeout: float | None = None,
) -> DenseIndex:
    """The corpus's passage dense index (see the module docstring); another embedder than the built one is stale."""
    from sleuth.retrieval.dense import DenseIndex, other_embedder, text_hash, write_dense_units
    from sleuth.retrieval.index_store import LOCK_TIMEOUT_S, build_lock, open_or_build
    from sleuth.retrieval.vector_index import APPROX_THRESHOLD

    chunker = chunker or Chunker()
    target = corpus.state_dir / DENSE_PASSAGES
    timeout = LOCK_TIMEOUT_S if lock_timeout is None else lock_timeout
    fp = corpus.fingerprint() if (check_stale or rebuild or force) else ""

    def build() -> None:
        with build_lock(target, timeout=timeout):
            ids, spans = _table(corpus, chunker)
            whole: list[str | None] = []
            texts = list(_texts(corpus, ids, spans, whole))
            aliases = [text_hash(w) if w is not None else None for w in whole]  # a document that is one passage
            write_dense_units(target, ids, texts, embedder, kind=kind, aliases=aliases,
                              threshold=APPROX_THRESHOLD if threshold is None else threshold, progress=progress,
                              fingerprint=fp, timeout=timeout, reuse_from=[corpus.state_dir / "dense"],
                              extra_meta={"passages": {"chunking": chunker.params(), "spans": spans}})

    opened = open_or_build(
        target, load=lambda: DenseIndex.load(target), stale=_stale_rule(corpus, chunker, fp, check_stale,
                                                                         lambda i: other_embedder(i, embedder)),
        build=build, rebuild=rebuild, build_missing=build_missing, force=force, timeout=timeout,
        what="passage dense index",
        fix=f"rebuild it with `sleuth search QUERY --corpus {corpus.root} --method dense --rebuild`",
    )
    opened.index.corpus = corpus
    opened.index.status = opened.status
    return opened.index


# --- the retriever -------------------------------------------------------------------------------------------


class PassageRetriever(RetrieverBase):
    """Ranks passages with ``inner`` (a retriever over a passage index: its hits' doc ids are passage ids) and
    returns documents, each scored by its best passage (``group="doc"``, default), or the passages
    (``group="passage"``). See the module docstring for what a hit carries."""

    def __init__(self, inner: Retriever, table: PassageTable, corpus: Corpus, *, group: Group = "doc",
                 with_text: bool = True) -> None:
        if group not in ("doc", "passage"):
            raise ConfigError(f"unknown passage grouping {group!r}", hint="use group='doc' or group='passage'")
        self.inner = inner
        self.name = inner.name
        self.table = table
        self.chunker = table.chunker
        self.corpus = corpus
        self.group = group
        self.with_text = with_text
        self._row = {pid: i for i, pid in enumerate(table.ids)}

    def run(self, query: str, k: int = 10, *, tracer: Tracer | None = None) -> SearchResult:
        if k < 1:
            raise ToolArgumentError(f"k must be at least 1, got {k}")
        n = len(self.table.ids)
        fetch = k if self.group == "passage" else min(n, 4 * k + 20)  # a document may hold many of the top passages
        while True:
            res = self.inner.run(query, max(1, fetch), tracer=tracer)
            hits = self._hits(res.hits, k)
            if self.group == "passage" or len(hits) >= k or fetch >= n or len(res.hits) < fetch:
                break
            fetch = min(n, fetch * 4)
        return res.model_copy(update={"hits": hits, "k": k})

    def _hits(self, ranked: list[Hit], k: int) -> list[Hit]:
        out: list[Hit] = []
        best: dict[str, int] = {}  # doc id -> its position in out (group="doc")
        texts: dict[str, str] = {}
        for h in ranked:
            row = self._row.get(h.doc_id)
            if row is None:
                continue
            p = self.table.passage(row)
            if self.group == "doc" and p.doc_id in best:
                out[best[p.doc_id]].metadata["passages_ranked"] += 1
                continue
            if len(out) >= k:
                if self.group == "passage":
                    break
                continue  # still counting the passages of the documents already in
            text = self._text(p, h.text, texts) if self.with_text else ""
            meta = {**h.metadata, "passage": p.span(), "passages_ranked": 1}
            out.append(Hit(doc_id=p.doc_id, score=h.score, text=text, source=h.source or self.name, line=p.start_line,
                           metadata=meta))
            best[p.doc_id] = len(out) - 1
        return out

    def _text(self, p: Passage, stored: str, cache: dict[str, str]) -> str:
        if len(stored) == p.end - p.start:  # the index stores whole passages (BM25)
            return stored
        if p.doc_id not in cache:
            try:
                cache[p.doc_id] = self.corpus.read_text(p.doc_id)
            except CorpusError:  # removed since the build: the hit stays, without text
                cache[p.doc_id] = ""
        return cache[p.doc_id][p.start:p.end]


def bm25_passage_retriever(corpus: Corpus, *, chunking: Any = None, group: Group = "doc", with_text: bool = True,
                           **opts: Any) -> PassageRetriever:
    """BM25 over passages (options of :func:`open_bm25_passages`)."""
    from sleuth.retrieval.bm25 import BM25Retriever

    index = open_bm25_passages(corpus, as_chunker(chunking), **opts)
    return PassageRetriever(BM25Retriever(index), PassageTable.from_meta(index.meta, index.doc_ids, index.path),
                            corpus, group=group, with_text=with_text)


def dense_passage_retriever(corpus: Corpus, *, chunking: Any = None, group: Group = "doc", with_text: bool = True,
                            embedder: Any = None, **opts: Any) -> PassageRetriever:
    """Dense search over passages (options of :func:`open_dense_passages`; ``embedder``: a name or Embedder)."""
    from sleuth.retrieval.dense import DenseRetriever
    from sleuth.retrieval.embeddings import get_embedder

    emb = embedder if embedder is not None and not isinstance(embedder, str) else get_embedder(embedder)
    index = open_dense_passages(corpus, emb, as_chunker(chunking), **opts)
    return PassageRetriever(DenseRetriever(index, emb, with_text=False),
                            PassageTable.from_meta(index.meta, index.doc_ids, index.path), corpus, group=group,
                            with_text=with_text)


__all__ = [
    "BM25_PASSAGES", "DENSE_PASSAGES", "PassageRetriever", "PassageTable", "as_chunker", "bm25_passage_retriever",
    "corpus_passages", "dense_passage_retriever", "find_passage", "open_bm25_passages", "open_dense_passages",
    "passage_id",
]
