"""Building a sharded BM25 index (the layout and the query side: :mod:`sleuth.retrieval.bm25_shards`).

:func:`build_sharded` runs under the index's build lock, inside one atomic folder, in three steps:

1. **Analyze**, one process per shard (``concurrent.futures`` with ``spawn`` workers; in this process for one
   worker): each shard's documents are read and tokenized into its folder (the text store, the token stream in the
   shard's own term numbering, the shard's own unigram and bigram document frequencies).
2. **Merge** (here): the global vocabulary (numbered by first occurrence in document order, shard 0 first: the
   unsharded index's numbering), the global df of every term and bigram (sums of the shards'), N and the average
   length, written once at the root (``vocab.index.json``, ``df.npy``, ``bigram_keys.npy``, ``bigram_df.npy``).
3. **Score**, one process per shard again: the shard's tokens are renumbered into the global vocabulary and its
   score matrix and bigram tier computed with the global statistics
   (:class:`sleuth.retrieval.bm25_build.GlobalStats`: the one-index formula code, given N, avgdl and df). Each
   shard folder is a complete index (``meta.json`` with its checksums and a ``shard`` entry naming the build, the
   root's vocabulary hard-linked).

The root's ``meta.json`` is written last: the build id, the parameters and every shard's meta digest.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sleuth.errors import ConfigError, SearchIndexError
from sleuth.retrieval.bm25 import INDEX_NAME, META, Analyzer, BM25Params
from sleuth.retrieval.bm25_shards import (
    META_FORMAT,
    ROOT_FILES,
    SHARDED_VERSION,
    SHARDS_DIR,
    shard_name,
    shard_ranges,
)

if TYPE_CHECKING:
    from sleuth.corpus import Corpus
    from sleuth.loaders.store import Entry

_LOCAL = ("_tokens", "_offsets", "_df", "_bigram_keys", "_bigram_df", "_remap")  # build-time files of a shard


# --- the build ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _AnalyzeJob:
    root: str
    state_dir: str
    caps: Any
    folder: str
    doc_ids: list[str]
    params: dict[str, Any]


@dataclass(frozen=True)
class _ScoreJob:
    folder: str
    stats_dir: str
    doc_ids: list[str]
    params: dict[str, Any]
    n_docs: int
    avgdl: float
    vocab_size: int
    fingerprint: str
    extra_meta: dict[str, Any]


def _local(folder: Path, what: str) -> Path:
    return folder / f"{what}.npy"


def _analyze_shard(job: _AnalyzeJob) -> tuple[list[str], int]:
    """Step 1, in a worker: read and analyze the shard's documents into its folder. Returns its terms in its own
    numbering and its token count."""
    from sleuth.corpus import Corpus
    from sleuth.retrieval.bm25_build import iter_texts, tokenize_into
    from sleuth.retrieval.bm25_ngrams import bigram_arrays

    params = BM25Params.model_validate(job.params)
    corpus = Corpus(job.root, state_dir=job.state_dir, caps=job.caps)
    folder = Path(job.folder)
    folder.mkdir(parents=True)
    vocab: dict[str, int] = {}
    tok, off, _ = tokenize_into(folder, iter_texts(corpus, job.doc_ids), Analyzer(params), vocab, len(job.doc_ids))
    v = len(vocab)
    doc_of = np.repeat(np.arange(len(off) - 1, dtype=np.int64), np.diff(off))
    pairs = np.unique(doc_of * max(v, 1) + tok.astype(np.int64))  # (document, term) once each
    tier = bigram_arrays(tok, off, v, params)
    for what, arr in (("_tokens", tok), ("_offsets", off), ("_df", np.bincount(pairs % max(v, 1), minlength=v)),
                      ("_bigram_keys", tier["bigram_keys"]), ("_bigram_df", np.diff(tier["bigram_indptr"]))):
        np.save(_local(folder, what), arr)
    return list(vocab), len(tok)


def _merge_stats(stats_dir: Path, folders: list[Path], analyzed: list[tuple[list[str], int]]) -> tuple[int, int]:
    """Step 2: the global vocabulary, unigram and bigram df, written to ``stats_dir``; each shard's renumbering
    (its term id -> the global id) into its folder. Returns (vocabulary size, bigram count)."""
    vocab: dict[str, int] = {}
    remaps = []
    for (terms, _), folder in zip(analyzed, folders, strict=True):
        remap = np.empty(len(terms), dtype=np.int64)
        for i, t in enumerate(terms):
            g = vocab.get(t)
            if g is None:
                g = vocab[t] = len(vocab)
            remap[i] = g
        np.save(_local(folder, "_remap"), remap)
        remaps.append(remap)
    v = len(vocab)
    df = np.zeros(v, dtype=np.int64)
    keys, counts = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for remap, folder in zip(remaps, folders, strict=True):
        df[remap] += np.load(_local(folder, "_df"))  # a shard numbers each term once: no repeated index
        local = np.load(_local(folder, "_bigram_keys"))
        if len(local):
            lv = np.int64(len(remap))
            keys.append(remap[local // lv] * np.int64(v) + remap[local % lv])
            counts.append(np.load(_local(folder, "_bigram_df")).astype(np.int64))
    bkeys, inv = np.unique(np.concatenate(keys), return_inverse=True)
    bdf = np.zeros(len(bkeys), dtype=np.int64)
    np.add.at(bdf, inv, np.concatenate(counts))
    (stats_dir / ROOT_FILES["vocab"]).write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    np.save(stats_dir / ROOT_FILES["df"], df)
    np.save(stats_dir / ROOT_FILES["bigram_keys"], bkeys.astype(np.int64))
    np.save(stats_dir / ROOT_FILES["bigram_df"], bdf)
    return v, len(bkeys)


def _score_shard(job: _ScoreJob) -> dict[str, Any]:
    """Step 3, in a worker: the shard's index, scored with the global statistics. Returns its ``meta.json``."""
    from sleuth.retrieval.bm25_build import GlobalStats, write_arrays

    folder, stats_dir = Path(job.folder), Path(job.stats_dir)

    def root(key: str) -> np.ndarray:
        return np.load(stats_dir / ROOT_FILES[key], mmap_mode="r")

    stats = GlobalStats(job.n_docs, job.avgdl, job.vocab_size, root("df"), root("bigram_keys"), root("bigram_df"))
    remap = np.load(_local(folder, "_remap"))
    tok = remap[np.load(_local(folder, "_tokens"))].astype(np.int32)
    off = np.load(_local(folder, "_offsets"))
    for what in _LOCAL:
        _local(folder, what).unlink()
    return write_arrays(folder, job.doc_ids, tok, off, None, BM25Params.model_validate(job.params),
                        fingerprint=job.fingerprint, extra_meta=job.extra_meta, bigrams=True, stats=stats,
                        vocab_file=stats_dir / ROOT_FILES["vocab"])


