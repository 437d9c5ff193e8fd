"""Dense retrieval over a corpus folder: one vector per document, persisted in ``corpus.state_dir / "dense"``.

Each document's text (for imported corpora ``title\\n\\ntext``) is embedded once, cut to the model's window
(its first ``embedder.max_tokens`` tokens; the rest of a long document does not count). On disk:

* ``meta.json``: format, version, embedder name, dim, max_tokens, index kind (exact/hnsw), corpus fingerprint,
  number of documents; written last.
* ``docs.json``: doc ids and the sha256 of each document's text, same order as the vector rows.
* ``vectors.npy`` (+ ``hnsw.usearch`` when approximate).

Builds hold the index's build lock and write through :func:`sleuth.retrieval.index_store.building` (atomic;
``meta.json`` last, with the checksums of the other files). A rebuild reuses the stored vector of every document
whose text hash is unchanged (same embedder), so re-indexing embeds only new or modified documents. Opening goes
through :func:`sleuth.retrieval.index_store.open_or_build`: an index whose corpus fingerprint or embedder differs
raises :class:`StaleIndexError` unless ``rebuild=True``; a damaged one (bad checksum, NaN or non-unit vectors,
wrong dims) raises :class:`IndexCorruptError` naming the file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sleuth.errors import ConfigError, IndexCorruptError, IndexMissingError, StaleIndexError, ToolArgumentError
from sleuth.records import Hit, SearchResult
from sleuth.retrieval.base import RetrieverBase, timed_result, where_filter
from sleuth.retrieval.embeddings import Embedder, get_embedder
from sleuth.retrieval.vector_index import (
    APPROX_THRESHOLD,
    IndexKind,
    VectorIndex,
    build_vector_index,
    load_vector_index,
)

if TYPE_CHECKING:
    from sleuth.corpus import Corpus
    from sleuth.retrieval.index_check import VerifiedCache

INDEX_NAME = "dense"
FORMAT = "sleuth-dense"
FORMAT_VERSION = 1
CHECKSUMMED = ("docs.json", "vectors.npy", "hnsw.usearch")


def rebuild_hint(path: Path) -> str:
    corpus = path.parent.parent if path.parent.name == ".sleuth" else "CORPUS"
    return f"rebuild it with `sleuth search QUERY --corpus {corpus} --method dense --rebuild`"


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class DenseBuildStats:
    n_docs: int
    embedded: int  # documents whose vector was computed in this build
    reused: int  # documents whose vector came from the previous index (unchanged text)
    kind: str
    seconds: float


def _read_json(path: Path, fix: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise IndexCorruptError(f"index file {path} is unreadable: {e}", hint=fix, path=str(path)) from None


class DenseIndex:
    def __init__(self, path: Path, meta: dict[str, Any], doc_ids: list[str], hashes: list[str], vindex: VectorIndex):
        self.path = path
        self.meta = meta
        self.doc_ids = doc_ids
        self.hashes = hashes
        self.vindex = vindex
        self.corpus: Corpus | None = None
        self.status = "loaded"  # set by open(): "up to date", "rebuilt (...)", ...

    def __len__(self) -> int:
        return len(self.doc_ids)

    @classmethod
    def load(cls, path: str | Path, *, verify: bool = True, cache: VerifiedCache | None = None) -> DenseIndex:
        """Open the index folder ``path``, checked: the build's checksums (before the files are parsed; on the
        first open of these exact files, remembered in ``cache``), then on every open finite unit vectors of the
        recorded shape and a doc list that matches them. Anything wrong raises :class:`IndexCorruptError`
        naming the file and the fix."""
        from sleuth.retrieval import index_check as ic

        path = Path(path)
        fix = rebuild_hint(path)
        meta_path = path / "meta.json"
        if not meta_path.is_file():
            raise IndexMissingError(
                f"no dense index at {path}",
                hint="it is built on first use: `sleuth search QUERY --corpus CORPUS --method dense`",
            )
        meta = _read_json(meta_path, fix)
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise IndexCorruptError(f"{meta_path} is not a sleuth dense index", hint=fix)
        if meta.get("format_version") != FORMAT_VERSION:
            raise IndexCorruptError(
                f"{path} has dense format version {meta.get('format_version')!r}; this sleuth reads version "
                f"{FORMAT_VERSION}", hint=fix,
            )
        if verify:
            names = ic.stat_names(path, ("meta.json", *CHECKSUMMED))
            ic.deep_check_once(path, names, meta, lambda: None, fix,
                               ic.VerifiedCache.default() if cache is None else cache)
        docs = _read_json(path / "docs.json", fix)
        kind = meta.get("kind", "")
        vindex = load_vector_index(path, kind if isinstance(kind, str) else "", fix=fix)
        if verify:
            ic.check_dense(path, meta, docs, vindex.vectors, fix)
        doc_ids, hashes = docs.get("doc_ids"), docs.get("hashes")
        if not isinstance(doc_ids, list) or not isinstance(hashes, list) or not (
            len(doc_ids) == len(hashes) == len(vindex) == meta.get("n_docs")
        ):
            raise IndexCorruptError(f"{path}: doc list, hashes and vectors disagree in length", hint=fix)
        return cls(path, meta, doc_ids, hashes, vindex)

    @classmethod
    def open(
        cls,
        corpus: Corpus,
        embedder: Embedder,
        *,
        rebuild: bool = False,
        build_missing: bool = True,
        kind: IndexKind = "auto",
        threshold: int = APPROX_THRESHOLD,
        progress: bool | None = False,
        check_stale: bool = True,
        force: bool = False,
        lock_timeout: float | None = None,
    ) -> DenseIndex:
        """The corpus's dense index: built when missing (``build_missing``), rebuilt (incrementally) when stale
        or corrupt and ``rebuild`` is set, else :class:`StaleIndexError` / :class:`IndexCorruptError`. Another
        embedder than the built one is stale. Builds run under the index's lock, as for BM25
        (:mod:`sleuth.retrieval.index_store`)."""
        from sleuth.retrieval.index_store import LOCK_TIMEOUT_S, open_or_build

        target = corpus.state_dir / INDEX_NAME
        timeout = LOCK_TIMEOUT_S if lock_timeout is None else lock_timeout
        fp = corpus.fingerprint() if (check_stale or rebuild or force) else ""

        def stale(index: DenseIndex) -> str | None:
            if (other := other_embedder(index, embedder)) is not None:
                return other
            if check_stale and index.meta.get("fingerprint") != fp:
                return "the corpus changed after the index was built"
            return None

        def build() -> None:
            build_dense_index(corpus, embedder, kind=kind, threshold=threshold, progress=progress,
                              fingerprint=fp or None, lock_timeout=timeout)

        opened = open_or_build(
            target, load=lambda: cls.load(target), stale=stale, build=build, rebuild=rebuild,
            build_missing=build_missing, force=force, timeout=timeout, what="dense index", fix=rebuild_hint(target),
        )
        opened.index.corpus = corpus
        opened.index.status = opened.status
        return opened.index

    def search_vectors(self, q: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        scores, rows = self.vindex.search(q, k)
        return [
            [(int(r), float(s)) for r, s in zip(rr.tolist(), ss.tolist(), strict=True) if r >= 0]
            for rr, ss in zip(rows, scores, strict=True)
        ]


def other_embedder(index: DenseIndex, embedder: Embedder) -> str | None:
    """Why ``index`` is stale for ``embedder`` (built with another one), or None."""
    if index.meta.get("embedder") != embedder.name:
        return f"it was built with embedder {index.meta.get('embedder')!r}, not {embedder.name!r}"
    return None


def _read_texts(corpus: Corpus, doc_ids: list[str]) -> list[str]:
    from sleuth.errors import BinaryDocumentError

    out = []
    for d in doc_ids:
        try:
            out.append(corpus.read_text(d))
        except BinaryDocumentError:
            out.append("")  # kept so rows stay aligned with doc ids; an empty text embeds to a vector far from all
    return out


def build_dense_index(
    corpus: Corpus,
    embedder: Embedder,
    *,
    kind: IndexKind = "auto",
    threshold: int = APPROX_THRESHOLD,
    progress: bool | None = False,
    fingerprint: str | None = None,
    lock_timeout: float | None = None,
) -> DenseBuildStats:
    """(Re)build ``corpus``'s dense index, embedding only documents whose text changed since the last build.
    The whole build (embedding included) holds the index's build lock: a second builder waits, then reuses."""
    import time

    from sleuth.retrieval.index_store import LOCK_TIMEOUT_S, build_lock

    target = corpus.state_dir / INDEX_NAME
    timeout = LOCK_TIMEOUT_S if lock_timeout is None else lock_timeout
    with build_lock(target, timeout=timeout):
        t0 = time.perf_counter()
        return _build_locked(corpus, embedder, target, kind, threshold, progress, fingerprint, timeout, t0)


