"""BM25 over a corpus folder: a persisted, memory-mapped bm25s index with per-term weighted queries.

On disk (``corpus.state_dir / "bm25"``) the index is a bm25s index (``data/indices/indptr.csc.index.npy``,
``vocab.index.json``, ``params.index.json``: ``bm25s.BM25.load(dir, mmap=True)`` opens it as is) plus sleuth's
files: ``meta.json`` (format version, corpus fingerprint, analyzer and BM25 parameters, doc ids), the analyzed
token stream (``tokens.npy`` + ``doc_offsets.npy``, used for phrase document frequencies) and a text store
(``store.bin`` + ``store_offsets.npy``: the first ``store_chars`` characters of every document, so hits carry
their text without opening files).

The index is built by :mod:`sleuth.retrieval.bm25_build`, a streaming builder (documents are read and tokenized
one at a time into a flat int32 token stream, then the term-major score matrix is computed with vectorised
numpy). Its scores are bm25s's "lucene" BM25 exactly (``tests/unit/test_bm25.py`` compares them with
``bm25s.BM25.index``). The build happens inside :func:`sleuth.fsutil.atomic_dir`: an interrupted build never
leaves a loadable half index.

Search is one pass over the score matrix's columns: ``score(d) = sum_t w_t * data[t, d]`` for the query's token
ids ``t`` with weights ``w_t`` (a numba kernel when numba is importable, numpy otherwise), then a top-k heap.
Plain search is the same kernel with every weight 1 (a repeated query token counts twice, as in bm25s).

An index also holds a bigram tier (:mod:`sleuth.retrieval.bm25_ngrams`: postings of adjacent tokens with their own
statistics, the SIRA reference's n-gram tier), scored by the same kernel (:meth:`BM25Index.tier_topk`). Plain BM25
search uses the unigram tier only; SIRA scores both.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from sleuth.errors import (
    ConfigError,
    IndexCorruptError,
    IndexMissingError,
    ToolArgumentError,
)
from sleuth.records import Hit, SearchResult
from sleuth.retrieval.base import RetrieverBase, timed_result, where_filter
from sleuth.retrieval.bm25_kernels import (  # numba when importable, numpy otherwise; the numpy ones importable here
    Backend,
    Kernels,
    _tier_topk_numpy as _tier_topk_numpy,
    _topk_numpy as _topk_numpy,
    _weighted_topk_numpy as _weighted_topk_numpy,
    check_backend,
    kernels_for,
)
from sleuth.retrieval.bm25_ngrams import BIGRAM_FILES, BigramTier

if TYPE_CHECKING:
    from sleuth.corpus import Corpus
    from sleuth.retrieval.bm25_build import (  # the lazy names of __getattr__
        BuildStats as BuildStats,
        build_corpus as build_corpus,
        build_index as build_index,
        iter_texts as iter_texts,
    )
    from sleuth.retrieval.index_check import VerifiedCache

FORMAT_VERSION = 1
INDEX_NAME = "bm25"
META = "meta.json"
TOKEN_RE = re.compile(r"(?u)\b\w\w+\b")  # bm25s's default splitter

_BM25S_FILES = ("data.csc.index.npy", "indices.csc.index.npy", "indptr.csc.index.npy")
FILES = {
    "data": "data.csc.index.npy", "indices": "indices.csc.index.npy", "indptr": "indptr.csc.index.npy",
    "tokens": "tokens.npy", "doc_offsets": "doc_offsets.npy", "store_offsets": "store_offsets.npy",
    "vocab": "vocab.index.json", "store": "store.bin",
}
ARRAY_KEYS = ("data", "indices", "indptr", "tokens", "doc_offsets", "store_offsets")
# each posting's term frequency (float32, aligned with indices / bigram_indices): what an incremental update
# rescores from (sleuth.retrieval.bm25_overlay); absent from indexes built before them, which update in full
TF_FILES = {"tf": "tf.csc.index.npy", "bigram_tf": "bigram_tf.npy"}
# every file but meta.json (which holds the checksums); the bigram tier's when the index has one
CHECKSUMMED = (*FILES.values(), "params.index.json", *BIGRAM_FILES.values(), *TF_FILES.values())


def update_hint(path: Path) -> str:
    """The command that brings a stale main index at ``path`` up to date (incrementally)."""
    if path.parent.name == ".sleuth":
        return (f"update it with `sleuth index {path.parent.parent}` (only added and changed documents are read; "
                "`--rebuild` builds it whole)")
    return rebuild_hint(path)


def rebuild_hint(path: Path) -> str:
    """The command that rebuilds the index at ``path`` (the main index or a corpus's enrichment index)."""
    if path.parent.name == ".sleuth":
        return f"rebuild it with `sleuth index {path.parent.parent} --rebuild`"
    if path.parent.name == "enrich" and path.parent.parent.name == ".sleuth":
        return (f"rebuild it with `sleuth enrich {path.parent.parent.parent} --limit 0` (from the enrichment file: "
                f"no model call)")
    return "rebuild it with `sleuth index CORPUS --rebuild`"


def stored_params(path: Path) -> BM25Params | None:
    """The parameters recorded in the index at ``path`` (even when its arrays are damaged), or None."""
    try:
        return BM25Params.model_validate(json.loads((path / META).read_text(encoding="utf-8"))["params"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


class BM25Params(BaseModel):
    """Analyzer and scoring parameters; stored in ``meta.json``. Changing any of them needs a rebuild."""

    k1: float = Field(0.9, gt=0)
    b: float = Field(0.4, ge=0, le=1)
    stemmer: str | None = "english"  # a PyStemmer algorithm name, or None for no stemming
    stopwords: str | list[str] | None = "en"  # "en" (bm25s's English list), a list of words, or None
    lower: bool = True
    store_chars: int = Field(2000, ge=0)  # characters of each document kept for hit texts (0: read the files)


# --- analysis ---------------------------------------------------------------------------------------------------


class Analyzer:
    """Lowercase, split on ``\\w\\w+``, drop stopwords, stem (cached). The same analysis for documents, queries,
    and phrases, so a phrase's tokens are exactly what the index holds."""

    def __init__(self, params: BM25Params) -> None:
        self.params = params
        if params.stopwords is None:
            self.stopwords: frozenset[str] = frozenset()
        elif isinstance(params.stopwords, str):
            if params.stopwords != "en":
                raise ConfigError(f"unknown stopword list {params.stopwords!r}", hint="use 'en', a list, or None")
            from sleuth.retrieval.stopwords import STOPWORDS_EN

            self.stopwords = frozenset(STOPWORDS_EN)
        else:
            self.stopwords = frozenset(w.lower() for w in params.stopwords)
        self._stem: Callable[[list[str]], list[str]] | None = None
        if params.stemmer:
            import Stemmer

            try:
                self._stem = Stemmer.Stemmer(params.stemmer).stemWords
            except KeyError as e:
                raise ConfigError(
                    f"unknown stemmer {params.stemmer!r}", hint=f"one of {Stemmer.algorithms()}"
                ) from e
        self._cache: dict[str, str] = {}

    def words(self, text: str) -> list[str]:
        if self.params.lower:
            text = text.lower()
        return [w for w in TOKEN_RE.findall(text) if w not in self.stopwords]

    def tokens(self, text: str) -> list[str]:
        words = self.words(text)
        if self._stem is None:
            return words
        cache = self._cache
        missing = [w for w in set(words) if w not in cache]
        if missing:
            for w, s in zip(missing, self._stem(missing), strict=True):
                cache[w] = s
            if len(cache) > 2_000_000:  # bound memory on huge vocabularies
                cache.clear()
                return self.tokens(text)
        return [cache[w] for w in words]


# --- build ------------------------------------------------------------------------------------------------------


# --- the loaded index -------------------------------------------------------------------------------------------


class BM25Index:
    """A loaded (memory-mapped) index. Use :meth:`open` for a corpus, :meth:`load` for a folder. A sharded index
    (:class:`sleuth.retrieval.bm25_shards.ShardedBM25Index`) is a subclass with the same query methods."""

    sharded = False

    def __init__(self, path: Path, meta: dict[str, Any], arrays: dict[str, np.ndarray], vocab: dict[str, int],
                 *, backend: Backend = "auto"):
        self.path = path
        self.meta = meta
        self.params = BM25Params.model_validate(meta["params"])
        self.analyzer = Analyzer(self.params)
        self.doc_ids: list[str] = meta["doc_ids"]
        self.n_docs = len(self.doc_ids)
        self.vocab = vocab
        self.data = arrays["data"]
        self.indices = arrays["indices"]
        self.indptr = arrays["indptr"]
        self.tokens = arrays["tokens"]
        self.doc_offsets = arrays["doc_offsets"]
        self.store_offsets = arrays["store_offsets"]
        self._store = arrays.get("store")
        self.tf = arrays.get("tf")  # term frequencies (None: an index built before they were kept)
        self.bigram_tf = arrays.get("bigram_tf")
        self.bigrams = BigramTier(arrays, len(vocab)) if "bigram_keys" in arrays else None
        self._pos: dict[str, int] | None = None
        self.corpus: Corpus | None = None
        self.status = "loaded"  # set by open(): "up to date", "rebuilt (...)", ...
        check_backend(backend)  # an unknown name fails here, not at the first query
        self.requested_backend = backend
        self._kernels: tuple[str, Kernels] | None = None  # resolved at the first query (numba's import is lazy)

    @property
    def backend(self) -> str:
        """The kernels that score queries: ``numba`` (JIT, for many queries in one process) or ``numpy`` (no JIT
        to load: one query, a CLI call). Both give the same scores and order."""
        return self._resolved()[0]

    def _resolved(self) -> tuple[str, Kernels]:
        if self._kernels is None:
            self._kernels = kernels_for(self.requested_backend)
        return self._kernels

    def _kernel(self, i: int) -> Any:
        return self._resolved()[1][i]

    @property
    def parts(self) -> list[BM25Index]:
        """The indexes whose documents make up this one, in document order: itself (a sharded index: its shards)."""
        return [self]

    def __repr__(self) -> str:
        tier = f", bigrams={len(self.bigrams)}" if self.bigrams is not None else ""
        return (f"BM25Index({str(self.path)!r}, docs={self.n_docs}, vocab={len(self.vocab)}{tier}, "
                f"backend={self.backend})")

    # -- loading ----------------------------------------------------------------------------------------------
    @classmethod
    def load(
        cls, path: str | Path, *, mmap: bool = True, verify: bool = True, cache: VerifiedCache | None = None,
        backend: Backend = "auto", vocab: dict[str, int] | None = None,
    ) -> BM25Index:
        """Open the index folder ``path``, checked (:mod:`sleuth.retrieval.index_check`): shapes, offsets and the
        vocabulary on every open; document indices, token ids, score bounds and the build's checksums on the
        first open of these exact files (remembered in ``cache``, by default the user's sleuth home). Anything
        wrong raises :class:`IndexCorruptError` naming the file and the fix. ``verify=False`` skips the checks
        (for measurements on an index just built; never on one that came with a corpus). ``backend``: the scoring
        kernels (:attr:`backend`). ``vocab``: the vocabulary already read (a shard's, shared by all shards; its
        file is still checksummed)."""
        from sleuth.retrieval import index_check as ic

        path = Path(path)
        fix = rebuild_hint(path)
        meta_path = path / META
        if not path.is_dir() or not meta_path.is_file():
            if path.is_dir() and any(path.iterdir()):
                raise IndexCorruptError(f"{path} has no {META}: not a sleuth index, or an unfinished one", hint=fix)
            raise IndexMissingError(f"no BM25 index at {path}")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ic.corrupt(meta_path, f"unreadable ({e})", fix) from None
        if not isinstance(meta, dict) or meta.get("format") != "sleuth-bm25":
            raise IndexCorruptError(f"{meta_path} is not a sleuth BM25 index", hint=fix)
        if meta.get("format_version") != FORMAT_VERSION:
            raise IndexCorruptError(
                f"{path} has index format version {meta.get('format_version')!r}; this sleuth reads "
                f"version {FORMAT_VERSION}",
                hint=fix,
            )
        mode: Literal["r"] | None = "r" if mmap else None
        arrays: dict[str, np.ndarray] = {}
        fname = ""
        try:
            for key in ARRAY_KEYS:
                fname = FILES[key]
                arrays[key] = np.load(path / fname, mmap_mode=mode, allow_pickle=False)
            fname = FILES["vocab"]
            if vocab is None:
                vocab = json.loads((path / fname).read_text(encoding="utf-8"))
            fname = FILES["store"]
            store_path = path / fname
            if store_path.stat().st_size:
                arrays["store"] = np.memmap(store_path, dtype=np.uint8, mode="r") if mmap else np.fromfile(
                    store_path, dtype=np.uint8
                )
            for key, fname in BIGRAM_FILES.items() if "bigrams" in meta else ():
                arrays[key] = np.load(path / fname, mmap_mode=mode, allow_pickle=False)
            for key, fname in TF_FILES.items():
                if fname in (meta.get("checksums") or {}):  # recorded by the build: never an unchecked file
                    arrays[key] = np.load(path / fname, mmap_mode=mode, allow_pickle=False)
            fname = META
            BM25Params.model_validate(meta.get("params"))
        except (OSError, ValueError, TypeError, EOFError) as e:  # json and pydantic errors are ValueErrors
            raise ic.corrupt(path / fname, f"{type(e).__name__}: {str(e)[:300]}", fix) from None
        if verify:
            ic.check_bm25_shapes(path, meta, arrays, vocab, FILES, fix)
            ic.check_tf_shapes(path, arrays, TF_FILES, fix)
            if "bigrams" in meta:
                ic.check_bigram_shapes(path, meta, arrays, len(vocab), fix)
            names = ic.stat_names(path, (META, *CHECKSUMMED))

            n_docs = len(meta["doc_ids"])
            shard = meta.get("shard")
            scored_n = shard.get("global_n_docs") if isinstance(shard, dict) else None  # a shard: global idf
            bound_n = scored_n if type(scored_n) is int and scored_n >= n_docs else n_docs
            vocab_size = len(vocab)

            def deep() -> None:
                ic.check_bm25_values(path, n_docs, arrays, vocab_size, FILES, fix, bound_docs=bound_n)
                ic.check_tf_values(path, arrays, TF_FILES, fix)
                if "bigrams" in meta:
                    ic.check_bigram_values(path, n_docs, arrays, vocab_size, fix, bound_docs=bound_n)

            ic.deep_check_once(path, names, meta, deep, fix, ic.VerifiedCache.default() if cache is None else cache)
        index = cls(path, meta, arrays, vocab, backend=backend)
        from sleuth.retrieval import bm25_overlay

        if bm25_overlay.has_overlay(path):  # an incremental update's documents over this base
            return bm25_overlay.attach(index)
        return index

    @classmethod
    def open(
        cls,
        corpus: Corpus,
        *,
        params: BM25Params | None = None,
        rebuild: bool = False,
        build_missing: bool = True,
        progress: bool = False,
        check_stale: bool = True,
        force: bool = False,
        lock_timeout: float | None = None,
        bigrams: bool = True,
        backend: Backend = "auto",
        shards: int | None = None,
        workers: int | None = None,
    ) -> BM25Index:
        """The corpus's index: built when missing (``build_missing``), rebuilt when stale or corrupt and
        ``rebuild`` is set, else :class:`StaleIndexError` / :class:`IndexCorruptError`. ``params`` different
        from the built ones count as stale; ``force`` rebuilds an up-to-date index too. Builds run under the
        index's lock (:mod:`sleuth.retrieval.index_store`): a process that finds another one building waits
        (``lock_timeout`` seconds at most) and uses its result. ``index.status`` says what happened. A build
        includes the bigram tier unless ``bigrams=False`` (an index without one is not stale: SIRA adds the
        tier on demand, :func:`sleuth.retrieval.bm25_ngrams.ensure_bigrams`). ``backend``: the scoring kernels
        (``numpy`` for a process that answers one query: no numba import, the same results). ``shards``: build
        (or keep) a sharded index of that many shards (:mod:`sleuth.retrieval.bm25_shards`, built by ``workers``
        processes); None keeps the layout on disk (a sharded index opens as one)."""
        from sleuth.retrieval import bm25_shards

        if shards is not None or bm25_shards.is_sharded(corpus.state_path / INDEX_NAME):
            return bm25_shards.ShardedBM25Index.open(
                corpus, shards=shards, workers=workers, params=params, rebuild=rebuild, build_missing=build_missing,
                progress=progress, check_stale=check_stale, force=force, lock_timeout=lock_timeout,
                bigrams=bigrams, backend=backend)
        from sleuth.retrieval.bm25_build import build_corpus, update_corpus
        from sleuth.retrieval.index_store import LOCK_TIMEOUT_S, open_or_build

        target = corpus.state_dir / INDEX_NAME
        timeout = LOCK_TIMEOUT_S if lock_timeout is None else lock_timeout
        listing = corpus.entries() if (check_stale or rebuild or force) else None
        fp = corpus.fingerprint(listing) if listing is not None else ""
        outdated: list[BM25Index] = []  # an index that is stale only because documents changed: updated in place
        done: list[str] = []
        ready: list[BM25Index] = []  # an update's new index, already in memory

        def stale(index: BM25Index) -> str | None:
            if params is not None and params.model_dump() != index.params.model_dump():
                return "the requested BM25 parameters differ from the index's"
            if check_stale and index.meta.get("fingerprint") != fp:
                outdated[:] = [index]
                return "the corpus changed after the index was built"
            return None

        def build() -> None:
            if outdated and not force:
                stats = update_corpus(corpus, outdated[0], progress=progress, fingerprint=fp or None,
                                      lock_timeout=timeout, entries=listing)
                outdated.clear()
                if stats is not None:
                    how = ""
                    if stats.index is not None:
                        ready.append(stats.index)
                        n = len(stats.index.facts.doc_ids)
                        how = f"; an overlay of {n} document{'s' if n != 1 else ''} over the base index"
                    done.append(f"updated ({stats.added} added, {stats.changed} changed, {stats.removed} removed; "
                                f"{stats.kept} unchanged documents not read again{how})")
                    return
            build_corpus(corpus, params=params or stored_params(target), progress=progress, fingerprint=fp or None,
                         lock_timeout=timeout, bigrams=bigrams, entries=listing)

        opened = open_or_build(
            target, load=lambda: ready.pop() if ready else cls.load(target, backend=backend), stale=stale,
            build=build, rebuild=rebuild, build_missing=build_missing, force=force, timeout=timeout,
            what="BM25 index", fix=update_hint(target),  # a stale index's hint; a corrupt one's comes from load
        )
        opened.index.corpus = corpus
        opened.index.status = done[0] if done else opened.status
        return opened.index

    # -- queries ----------------------------------------------------------------------------------------------
    def token_ids(self, text: str) -> list[int]:
        vocab = self.vocab
        return [vocab[t] for t in self.analyzer.tokens(text) if t in vocab]

    def weighted_token_ids(self, terms: Iterable[tuple[str, float]]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids and weights for ``[(term_or_phrase, weight), ...]``: a phrase's tokens share its weight;
        a token met twice gets the sum of its weights (as bm25s counts a repeated query token twice)."""
        acc: dict[int, float] = {}
        for text, weight in terms:
            w = _check_weight(weight)
            if w == 0:
                continue
            for tid in self.token_ids(text):
                acc[tid] = acc.get(tid, 0.0) + w
        if not acc:
            return np.zeros(0, np.int32), np.zeros(0, np.float32)
        return np.fromiter(acc.keys(), np.int32, len(acc)), np.fromiter(acc.values(), np.float32, len(acc))

    def topk_ids(self, tok: np.ndarray, w: np.ndarray, k: int, mask: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` (scores, doc indices) for token ids with weights; documents scoring 0 are dropped. ``mask``
        (a boolean per document, a metadata filter's): only those documents compete for the top ``k``."""
        if len(tok) == 0 or k <= 0 or self.n_docs == 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        if mask is not None:
            return self.masked_topk(self.score_vector(tok, w), mask, k)
        try:
            scores, idx = self._kernel(1)(
                tok, w, self.data, self.indices, self.indptr, self.n_docs, min(k, self.n_docs)
            )
        except IndexError as e:  # the kernels check bounds: an index changed on disk after its checks
            raise self._out_of_bounds(e) from None
        keep = scores > 0
        return scores[keep], idx[keep]

    def masked_topk(self, scores: np.ndarray, mask: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The top ``k`` of a full score vector among the documents ``mask`` keeps (the others score 0), in the
        kernels' order (score, then document index); documents scoring 0 are dropped."""
        if mask.shape != (self.n_docs,) or mask.dtype != np.bool_:
            raise ConfigError(f"a filter mask must be {self.n_docs} booleans, got {mask.dtype} {mask.shape}")
        top, idx = _topk_numpy(np.where(mask, scores, np.float32(0)), min(k, self.n_docs))
        keep = top > 0
        return top[keep], idx[keep]

    def score_vector(self, tok: np.ndarray, w: np.ndarray) -> np.ndarray:
        """The full score vector (float32, one per document) for token ids with weights."""
        if len(tok) == 0:
            return np.zeros(self.n_docs, np.float32)
        try:
            return self._kernel(0)(tok, w, self.data, self.indices, self.indptr, self.n_docs)
        except IndexError as e:
            raise self._out_of_bounds(e) from None

    def tier_topk(
        self, tok: np.ndarray, w: np.ndarray, btok: np.ndarray, bw: np.ndarray, k: int,
        mask: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` over both tiers: unigram ids ``tok`` with weights ``w`` plus bigram ids ``btok`` with weights
        ``bw`` (the index must have a bigram tier when ``btok`` is not empty); ``mask`` as in :meth:`topk_ids`."""
        if (len(tok) == 0 and len(btok) == 0) or k <= 0 or self.n_docs == 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        tier = self.bigrams
        if tier is None:
            if len(btok):
                raise ConfigError(f"the index at {self.path} has no bigram tier")
            return self.topk_ids(tok, w, k, mask)
        if mask is not None:
            return self.masked_topk(self.tier_score_vector(tok, w, btok, bw), mask, k)
        try:
            scores, idx = self._kernel(3)(tok, w, self.data, self.indices, self.indptr, btok, bw, tier.data,
                                             tier.indices, tier.indptr, self.n_docs, min(k, self.n_docs))
        except IndexError as e:
            raise self._out_of_bounds(e) from None
        keep = scores > 0
        return scores[keep], idx[keep]

    def tier_score_vector(self, tok: np.ndarray, w: np.ndarray, btok: np.ndarray, bw: np.ndarray) -> np.ndarray:
        """The full score vector over both tiers (float32, one per document)."""
        tier = self.bigrams
        if tier is None or len(btok) == 0:
            return self.score_vector(tok, w)
        try:
            return self._kernel(2)(tok, w, self.data, self.indices, self.indptr, btok, bw, tier.data,
                                        tier.indices, tier.indptr, self.n_docs)
        except IndexError as e:
            raise self._out_of_bounds(e) from None

    def _out_of_bounds(self, e: Exception) -> IndexCorruptError:
        return IndexCorruptError(f"BM25 index at {self.path} is corrupt: {e}", hint=rebuild_hint(self.path),
                                 path=str(self.path))

    def text_of(self, i: int) -> str:
        if self._store is not None and self.store_offsets.shape[0] == self.n_docs + 1:
            s, e = int(self.store_offsets[i]), int(self.store_offsets[i + 1])
            return bytes(self._store[s:e]).decode("utf-8", errors="replace")
        if self.corpus is not None:
            try:
                return self.corpus.read_text(self.doc_ids[i])
            except Exception:  # a file removed since the build: the hit stays, without text
                return ""
        return ""

    def position(self, doc_id: str) -> int:
        if self._pos is None:
            self._pos = {d: i for i, d in enumerate(self.doc_ids)}
        return self._pos[doc_id]

    def hits(self, scores: np.ndarray, idx: np.ndarray, source: str, with_text: bool = True) -> list[Hit]:
        out = []
        for s, i in zip(scores.tolist(), idx.tolist(), strict=True):
            text = self.text_of(i) if with_text else ""
            out.append(Hit(doc_id=self.doc_ids[i], score=float(s), text=text, source=source))
        return out

    def doc_freq(self, token_id: int) -> int:
        return int(self.indptr[token_id + 1] - self.indptr[token_id])

    def live_doc_ids(self) -> list[str]:
        """The documents the index serves now (an overlaid index's :attr:`doc_ids` also names the base's
        removed and changed documents, which never score)."""
        return self.doc_ids


def _check_weight(weight: Any) -> float:
    if isinstance(weight, bool) or not isinstance(weight, numbers.Real) or not math.isfinite(weight):
        raise ToolArgumentError(f"term weights must be finite numbers, got {weight!r}")
    if weight < 0:
        raise ToolArgumentError(f"term weights must be >= 0, got {weight!r}")
    return float(weight)


# --- the retriever ----------------------------------------------------------------------------------------------


class BM25Retriever(RetrieverBase):
    """``run``/``search(query, k)`` and ``search_weighted([(term_or_phrase, weight), ...], k)`` over a BM25Index."""

    name = "bm25"
    filters = True

    def __init__(self, index: BM25Index, *, with_text: bool = True) -> None:
        self.index = index
        self.with_text = with_text

    @classmethod
    def open(cls, corpus: Corpus, **kwargs: Any) -> BM25Retriever:
        with_text = kwargs.pop("with_text", True)
        return cls(BM25Index.open(corpus, **kwargs), with_text=with_text)

    def run(self, query: str, k: int = 10, *, tracer: Any = None, where: Any = None) -> SearchResult:
        """No model call: ``tracer`` is accepted and unused. ``where``: a metadata filter (the best ``k`` of the
        matching documents)."""
        if not isinstance(query, str) or not query.strip():
            raise ToolArgumentError("empty query", hint="pass some words to search for")
        flt = where_filter(where, self.index.corpus)
        return timed_result(self.name, query, k, lambda: self.search_weighted([(query, 1.0)], k, where=flt))

    def doc_freqs(self, query: str) -> tuple[int, list[tuple[str, int]]]:
        """``(number of documents, [(token, df), ...])`` for the query's analyzed tokens (stopwords dropped, stemmed,
        in query order, repeats kept); a token the index does not hold has df 0. For query-adaptive fusion."""
        vocab, idx = self.index.vocab, self.index
        return idx.n_docs, [(t, idx.doc_freq(vocab[t]) if t in vocab else 0) for t in idx.analyzer.tokens(query)]

    def search_weighted(self, terms: Sequence[tuple[str, float]], k: int = 10, *, where: Any = None
                        ) -> list[Hit]:
        """One pass: ``score(d) = sum over terms of weight * BM25(term's tokens, d)``. Terms that analyze to no
        indexed token (stopwords, unknown words) contribute nothing; no token at all gives no hits. ``where``: a
        metadata filter."""
        if k < 1:
            raise ToolArgumentError(f"k must be at least 1, got {k}")
        flt = where_filter(where, self.index.corpus)
        tok, w = self.index.weighted_token_ids(terms)
        scores, idx = self.index.topk_ids(tok, w, k, None if flt is None else flt.mask(self.index.doc_ids))
        return self.index.hits(scores, idx, self.name, self.with_text)


_BUILD_NAMES = frozenset({"BuildStats", "build_index", "build_corpus", "iter_texts"})


def __getattr__(name: str) -> Any:
    """The builder lives in :mod:`sleuth.retrieval.bm25_build`; its names stay importable from here."""
    if name in _BUILD_NAMES:
        from sleuth.retrieval import bm25_build

        return getattr(bm25_build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
