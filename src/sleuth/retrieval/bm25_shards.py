"""Sharded BM25 with global statistics: N shards, each a BM25 index of a contiguous range of the corpus's sorted
documents, all scored with the whole corpus's document count, average length and document frequencies, so a
query's scores and ranking are the unsharded index's (``tests/integration/test_bm25_shards.py``: SciFact's 300
test queries, plain and SIRA-weighted, top 100 ids and scores, 1, 3 and 8 shards). The build is
:mod:`sleuth.retrieval.bm25_shard_build` (parallel processes); this module is the layout and the query side.

:class:`ShardedBM25Index` is a :class:`~sleuth.retrieval.bm25.BM25Index` with the same query methods, so
``BM25Retriever``, SIRA (unigram and bigram tiers, one expansion weight or per-phrase weights), the df tool
(:class:`~sleuth.retrieval.df.DocFrequency` sums a phrase's count over :attr:`~BM25Index.parts`) and
``FreshRetrievers`` take it as they take one index; ``BM25Index.open`` opens whichever layout is on disk. A query
fans out to the shards (a thread each: the kernels release the GIL) with the global term ids (every shard's
columns are the global vocabulary's; a global bigram id is looked up in each shard's sorted keys) and the shards'
top k are merged by score, then global document index: the one-index tie rule. A document's float32 score is the
same sum in the same order whichever shard holds it, so the merged list is the one index's list.

On disk (``CORPUS/.sleuth/bm25``): ``meta.json`` (``"format": "sleuth-bm25-sharded"``, the build id, parameters,
N, avgdl and every shard's name, range and meta digest), the global statistics (``vocab.index.json``, ``df.npy``,
``bigram_keys.npy``, ``bigram_df.npy``, checksummed) and ``shards/000``, ``shards/001``, ... A shard that is
missing, from another build, built with other parameters or not recorded by the build is refused by name
(:class:`~sleuth.errors.ShardMissingError`, :class:`~sleuth.errors.ShardMismatchError`); a stale sharded index
(the corpus changed) is a :class:`~sleuth.errors.StaleIndexError` like one index's, and is rebuilt whole.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sleuth.errors import (
    ConfigError,
    IndexCorruptError,
    IndexMissingError,
    ShardCountError,
    ShardMismatchError,
    ShardMissingError,
    StaleIndexError,
)
from sleuth.retrieval.bm25 import INDEX_NAME, META, Analyzer, Backend, BM25Index, BM25Params, rebuild_hint
from sleuth.retrieval.bm25_ngrams import BigramTier
from sleuth.retrieval.bm25_ray import local_bigrams

if TYPE_CHECKING:
    from sleuth.corpus import Corpus
    from sleuth.retrieval.index_check import VerifiedCache

META_FORMAT = "sleuth-bm25-sharded"
SHARDED_VERSION = 1
SHARDS_DIR = "shards"
ROOT_FILES = {"vocab": "vocab.index.json", "df": "df.npy", "bigram_keys": "bigram_keys.npy",
              "bigram_df": "bigram_df.npy"}
_EMPTY = (np.zeros(0, np.float32), np.zeros(0, np.int64))


def is_sharded(path: Path) -> bool:
    """Whether the index folder ``path`` holds a sharded index (no file is read)."""
    return (path / SHARDS_DIR).is_dir() and (path / META).is_file()


def shard_name(i: int) -> str:
    return f"{i:03d}"


def check_shard_count(shards: Any) -> int:
    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
        raise ShardCountError(f"the shard count must be a whole number >= 1, got {shards!r}")
    return shards


def shard_ranges(n_docs: int, shards: int) -> list[tuple[int, int]]:
    """``[start, end)`` document ranges of ``shards`` contiguous shards, sizes differing by one at most."""
    check_shard_count(shards)
    if shards > n_docs:
        raise ShardCountError(f"{shards} shards for {n_docs} documents: every shard needs at least one document")
    base, extra = divmod(n_docs, shards)
    out, start = [], 0
    for i in range(shards):
        end = start + base + (1 if i < extra else 0)
        out.append((start, end))
        start = end
    return out


class GlobalBigrams(BigramTier):
    """The corpus's bigram vocabulary (sorted keys) with global df: what SIRA's filter and targets read. The
    postings are the shards'."""

    def __init__(self, keys: np.ndarray, df: np.ndarray, vocab_size: int) -> None:
        self.keys = keys
        self._df = df
        self.vocab_size = vocab_size

    def df(self, bigram_id: int) -> int:
        return int(self._df[bigram_id])