def _unit_rows(v: np.ndarray, embedder: Embedder) -> np.ndarray:
    """The embedder's rows as unit float32 vectors (the Embedder protocol promises them; this enforces it)."""
    from sleuth.retrieval.embeddings import normalize

    v = np.ascontiguousarray(v, dtype=np.float32)
    if v.size and not np.isfinite(v).all():
        raise ConfigError(f"embedder {embedder.name!r} returned NaN or infinite values",
                          hint="check the embedding model or service; nothing was written")
    norms = np.einsum("ij,ij->i", v, v) if v.size else np.zeros(0, np.float32)
    return normalize(v) if v.size and float(np.abs(norms[norms > 0] - 1).max(initial=0.0)) > 1e-3 else v


def _build_locked(
    corpus: Corpus, embedder: Embedder, target: Path, kind: IndexKind, threshold: int, progress: bool | None,
    fingerprint: str | None, timeout: float, t0: float,
) -> DenseBuildStats:
    fp = fingerprint or corpus.fingerprint()
    doc_ids = corpus.doc_ids()
    texts = _read_texts(corpus, doc_ids)
    return write_dense_units(target, doc_ids, texts, embedder, kind=kind, threshold=threshold,
                             progress=progress, fingerprint=fp, timeout=timeout, t0=t0,
                             reuse_from=[corpus.state_dir / "dense-passages"],
                             aliases=[text_hash(t.strip()) for t in texts])


