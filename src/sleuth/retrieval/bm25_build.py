"""Building a BM25 index: a streaming, atomic builder (see :mod:`sleuth.retrieval.bm25` for the format).

Documents are read and tokenized one at a time into a flat int32 token stream, then the term-major score matrix
is computed with vectorised numpy. Everything is written inside :func:`sleuth.retrieval.index_store.building`
(the index's build lock, then :func:`sleuth.fsutil.atomic_dir`) with ``meta.json`` last, holding the checksums of
the other files: an interrupted build never leaves a loadable half index, and two builds of one index never run
at once.

:func:`update_corpus` is the incremental form: documents whose size and mtime are those recorded at the last
build keep their analyzed tokens and stored text (sliced from the old index), only added and changed documents
are read and tokenized, removed ones are dropped; then the score matrix is computed again over the whole token
stream, so N, every df and the average length are exact. Token ids are renumbered by first occurrence, as a
fresh build numbers them: the result is the index a full rebuild would write (the same arrays), without reading
or tokenizing the unchanged documents.
"""

from __future__ import annotations

import json
import time
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sleuth.errors import ConfigError
from sleuth.retrieval.bm25 import CHECKSUMMED, FORMAT_VERSION, INDEX_NAME, META, TF_FILES, Analyzer, BM25Params

if TYPE_CHECKING:
    from rich.progress import Progress

    from sleuth.corpus import Corpus
    from sleuth.loaders.store import Entry


@dataclass
class BuildStats:
    n_docs: int
    n_tokens: int
    vocab_size: int
    seconds: float
    added: int = 0  # incremental updates: documents read and tokenized because they are new ...
    changed: int = 0  # ... or changed since the last build
    removed: int = 0  # documents dropped
    kept: int = 0  # documents whose tokens were reused unread (0 for a full build)
    index: Any = None  # an update's new index, ready in memory (an overlay: sleuth.retrieval.bm25_overlay)


@dataclass
class Reused:
    """A document carried over from the previous index unread: its token ids (in that index's vocabulary, given
    as ``vocab``) and its stored text bytes."""

    tokens: np.ndarray
    blob: bytes


@dataclass
class GlobalStats:
    """The statistics BM25 scores with, when they are not the token stream's own: a shard of a sharded index
    (:mod:`sleuth.retrieval.bm25_shards`) is scored with the whole corpus's document count ``n_docs``, average
    length ``avgdl`` and document frequencies (``df[token id]`` over the whole vocabulary of ``vocab_size``
    terms; ``bigram_df`` for the sorted ``bigram_keys`` of the whole corpus), so its scores are the unsharded
    index's."""

    n_docs: int
    avgdl: float
    vocab_size: int
    df: np.ndarray
    bigram_keys: np.ndarray
    bigram_df: np.ndarray

    def bigram_df_of(self, keys: np.ndarray) -> np.ndarray:
        """The whole corpus's df of bigram ``keys`` (every one of them must be among :attr:`bigram_keys`)."""
        at = np.searchsorted(self.bigram_keys, keys)
        if len(keys) and (int(at.max()) >= len(self.bigram_keys) or
                          not np.array_equal(self.bigram_keys[at], keys)):
            raise ConfigError("a shard holds a bigram the global statistics lack (a build bug)")
        return np.asarray(self.bigram_df, dtype=np.int64)[at]


def _progress(enabled: bool) -> Progress | None:
    import sys

    if not enabled or not sys.stderr.isatty():  # a rich bar in a log file is one stray line; builds are quick
        return None
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        transient=False, console=Console(stderr=True),  # progress never goes to stdout, where results go
    )