def _json(path: Path, fix: str) -> Any:
    from sleuth.retrieval import index_check as ic

    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ic.corrupt(path, f"unreadable ({e})", fix) from None


def _check_root(path: Path, meta: dict[str, Any], vocab: Any, arrays: dict[str, np.ndarray], fix: str) -> None:
    from sleuth.retrieval import index_check as ic

    f = {k: path / v for k, v in ROOT_FILES.items()}
    if not isinstance(vocab, dict) or len(vocab) != meta.get("vocab_size"):
        raise ic.corrupt(f["vocab"], f"not the vocabulary of {meta.get('vocab_size')} terms meta.json records", fix)
    ic.check_int_array(arrays["df"], f["df"], fix, shape=(len(vocab),))
    keys = arrays["bigram_keys"]
    if keys.ndim != 1 or keys.dtype != np.int64:
        raise ic.corrupt(f["bigram_keys"], f"expected 1-D int64 keys, found {keys.dtype.str} {keys.shape}", fix)
    ic.check_int_array(arrays["bigram_df"], f["bigram_df"], fix, shape=keys.shape)


def _check_shard_record(path: Path, root: dict[str, Any], i: int, entry: Any, fix: str) -> Path:
    """The folder of shard ``i`` once its ``meta.json`` says it is the one this build recorded."""
    from sleuth.retrieval import index_check as ic

    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise ic.corrupt(path / META, f"its record of shard {i} is malformed", fix)
    name = entry["name"]
    folder = path / SHARDS_DIR / name
    if not (folder / META).is_file():
        raise ShardMissingError(f"shard {name} of the sharded BM25 index at {path} is missing (no {folder / META})",
                                path=str(folder))
    smeta = _json(folder / META, fix)
    info = smeta.get("shard") if isinstance(smeta, dict) else None
    if not isinstance(info, dict) or info.get("build_id") != root.get("build_id"):
        got = info.get("build_id") if isinstance(info, dict) else "none (an unsharded index)"
        raise ShardMismatchError(f"shard {name} ({folder}) is from another build: its build is {got}, the index's "
                                 f"is {root.get('build_id')}", path=str(folder))
    if smeta.get("params") != root.get("params"):
        diff = sorted(k for k in {**root["params"], **(smeta.get("params") or {})}
                      if (smeta.get("params") or {}).get(k) != root["params"].get(k))
        raise ShardMismatchError(f"shard {name} ({folder}) was built with different analyzer or BM25 parameters "
                                 f"({', '.join(diff)}) than the index at {path}", path=str(folder))
    if (info.get("index") != i or info.get("count") != len(root["shards"])
            or info.get("doc_offset") != entry.get("doc_offset") or len(smeta.get("doc_ids", ())) != entry.get("n_docs")
            or ic.meta_digest(smeta) != entry.get("meta_digest")):
        raise ShardMismatchError(f"shard {name} ({folder}) is not the shard {i} this build recorded (its place, "
                                 f"documents or meta digest differ)", path=str(folder))
    return folder