class _InProcess:
    """One worker: the steps run here, in order (no process start-up)."""

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        return map(fn, items)

    def __enter__(self) -> _InProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def worker_count(workers: int | None, shards: int) -> int:
    """Processes that build ``shards`` shards: ``workers`` (default: the machine's cores), at most one per shard."""
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"workers must be a whole number >= 1, got {workers!r}")
    return max(1, min(shards, workers if workers is not None else (os.cpu_count() or 1)))


@dataclass
class ShardBuildStats:
    n_docs: int
    n_tokens: int
    vocab_size: int
    n_bigrams: int
    shards: int
    workers: int
    seconds: float


def build_sharded(
    corpus: Corpus, *, shards: int, params: BM25Params | None = None, workers: int | None = None,
    fingerprint: str | None = None, lock_timeout: float | None = None, entries: dict[str, Entry] | None = None,
    progress: bool = False,
) -> ShardBuildStats:
    """(Re)build ``corpus``'s index as ``shards`` shards with global statistics (see the module docstring), by
    ``workers`` processes, atomically into ``corpus.state_dir / "bm25"``. ``progress``: a bar on stderr, one step
    per shard analyzed and per shard scored."""
    from sleuth.progress import progress_bar
    from sleuth.retrieval import index_check as ic
    from sleuth.retrieval.bm25_build import _stamps, remember_verified
    from sleuth.retrieval.index_store import LOCK_TIMEOUT_S, building

    t0 = time.perf_counter()
    entries = corpus.entries() if entries is None else entries
    fp = fingerprint or corpus.fingerprint(entries)
    doc_ids, stamps = _stamps(corpus, entries)
    ranges = shard_ranges(len(doc_ids), shards)
    params = params or BM25Params()
    n_workers = worker_count(workers, shards)
    build_id = uuid.uuid4().hex
    target = corpus.state_dir / INDEX_NAME
    timeout = LOCK_TIMEOUT_S if lock_timeout is None else lock_timeout
    with building(target, timeout=timeout) as tmp:
        folders = [tmp / SHARDS_DIR / shard_name(i) for i in range(shards)]
        jobs = [_AnalyzeJob(str(corpus.root), str(corpus.state_path), corpus.store.caps, str(f), doc_ids[a:b],
                            params.model_dump()) for f, (a, b) in zip(folders, ranges, strict=True)]
        if n_workers > 1:
            import multiprocessing

            pool: Any = ProcessPoolExecutor(n_workers, mp_context=multiprocessing.get_context("spawn"))
        else:
            pool = _InProcess()
        try:
            with pool, progress_bar(2 * shards, f"BM25 index, {shards} shards", progress) as bar:
                analyzed = []
                for one in pool.map(_analyze_shard, jobs):
                    analyzed.append(one)
                    bar.advance()
                v, n_bigrams = _merge_stats(tmp, folders, analyzed)
                n_tokens = sum(n for _, n in analyzed)
                avgdl = float(np.float64(n_tokens) / np.float64(len(doc_ids)))  # = lengths.mean() of one index
                score_jobs = [
                    _ScoreJob(str(f), str(tmp), doc_ids[a:b], params.model_dump(), len(doc_ids), avgdl, v, fp, {
                        "doc_stamps": stamps[a:b],
                        "shard": {"name": shard_name(i), "index": i, "count": shards, "build_id": build_id,
                                  "doc_offset": a, "global_n_docs": len(doc_ids), "global_avgdl": avgdl,
                                  "global_vocab_size": v}})
                    for i, (f, (a, b)) in enumerate(zip(folders, ranges, strict=True))]
                metas = []
                for meta_i in pool.map(_score_shard, score_jobs):
                    metas.append(meta_i)
                    bar.advance()
        except BrokenProcessPool as e:
            raise SearchIndexError(f"a worker building the sharded index at {target} died ({e})",
                                   hint="rerun `sleuth index CORPUS --rebuild`; with less memory, pass "
                                        "--workers 1") from None
        meta: dict[str, Any] = {
            "format": META_FORMAT, "format_version": SHARDED_VERSION, "fingerprint": fp,
            "params": params.model_dump(), "n_docs": len(doc_ids), "n_tokens": n_tokens, "vocab_size": v,
            "avgdl": avgdl, "build_id": build_id, "built_at": time.time(), "workers": n_workers,
            "bigrams": {"n_bigrams": n_bigrams},
            "shards": [{"name": shard_name(i), "n_docs": b - a, "doc_offset": a, "meta_digest": ic.meta_digest(m)}
                       for i, ((a, b), m) in enumerate(zip(ranges, metas, strict=True))],
        }
        meta["checksums"] = {**ic.file_checksums(tmp, ROOT_FILES.values()), META: ic.meta_digest(meta)}
        (tmp / META).write_text(json.dumps(meta), encoding="utf-8")  # written last
    ic.VerifiedCache.default().remember(target, ic.stat_names(target, (META, *ROOT_FILES.values())))
    for i in range(shards):
        remember_verified(target / SHARDS_DIR / shard_name(i))
    return ShardBuildStats(len(doc_ids), n_tokens, v, n_bigrams, shards, n_workers, time.perf_counter() - t0)