def build_index(
    target: str | Path,
    doc_ids: Sequence[str],
    texts: Iterable[str | Reused],
    *,
    params: BM25Params | None = None,
    fingerprint: str = "",
    progress: bool = False,
    extra_meta: dict[str, Any] | None = None,
    lock_timeout: float | None = None,
    bigrams: bool = True,
    old_vocab: dict[str, int] | None = None,
) -> BuildStats:
    """Build an index of ``texts`` (one per ``doc_ids`` entry, same order) atomically into ``target``, under its
    build lock (waiting ``lock_timeout`` seconds at most for another build of it), with its bigram tier unless
    ``bigrams=False``. An entry of ``texts`` may be a :class:`Reused` document, whose token ids are in
    ``old_vocab`` (see :func:`update_corpus`)."""
    from sleuth.retrieval.index_store import LOCK_TIMEOUT_S, building

    params = params or BM25Params()
    analyzer = Analyzer(params)
    t0 = time.perf_counter()
    n = len(doc_ids)
    target = Path(target)
    with building(target, timeout=LOCK_TIMEOUT_S if lock_timeout is None else lock_timeout) as tmp:
        vocab: dict[str, int] = dict(old_vocab or {})  # reused token ids stay valid; renumbered below
        tok_arr, off_arr, count = tokenize_into(tmp, texts, analyzer, vocab, n, progress=progress)
        if count != n:
            raise ConfigError(f"build_index got {count} texts for {n} doc ids")
        if old_vocab:
            tok_arr, vocab = _renumber(tok_arr, vocab)
        write_arrays(tmp, doc_ids, tok_arr, off_arr, vocab, params,
                     fingerprint=fingerprint, extra_meta=extra_meta, bigrams=bigrams)
    remember_verified(target)
    return BuildStats(n, len(tok_arr), len(vocab), time.perf_counter() - t0)


