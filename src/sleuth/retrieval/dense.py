"""Dense retrieval over a corpus folder: one vector per document, persisted in ``corpus.state_dir / "dense"``.

Each document's text (for imported corpora ``title\\n\\ntext``) is embedded once, cut to the model's window
(its first ``embedder.max_tokens`` tokens; the rest of a long document does not count). On disk:

* ``meta.json``: format, version, embedder name, dim, max_tokens, index kind (exact/hnsw), corpus fingerprint,
  number of documents; written last.
* ``docs.json``: doc ids and the sha256 of each document's text, same order as the vector rows.
* ``vectors.npy`` (+ ``hnsw.usearch`` when approximate).

Builds go through :func:`sleuth.fsutil.atomic_dir`. A rebuild reuses the stored vector of every document whose
text hash is unchanged (same embedder), so re-indexing embeds only new or modified documents. Opening an index
whose corpus fingerprint or embedder differs raises :class:`StaleIndexError` unless ``rebuild=True``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sleuth.errors import ConfigError, IndexCorruptError, IndexMissingError, StaleIndexError, ToolArgumentError
from sleuth.records import Hit, SearchResult
from sleuth.retrieval.base import RetrieverBase, timed_result
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

INDEX_NAME = "dense"
FORMAT = "sleuth-dense"
FORMAT_VERSION = 1


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class DenseBuildStats:
    n_docs: int
    embedded: int  # documents whose vector was computed in this build
    reused: int  # documents whose vector came from the previous index (unchanged text)
    kind: str
    seconds: float


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise IndexCorruptError(f"{path} is unreadable: {e}") from None


class DenseIndex:
    def __init__(self, path: Path, meta: dict[str, Any], doc_ids: list[str], hashes: list[str], vindex: VectorIndex):
        self.path = path
        self.meta = meta
        self.doc_ids = doc_ids
        self.hashes = hashes
        self.vindex = vindex
        self.corpus: Corpus | None = None

    def __len__(self) -> int:
        return len(self.doc_ids)

    @classmethod
    def load(cls, path: str | Path) -> DenseIndex:
        path = Path(path)
        meta_path = path / "meta.json"
        if not meta_path.is_file():
            raise IndexMissingError(
                f"no dense index at {path}",
                hint="it is built on first use: `sleuth search QUERY --corpus CORPUS --method dense`",
            )
        meta = _read_json(meta_path)
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise IndexCorruptError(f"{meta_path} is not a sleuth dense index")
        if meta.get("format_version") != FORMAT_VERSION:
            raise StaleIndexError(f"{path} has dense format version {meta.get('format_version')!r}")
        docs = _read_json(path / "docs.json")
        doc_ids, hashes = docs.get("doc_ids"), docs.get("hashes")
        vindex = load_vector_index(path, meta.get("kind", ""))
        if not isinstance(doc_ids, list) or not isinstance(hashes, list) or not (
            len(doc_ids) == len(hashes) == len(vindex) == meta.get("n_docs")
        ):
            raise IndexCorruptError(f"{path}: doc list, hashes and vectors disagree in length")
        if len(vindex) and vindex.vectors.shape[1] != meta.get("dim"):
            raise IndexCorruptError(f"{path}: vectors have {vindex.vectors.shape[1]} dims, meta says {meta.get('dim')}")
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
    ) -> DenseIndex:
        """The corpus's dense index: built when missing (``build_missing``), rebuilt (incrementally) when stale
        and ``rebuild`` is set, else :class:`StaleIndexError`. Another embedder than the built one is stale."""
        from sleuth.fsutil import sweep_stale_builds

        target = corpus.state_dir / INDEX_NAME
        sweep_stale_builds(target.parent, INDEX_NAME)
        fp = corpus.fingerprint() if (check_stale or rebuild) else ""
        index: DenseIndex | None
        try:
            index = cls.load(target)
        except IndexMissingError:
            if not build_missing:
                raise
            index = None
        except (IndexCorruptError, StaleIndexError):
            if not rebuild:
                raise
            index = None
        if index is not None:
            reason = None
            if index.meta.get("embedder") != embedder.name:
                reason = f"it was built with embedder {index.meta.get('embedder')!r}, not {embedder.name!r}"
            elif check_stale and index.meta.get("fingerprint") != fp:
                reason = "the corpus changed after the index was built"
            if reason is None:
                index.corpus = corpus
                return index
            if not rebuild:
                raise StaleIndexError(f"dense index at {target} is stale: {reason}")
        build_dense_index(corpus, embedder, kind=kind, threshold=threshold, progress=progress, fingerprint=fp or None)
        index = cls.load(target)
        index.corpus = corpus
        return index

    def search_vectors(self, q: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        scores, rows = self.vindex.search(q, k)
        return [
            [(int(r), float(s)) for r, s in zip(rr.tolist(), ss.tolist(), strict=True) if r >= 0]
            for rr, ss in zip(rows, scores, strict=True)
        ]


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
) -> DenseBuildStats:
    """(Re)build ``corpus``'s dense index, embedding only documents whose text changed since the last build."""
    import time

    from sleuth.fsutil import atomic_dir

    t0 = time.perf_counter()
    fp = fingerprint or corpus.fingerprint()
    target = corpus.state_dir / INDEX_NAME
    doc_ids = corpus.doc_ids()
    texts = _read_texts(corpus, doc_ids)
    hashes = [text_hash(t) for t in texts]
    old: dict[str, np.ndarray] = {}
    try:
        prev = DenseIndex.load(target)
        if prev.meta.get("embedder") == embedder.name:
            old = {h: prev.vindex.vectors[i] for i, h in enumerate(prev.hashes)}
        del prev
    except (IndexMissingError, IndexCorruptError, StaleIndexError):
        pass
    todo = [i for i, h in enumerate(hashes) if h not in old]
    new = embedder.embed([texts[i] for i in todo], progress=progress) if todo else None
    dim = int(new.shape[1]) if new is not None and new.size else (len(next(iter(old.values()))) if old else embedder.dim)
    vectors = np.zeros((len(doc_ids), dim), dtype=np.float32)
    new_pos = {i: j for j, i in enumerate(todo)}
    for i, h in enumerate(hashes):
        vectors[i] = new[new_pos[i]] if i in new_pos else old[h]  # type: ignore[index]
    vindex = build_vector_index(vectors, kind, threshold)
    with atomic_dir(target) as tmp:
        vindex.save(tmp)
        (tmp / "docs.json").write_text(json.dumps({"doc_ids": doc_ids, "hashes": hashes}), encoding="utf-8")
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "embedder": embedder.name,
            "dim": dim,
            "max_tokens": embedder.max_tokens,
            "kind": vindex.kind,
            "fingerprint": fp,
            "n_docs": len(doc_ids),
        }
        (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")  # written last
    return DenseBuildStats(len(doc_ids), len(todo), len(doc_ids) - len(todo), vindex.kind, time.perf_counter() - t0)


class DenseRetriever(RetrieverBase):
    """``run``/``search(query, k)``: embed the query (cut to the model window) and return the nearest documents."""

    name = "dense"

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

    def run(self, query: str, k: int = 10, *, tracer: Any = None) -> SearchResult:
        """``tracer`` is accepted and unused: the Embedder protocol records no usage yet (an API embedder's query
        embedding is not in the result's usage)."""
        if not isinstance(query, str) or not query.strip():
            raise ToolArgumentError("empty query", hint="pass some words to search for")
        if k < 1:
            raise ToolArgumentError(f"k must be at least 1, got {k}")
        return timed_result(self.name, query, k, lambda: self._nearest(query, k))

    def _nearest(self, query: str, k: int) -> list[Hit]:
        q = self.embedder.embed([query])
        out = []
        for row, score in self.index.search_vectors(q, k)[0]:
            doc_id = self.index.doc_ids[row]
            text = ""
            if self.with_text and self.index.corpus is not None:
                try:
                    text = self.index.corpus.read_text(doc_id)
                except Exception:  # removed since the build: the hit stays, without text
                    text = ""
            out.append(Hit(doc_id=doc_id, score=score, text=text, source=self.name))
        return out


def dense_retriever(corpus: Corpus, *, model: Any = None, **opts: Any) -> DenseRetriever:
    """Registry factory (``model`` is unused): ``embedder`` (name or Embedder), ``rebuild``, ``build_missing``,
    ``kind`` (auto/exact/hnsw), ``threshold``, ``progress``, ``with_text``."""
    return DenseRetriever.open(corpus, **opts)