def write_dense_units(
    target: Path, unit_ids: list[str], texts: list[str], embedder: Embedder, *, kind: IndexKind = "auto",
    threshold: int = APPROX_THRESHOLD, progress: bool | None = False, fingerprint: str = "",
    timeout: float | None = None, t0: float | None = None, extra_meta: dict[str, Any] | None = None,
    reuse_from: Sequence[Path] = (), aliases: Sequence[str | None] | None = None,
) -> DenseBuildStats:
    """Write the dense index ``target`` over ``texts`` (one row per ``unit_ids`` entry: documents, or passages for
    :mod:`sleuth.retrieval.passages`), reusing the vector of every text already embedded by the same embedder in
    the previous index or in the indexes ``reuse_from`` (the document and passage indexes of one corpus share the
    texts of documents that are one passage). ``aliases[i]``: another hash under which row ``i``'s vector may be
    stored (the hash of the same text with the white space around it, which the embedder ignores, kept or
    stripped). ``extra_meta`` goes into ``meta.json`` (checksummed with it). The caller holds ``target``'s build
    lock."""
    import time

    from sleuth.retrieval import index_check as ic
    from sleuth.retrieval.index_store import LOCK_TIMEOUT_S, building

    t0 = time.perf_counter() if t0 is None else t0
    timeout = LOCK_TIMEOUT_S if timeout is None else timeout
    hashes = [text_hash(t) for t in texts]
    old: dict[str, np.ndarray] = {}
    alias = list(aliases) if aliases is not None else [None] * len(hashes)
    wanted = set(hashes) | {a for a in alias if a}
    for source in (*reuse_from, target):
        try:
            prev = DenseIndex.load(source)
        except (IndexMissingError, IndexCorruptError, StaleIndexError):
            continue
        if prev.meta.get("embedder") == embedder.name:
            old.update({h: np.array(prev.vindex.vectors[i]) for i, h in enumerate(prev.hashes) if h in wanted})
        del prev
    for i, h in enumerate(hashes):
        a = alias[i]
        if h not in old and a and a in old:
            old[h] = old[a]
    todo = [i for i, h in enumerate(hashes) if h not in old]
    new = _unit_rows(embedder.embed([texts[i] for i in todo], progress=progress), embedder) if todo else None
    if new is not None and new.size:
        dim = int(new.shape[1])
    else:
        dim = len(next(iter(old.values()))) if old else embedder.dim
    vectors = np.zeros((len(unit_ids), dim), dtype=np.float32)
    new_pos = {i: j for j, i in enumerate(todo)}
    for i, h in enumerate(hashes):
        vectors[i] = new[new_pos[i]] if i in new_pos else old[h]  # type: ignore[index]
    vindex = build_vector_index(vectors, kind, threshold)
    with building(target, timeout=timeout) as tmp:
        vindex.save(tmp)
        (tmp / "docs.json").write_text(json.dumps({"doc_ids": unit_ids, "hashes": hashes}), encoding="utf-8")
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "embedder": embedder.name,
            "dim": dim,
            "max_tokens": embedder.max_tokens,
            "kind": vindex.kind,
            "fingerprint": fingerprint,
            "n_docs": len(unit_ids),
            **(extra_meta or {}),
        }
        meta["checksums"] = {**ic.file_checksums(tmp, CHECKSUMMED), "meta.json": ic.meta_digest(meta)}
        (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")  # written last
    ic.VerifiedCache.default().remember(target, ic.stat_names(target, ("meta.json", *CHECKSUMMED)))
    return DenseBuildStats(len(unit_ids), len(todo), len(unit_ids) - len(todo), vindex.kind, time.perf_counter() - t0)


class DenseRetriever(RetrieverBase):
    """``run``/``search(query, k)``: embed the query (cut to the model window) and return the nearest documents."""

    name = "dense"
    filters = True

    def __init__(self, index: DenseIndex, embedder: Embedder, *, with_text: bool = True) -> None:
        if index.meta.get("embedder") != embedder.name:
            raise ConfigError(
                f"index built with {index.meta.get('embedder')!r}, queries would be embedded with {embedder.name!r}",
                hint="pass the same embedder, or rebuild the index",
            )
        self.index = index
        self.embedder = embedder
        self.with_text = with_text

    @classmethod
    def open(cls, corpus: Corpus, *, embedder: Embedder | str | None = None, **kwargs: Any) -> DenseRetriever:
        with_text = kwargs.pop("with_text", True)
        emb = embedder if embedder is not None and not isinstance(embedder, str) else get_embedder(embedder)
        return cls(DenseIndex.open(corpus, emb, **kwargs), emb, with_text=with_text)

    def run(self, query: str, k: int = 10, *, tracer: Any = None, where: Any = None) -> SearchResult:
        """``tracer`` is accepted and unused: the Embedder protocol records no usage yet (an API embedder's query
        embedding is not in the result's usage). ``where``: a metadata filter; the matching documents are then
        scored exactly (every matching vector, also when the index is approximate)."""
        if not isinstance(query, str) or not query.strip():
            raise ToolArgumentError("empty query", hint="pass some words to search for")
        if k < 1:
            raise ToolArgumentError(f"k must be at least 1, got {k}")
        flt = where_filter(where, self.index.corpus)
        return timed_result(self.name, query, k, lambda: self._nearest(query, k, flt))

    def _nearest(self, query: str, k: int, flt: Any = None) -> list[Hit]:
        q = self.embedder.embed([query])
        pairs = self.index.search_vectors(q, k)[0] if flt is None else self._exact_among(q, k, flt)
        out = []
        for row, score in pairs:
            doc_id = self.index.doc_ids[row]
            text = ""
            if self.with_text and self.index.corpus is not None:
                try:
                    text = self.index.corpus.read_text(doc_id)
                except Exception:  # removed since the build: the hit stays, without text
                    text = ""
            out.append(Hit(doc_id=doc_id, score=score, text=text, source=self.name))
        return out


    def _exact_among(self, q: np.ndarray, k: int, flt: Any) -> list[tuple[int, float]]:
        """The ``k`` nearest of the documents ``flt`` keeps, by exact inner product (ties: the lower row)."""
        rows = np.flatnonzero(flt.mask(self.index.doc_ids))
        if len(rows) == 0:
            return []
        vectors = np.asarray(self.index.vindex.vectors)
        scores = vectors[rows] @ np.asarray(q, dtype=np.float32)[0]
        order = np.lexsort((rows, -scores))[:k]
        return [(int(rows[i]), float(scores[i])) for i in order]


def dense_retriever(corpus: Corpus, *, model: Any = None, **opts: Any) -> DenseRetriever:
    """Registry factory (``model`` is unused): ``embedder`` (name or Embedder), ``rebuild``, ``build_missing``,
    ``kind`` (auto/exact/hnsw), ``threshold``, ``progress``, ``with_text``."""
    return DenseRetriever.open(corpus, **opts)