def tokenize_into(
    tmp: Path, texts: Iterable[str | Reused], analyzer: Analyzer, vocab: dict[str, int], total: int, *,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Analyze ``texts`` in order into one token stream, numbering new terms in ``vocab`` by first occurrence (in
    place), and write the text store (``store.bin``, ``store_offsets.npy``) into the build folder ``tmp``.
    Returns (token ids, document offsets, number of texts)."""
    params = analyzer.params
    toks = array("i")
    offsets = array("q", [0])
    store_off = array("q", [0])
    bar = _progress(progress)
    task = bar.add_task("BM25 index", total=total) if bar else None
    if bar:
        bar.start()
    count = 0
    try:
        with (tmp / "store.bin").open("wb") as store:
            for text in texts:
                if isinstance(text, Reused):
                    toks.frombytes(np.ascontiguousarray(text.tokens, dtype=np.int32).tobytes())
                    blob = text.blob
                else:
                    for tok in analyzer.tokens(text):
                        tid = vocab.get(tok)
                        if tid is None:
                            tid = vocab[tok] = len(vocab)
                        toks.append(tid)
                    blob = text[: params.store_chars].encode("utf-8") if params.store_chars else b""
                offsets.append(len(toks))
                if params.store_chars:
                    store.write(blob)
                    store_off.append(store_off[-1] + len(blob))
                count += 1
                if bar and task is not None and count % 500 == 0:
                    bar.update(task, completed=count)
            if bar and task is not None:
                bar.update(task, completed=count)
    finally:
        if bar:
            bar.stop()
    np.save(tmp / "store_offsets.npy", np.frombuffer(store_off, dtype=np.int64))
    tok_arr = np.frombuffer(toks, dtype=np.int32) if len(toks) else np.zeros(0, np.int32)
    return tok_arr, np.frombuffer(offsets, dtype=np.int64), count


def remember_verified(target: Path) -> None:
    """This process wrote and hashed the files of ``target``: their first open need not check them again."""
    from sleuth.retrieval import index_check as ic

    ic.VerifiedCache.default().remember(target, ic.stat_names(target, (META, *CHECKSUMMED)))


def write_arrays(
    tmp: Path, doc_ids: Sequence[str], tok_arr: np.ndarray, off_arr: np.ndarray, vocab: dict[str, int] | None,
    params: BM25Params, *, fingerprint: str = "", extra_meta: dict[str, Any] | None = None, bigrams: bool = True,
    breaks: np.ndarray | None = None, stats: GlobalStats | None = None, vocab_file: Path | None = None,
) -> dict[str, Any]:
    """Write everything but the text store (``store.bin``, ``store_offsets.npy``: the caller's) into the build
    folder ``tmp``: the score matrix, the token stream, the vocabulary, the bigram tier (``breaks``: positions that
    start a segment inside a document) and ``meta.json`` last, with the checksums of the other files. ``stats``:
    score with these global statistics instead of the stream's own (a shard); ``vocab_file``: a file that holds
    the vocabulary already, hard-linked (or copied) instead of written again (``vocab`` may then be None, its size
    ``stats.vocab_size``)."""
    from sleuth.retrieval import index_check as ic
    from sleuth.retrieval.bm25_ngrams import bigram_arrays, write_bigrams

    n = len(doc_ids)
    if vocab is None and (stats is None or vocab_file is None):
        raise ConfigError("write_arrays needs the vocabulary, or its file and size")
    v = len(vocab) if vocab is not None else stats.vocab_size  # type: ignore[union-attr]
    data, indices, indptr, tf = _score_matrix(tok_arr, off_arr, v, params, stats)
    np.save(tmp / "data.csc.index.npy", data)
    np.save(tmp / "indices.csc.index.npy", indices)
    np.save(tmp / "indptr.csc.index.npy", indptr)
    np.save(tmp / TF_FILES["tf"], tf)  # term frequencies: an incremental update rescores from them
    del data, indices, indptr, tf
    np.save(tmp / "tokens.npy", tok_arr)
    np.save(tmp / "doc_offsets.npy", off_arr)
    if vocab_file is not None:
        from sleuth.retrieval.bm25_ngrams import _link_or_copy

        _link_or_copy(vocab_file, tmp / "vocab.index.json")
    else:
        (tmp / "vocab.index.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    import bm25s

    bm25s_params = {
        "k1": params.k1, "b": params.b, "delta": 0.5, "method": "lucene", "idf_method": "lucene",
        "dtype": "float32", "int_dtype": "int32", "num_docs": n, "version": bm25s.__version__,
        "backend": "auto",
    }
    (tmp / "params.index.json").write_text(json.dumps(bm25s_params, indent=1), encoding="utf-8")
    meta: dict[str, Any] = {
        "format": "sleuth-bm25",
        "format_version": FORMAT_VERSION,
        "fingerprint": fingerprint,
        "params": params.model_dump(),
        "n_docs": n,
        "n_tokens": len(tok_arr),
        "vocab_size": v,
        "built_at": time.time(),
        "doc_ids": list(doc_ids),
        **(extra_meta or {}),
    }
    if bigrams:
        tier = bigram_arrays(tok_arr, off_arr, v, params, breaks, stats)
        meta["bigrams"] = write_bigrams(tmp, tier, v)
        np.save(tmp / TF_FILES["bigram_tf"], tier["bigram_tf"])
    meta["checksums"] = {**ic.file_checksums(tmp, CHECKSUMMED), META: ic.meta_digest(meta)}
    (tmp / META).write_text(json.dumps(meta), encoding="utf-8")  # written last
    return meta


def _renumber(tok: np.ndarray, vocab: dict[str, int]) -> tuple[np.ndarray, dict[str, int]]:
    """Token ids by first occurrence in the stream (as a fresh build assigns them); terms no document has any
    more are dropped from the vocabulary."""
    if len(tok) == 0:
        return tok, {}
    used, first = np.unique(tok, return_index=True)
    order = used[np.argsort(first, kind="stable")]  # old ids in the order a fresh build meets them
    remap = np.full(max(len(vocab), int(used.max()) + 1), -1, dtype=np.int64)
    remap[order] = np.arange(len(order))
    names = {i: t for t, i in vocab.items()}
    return remap[tok].astype(np.int32), {names[int(o)]: n for n, o in enumerate(order.tolist())}


def _score_matrix(
    tok: np.ndarray, offsets: np.ndarray, vocab_size: int, params: BM25Params, stats: GlobalStats | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Term-major (CSC) BM25 'lucene' scores: idf = ln(1 + (N - df + .5)/(df + .5)),
    tfc = tf/(tf + k1(1-b+b·dl/avg)); N, df and avg from ``stats`` when given (a shard), else the stream's.
    Returns (data, indices, indptr, tf): ``tf`` (float32) is each posting's term frequency."""
    n_docs = len(offsets) - 1
    lengths = np.diff(offsets)
    if len(tok) == 0 or vocab_size == 0:
        return (np.zeros(0, np.float32), np.zeros(0, np.int32), np.zeros(vocab_size + 1, np.int32),
                np.zeros(0, np.float32))
    doc_of = np.repeat(np.arange(n_docs, dtype=np.int64), lengths)
    key = doc_of * vocab_size + tok.astype(np.int64)
    del doc_of
    uniq, tf = np.unique(key, return_counts=True)  # sorted by (doc, token)
    del key
    d = (uniq // vocab_size).astype(np.int32)
    t = (uniq % vocab_size).astype(np.int32)
    del uniq
    df = np.bincount(t, minlength=vocab_size)
    if stats is None:
        idf = np.log(1.0 + (n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
        avg = float(lengths.mean()) if n_docs else 1.0
    else:
        gdf = np.asarray(stats.df, dtype=np.int64)
        idf = np.log(1.0 + (stats.n_docs - gdf + 0.5) / (gdf + 0.5)).astype(np.float32)
        avg = stats.avgdl
    dl = lengths.astype(np.float32)[d]
    tf = tf.astype(np.float32)
    k1, b = np.float32(params.k1), np.float32(params.b)
    scores = idf[t] * (tf / (tf + k1 * ((np.float32(1) - b) + b * dl / np.float32(max(avg, 1e-9)))))
    order = np.argsort(t, kind="stable")  # docs stay ascending inside each column
    data = scores[order].astype(np.float32)
    indices = d[order]
    indptr = np.zeros(vocab_size + 1, dtype=np.int64)
    np.cumsum(df, out=indptr[1:])
    if indptr[-1] < np.iinfo(np.int32).max:
        indptr = indptr.astype(np.int32)
    return data, indices, indptr, tf[order]


def iter_texts(corpus: Corpus, doc_ids: Sequence[str]) -> Iterator[str]:
    from sleuth.errors import BinaryDocumentError, DocumentNotFoundError

    for d in doc_ids:
        try:
            yield corpus.read_text(d)
        except (BinaryDocumentError, DocumentNotFoundError):  # changed or removed since the listing
            yield ""  # kept as an empty document so positions stay aligned; never matches (the next check
            # sees the change: the fingerprint was taken before)


def _stamps(corpus: Corpus, entries: dict[str, Entry] | None) -> tuple[list[str], list[list[int]]]:
    """The documents, sorted, with the (size, mtime_ns) each is indexed at (recorded in ``meta.json``)."""
    entries = corpus.entries() if entries is None else entries
    doc_ids = sorted(d for d, e in entries.items() if e.readable)
    return doc_ids, [[entries[d].size, entries[d].mtime_ns] for d in doc_ids]


def build_corpus(
    corpus: Corpus,
    *,
    params: BM25Params | None = None,
    progress: bool = False,
    fingerprint: str | None = None,
    lock_timeout: float | None = None,
    bigrams: bool = True,
    entries: dict[str, Entry] | None = None,
) -> BuildStats:
    """(Re)build ``corpus``'s BM25 index into ``corpus.state_dir / "bm25"`` (unconditionally: to open an index
    or build it only when needed, use :meth:`BM25Index.open`). ``entries``: the listing to build (and whose
    fingerprint ``fingerprint`` is); default: the corpus now."""
    entries = corpus.entries() if entries is None else entries
    fp = fingerprint or corpus.fingerprint(entries)
    doc_ids, stamps = _stamps(corpus, entries)
    stats = build_index(
        corpus.state_dir / INDEX_NAME, doc_ids, iter_texts(corpus, doc_ids), params=params, fingerprint=fp,
        progress=progress, lock_timeout=lock_timeout, extra_meta={"doc_stamps": stamps}, bigrams=bigrams,
    )
    stats.added = len(doc_ids)
    return stats


MAX_INCREMENTAL_SHARE = 0.5  # past this share of documents added or changed, a full build is as quick


def update_corpus(
    corpus: Corpus,
    old: Any,
    *,
    progress: bool = False,
    fingerprint: str | None = None,
    lock_timeout: float | None = None,
    entries: dict[str, Entry] | None = None,
) -> BuildStats | None:
    """Bring ``old`` (the corpus's stale :class:`~sleuth.retrieval.bm25.BM25Index`) up to date incrementally:
    with an overlay when it can take one (:mod:`sleuth.retrieval.bm25_overlay`: the base's files kept, only the
    changed documents written; ``stats.index`` is the new index), else as the module docstring says; None when it
    cannot (an index without recorded stamps, more than :data:`MAX_INCREMENTAL_SHARE` of the documents new or
    changed, an overlay grown past its share): then build in full."""
    from sleuth.retrieval import bm25_overlay

    entries = corpus.entries() if entries is None else entries
    fp = fingerprint or corpus.fingerprint(entries)
    doc_ids, stamps = _stamps(corpus, entries)
    done = bm25_overlay.update(corpus, old, doc_ids, stamps, fp, lock_timeout=lock_timeout)
    if done is not None or isinstance(old, bm25_overlay.OverlaidBM25Index):
        return done  # an overlaid index that cannot take the change in its overlay is built in full
    old_stamps = old.meta.get("doc_stamps")
    if not isinstance(old_stamps, list) or len(old_stamps) != old.n_docs:
        return None
    old_at = {d: i for i, d in enumerate(old.doc_ids)}
    kept = {d for d, st in zip(doc_ids, stamps, strict=True) if d in old_at and list(old_stamps[old_at[d]]) == st}
    if len(doc_ids) - len(kept) > MAX_INCREMENTAL_SHARE * max(1, len(doc_ids)):
        return None
    params = old.params
    has_store = params.store_chars and old.store_offsets.shape[0] == old.n_docs + 1 and old._store is not None

    def items() -> Iterator[Any]:
        from sleuth.errors import BinaryDocumentError, DocumentNotFoundError

        for d in doc_ids:
            i = old_at.get(d)
            if d in kept and i is not None:
                s, e = int(old.doc_offsets[i]), int(old.doc_offsets[i + 1])
                blob = b""
                if has_store:
                    blob = bytes(old._store[int(old.store_offsets[i]): int(old.store_offsets[i + 1])])
                yield Reused(np.asarray(old.tokens[s:e]), blob)
            else:
                try:
                    yield corpus.read_text(d)
                except (BinaryDocumentError, DocumentNotFoundError):
                    yield ""

    stats = build_index(
        corpus.state_dir / INDEX_NAME, doc_ids, items(), params=params, fingerprint=fp, progress=progress,
        lock_timeout=lock_timeout, extra_meta={"doc_stamps": stamps}, old_vocab=old.vocab,
        bigrams=getattr(old, "bigrams", None) is not None,
    )
    new = [d for d in doc_ids if d not in kept]
    stats.added = sum(1 for d in new if d not in old_at)
    stats.changed = len(new) - stats.added
    now = set(doc_ids)
    stats.removed = sum(1 for d in old.doc_ids if d not in now)
    stats.kept = len(kept)
    return stats