class ShardedBM25Index(BM25Index):
    """A loaded sharded index: the shards (each a memory-mapped :class:`BM25Index` over the global vocabulary)
    and the global statistics. Query methods as :class:`BM25Index`'s, answered by fan-out and merge."""

    sharded = True

    def __init__(self, path: Path, meta: dict[str, Any], vocab: dict[str, int], arrays: dict[str, np.ndarray],
                 shards: list[BM25Index], *, backend: Backend = "auto", threads: int | None = None) -> None:
        # no BM25Index.__init__: the postings, tokens and texts are the shards'
        self.path = path
        self.meta = meta
        self.params = BM25Params.model_validate(meta["params"])
        self.analyzer = Analyzer(self.params)
        self.shards = shards
        self.doc_ids = [d for s in shards for d in s.doc_ids]
        self.n_docs = len(self.doc_ids)
        self.vocab = vocab
        self.df = arrays["df"]
        self.global_bigrams = GlobalBigrams(arrays["bigram_keys"], arrays["bigram_df"], len(vocab))
        self.bigrams = self.global_bigrams
        self.offsets = np.cumsum([0] + [s.n_docs for s in shards]).astype(np.int64)
        self._pos = None
        self.corpus = None
        self.status = "loaded"
        self.requested_backend = backend
        self._kernels = None
        self.threads = max(1, min(len(shards), threads or os.cpu_count() or 1))
        self._pool: ThreadPoolExecutor | None = None

    @property
    def parts(self) -> list[BM25Index]:
        return list(self.shards)

    def __repr__(self) -> str:
        return (f"ShardedBM25Index({str(self.path)!r}, docs={self.n_docs}, shards={len(self.shards)}, "
                f"vocab={len(self.vocab)}, bigrams={len(self.global_bigrams)}, backend={self.backend})")

    def close(self) -> None:
        """Stop the fan-out threads (they also end with the process)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    # -- loading ------------------------------------------------------------------------------------------------
    @classmethod
    def load(
        cls, path: str | Path, *, mmap: bool = True, verify: bool = True, cache: VerifiedCache | None = None,
        backend: Backend = "auto", vocab: dict[str, int] | None = None, threads: int | None = None,
    ) -> ShardedBM25Index:
        """Open the sharded index at ``path``: its global statistics (checked on every open, checksummed on the
        first), then every shard it recorded, refused by name when missing, from another build or built with other
        parameters, then loaded and checked as one index is (:meth:`BM25Index.load`). ``threads``: fan-out threads
        per query (default: one per shard, at most the machine's cores)."""
        from sleuth.retrieval import index_check as ic

        path = Path(path)
        fix = rebuild_hint(path)
        if not (path / META).is_file():
            raise IndexMissingError(f"no BM25 index at {path}")
        meta = _json(path / META, fix)
        if not isinstance(meta, dict) or meta.get("format") != META_FORMAT:
            raise StaleIndexError(f"the BM25 index at {path} is one unsharded index, not a sharded one",
                                  hint="rebuild it sharded with `sleuth index CORPUS --shards N`")
        if meta.get("format_version") != SHARDED_VERSION or not isinstance(meta.get("shards"), list) \
                or not meta["shards"]:
            raise IndexCorruptError(f"{path} is not a sharded index this sleuth reads (format version "
                                    f"{meta.get('format_version')!r})", hint=fix)
        fname = ROOT_FILES["vocab"]
        try:
            shared = vocab if vocab is not None else json.loads((path / fname).read_text(encoding="utf-8"))
            arrays = {}
            for key in ("df", "bigram_keys", "bigram_df"):
                fname = ROOT_FILES[key]
                arrays[key] = np.load(path / fname, mmap_mode="r" if mmap else None, allow_pickle=False)
            BM25Params.model_validate(meta.get("params"))
        except (OSError, ValueError, TypeError, EOFError) as e:
            raise ic.corrupt(path / fname, f"{type(e).__name__}: {str(e)[:300]}", fix) from None
        n = meta.get("n_docs")
        if type(n) is not int or n < 1:
            raise ic.corrupt(path / META, f"n_docs is {n!r}", fix)
        if verify:
            _check_root(path, meta, shared, arrays, fix)

            def deep() -> None:
                ic.check_range(arrays["df"], 1, n + 1, path / ROOT_FILES["df"], fix, "document frequencies")
                ic.check_range(arrays["bigram_df"], 1, n + 1, path / ROOT_FILES["bigram_df"], fix,
                               "bigram document frequencies")
                k = arrays["bigram_keys"]
                if len(k) and not (bool(np.all(k[1:] > k[:-1])) and int(k[0]) >= 0
                                   and int(k[-1]) < len(shared) ** 2):
                    raise ic.corrupt(path / ROOT_FILES["bigram_keys"], "keys not increasing or out of range", fix)

            names = ic.stat_names(path, (META, *ROOT_FILES.values()))
            ic.deep_check_once(path, names, meta, deep, fix, ic.VerifiedCache.default() if cache is None else cache)
        folders = [_check_shard_record(path, meta, i, e, fix) for i, e in enumerate(meta["shards"])]
        recorded = {f.name for f in folders}
        extra = sorted(p.name for p in (path / SHARDS_DIR).iterdir() if p.name not in recorded)
        if extra:
            raise ShardMismatchError(f"the sharded index at {path} holds shard folders its build did not record: "
                                     f"{', '.join(extra)}", path=str(path / SHARDS_DIR / extra[0]))
        shards = [BM25Index.load(f, mmap=mmap, verify=verify, cache=cache, backend=backend, vocab=shared)
                  for f in folders]
        if sum(s.n_docs for s in shards) != n:
            raise IndexCorruptError(f"the shards of {path} hold {sum(s.n_docs for s in shards)} documents, "
                                    f"meta.json says {n}", hint=fix)
        return cls(path, meta, shared, arrays, shards, backend=backend, threads=threads)

    @classmethod
    def open(
        cls, corpus: Corpus, *, shards: int | None = None, workers: int | None = None,
        params: BM25Params | None = None, rebuild: bool = False, build_missing: bool = True, progress: bool = False,
        check_stale: bool = True, force: bool = False, lock_timeout: float | None = None, bigrams: bool = True,
        backend: Backend = "auto", threads: int | None = None,
    ) -> ShardedBM25Index:
        """The corpus's sharded index, as :meth:`BM25Index.open` (the same lock, stale rule and statuses):
        ``shards`` different from the built count counts as stale; None keeps the built count. A build runs
        :func:`~sleuth.retrieval.bm25_shard_build.build_sharded` with ``workers`` processes (``progress``: its
        bar on stderr)."""
        from sleuth.retrieval.bm25_shard_build import build_sharded, worker_count
        from sleuth.retrieval.index_store import LOCK_TIMEOUT_S, open_or_build

        if not bigrams:
            raise ConfigError("a sharded index always has its bigram tier", hint="drop --no-bigrams")
        if shards is not None:
            check_shard_count(shards)  # a bad count fails before any listing
        worker_count(workers, 1)
        target = corpus.state_dir / INDEX_NAME
        timeout = LOCK_TIMEOUT_S if lock_timeout is None else lock_timeout
        listing = corpus.entries() if (check_stale or rebuild or force) else None
        fp = corpus.fingerprint(listing) if listing is not None else ""
        built: list[str] = []

        def stale(index: ShardedBM25Index) -> str | None:
            if params is not None and params.model_dump() != index.params.model_dump():
                return "the requested BM25 parameters differ from the index's"
            if shards is not None and shards != len(index.shards):
                return f"it has {len(index.shards)} shards, {shards} were asked for"
            if check_stale and index.meta.get("fingerprint") != fp:
                return "the corpus changed after the index was built"
            return None

        def build() -> None:
            count = shards if shards is not None else _recorded_count(target)
            from sleuth.retrieval.bm25 import stored_params

            stats = build_sharded(corpus, shards=count, params=params or stored_params(target), workers=workers,
                                  fingerprint=fp or None, lock_timeout=timeout, entries=listing,
                                  progress=progress)
            built.append(f"{stats.shards} shards by {stats.workers} worker process"
                         f"{'es' if stats.workers > 1 else ''} in {stats.seconds:.1f} s")

        opened = open_or_build(
            target, load=lambda: cls.load(target, backend=backend, threads=threads), stale=stale, build=build,
            rebuild=rebuild, build_missing=build_missing, force=force, timeout=timeout, what="sharded BM25 index",
            fix=rebuild_hint(target),
        )
        index = opened.index
        index.corpus = corpus
        for s in index.shards:
            s.corpus = corpus
        index.status = f"{opened.status}: {built[0]}" if built else opened.status
        return index

    # -- queries ------------------------------------------------------------------------------------------------
    def _fan_out(self, one: Callable[[BM25Index], tuple[np.ndarray, np.ndarray]],
                 k: int) -> tuple[np.ndarray, np.ndarray]:
        """``one(shard)`` on every shard (in threads), then the top ``k`` of their lists by score, then global
        document index."""
        for s in self.shards:
            s._resolved()  # the kernels, once, before any thread asks for them
        if self.threads > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="bm25-shard")
            results = list(self._pool.map(one, self.shards))
        else:
            results = [one(s) for s in self.shards]
        scores = np.concatenate([r[0] for r in results]).astype(np.float32, copy=False)
        idx = np.concatenate([np.asarray(r[1], dtype=np.int64) + self.offsets[i] for i, r in enumerate(results)])
        order = np.lexsort((idx, -scores))[:k]
        return scores[order], idx[order]

    def _mask_of(self, mask: np.ndarray | None, shard: BM25Index) -> np.ndarray | None:
        """The part of a filter's mask (one boolean per document of the whole index) that is ``shard``'s."""
        if mask is None:
            return None
        if mask.shape != (self.n_docs,) or mask.dtype != np.bool_:
            raise ConfigError(f"a filter mask must be {self.n_docs} booleans, got {mask.dtype} {mask.shape}")
        i = next(j for j, s in enumerate(self.shards) if s is shard)
        return mask[int(self.offsets[i]): int(self.offsets[i + 1])]

    def topk_ids(self, tok: np.ndarray, w: np.ndarray, k: int, mask: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
        if len(tok) == 0 or k <= 0 or self.n_docs == 0:
            return _EMPTY
        return self._fan_out(lambda s: s.topk_ids(tok, w, k, self._mask_of(mask, s)), k)

    def tier_topk(
        self, tok: np.ndarray, w: np.ndarray, btok: np.ndarray, bw: np.ndarray, k: int,
        mask: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        if (len(tok) == 0 and len(btok) == 0) or k <= 0 or self.n_docs == 0:
            return _EMPTY
        keys = np.asarray(self.global_bigrams.keys)[np.asarray(btok, dtype=np.int64)]
        def one(s: Any) -> tuple[np.ndarray, np.ndarray]:
            if getattr(s, "remote", False):  # served by a Ray actor (sleuth.retrieval.bm25_ray)
                return s.tier_topk_keys(tok, w, keys, bw, k, self._mask_of(mask, s))
            return s.tier_topk(tok, w, *local_bigrams(s, keys, bw), k, self._mask_of(mask, s))

        return self._fan_out(one, k)

    def score_vector(self, tok: np.ndarray, w: np.ndarray) -> np.ndarray:
        return np.concatenate([s.score_vector(tok, w) for s in self.shards])

    def tier_score_vector(self, tok: np.ndarray, w: np.ndarray, btok: np.ndarray, bw: np.ndarray) -> np.ndarray:
        keys = np.asarray(self.global_bigrams.keys)[np.asarray(btok, dtype=np.int64)]
        return np.concatenate([s.tier_score_vector_keys(tok, w, keys, bw)  # type: ignore[attr-defined]
                               if getattr(s, "remote", False)
                               else s.tier_score_vector(tok, w, *local_bigrams(s, keys, bw)) for s in self.shards])

    def text_of(self, i: int) -> str:
        at = int(np.searchsorted(self.offsets, i, side="right")) - 1
        return self.shards[at].text_of(i - int(self.offsets[at]))

    def doc_freq(self, token_id: int) -> int:
        return int(self.df[token_id])


def _recorded_count(target: Path) -> int:
    """The shard count the index at ``target`` was built with (to rebuild it the same way)."""
    try:
        count = len(json.loads((target / META).read_text(encoding="utf-8"))["shards"])
    except (OSError, ValueError, KeyError, TypeError):
        raise ShardCountError(f"cannot tell how many shards the index at {target} had",
                              hint="pass --shards N (shards=N)") from None
    return count
