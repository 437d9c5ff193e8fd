"""The bigram tier of a BM25 index, as the SIRA reference defines it (facebookresearch/sira, ``bm25x``:
``src/index.rs`` and ``src/index/ngram_side.rs``).

What the tier holds: for every pair of *adjacent analyzed tokens* in a document (lowercased, stopwords dropped,
stemmed: the unigram tokens, so "effect of aspirin" gives the bigram "effect aspirin"), a posting ``(doc, tf)``
with its own global statistics, scored with the same BM25 "lucene" formula as the unigrams:

    idf(g) = ln(1 + (N - df(g) + 0.5) / (df(g) + 0.5))      df(g): documents containing the bigram g
    s(g, d) = idf(g) * tf / (tf + k1 * (1 - b + b * dl(d) / avgdl))

with ``N`` the number of documents and ``dl``/``avgdl`` the *unigram* document length and its mean (the
reference's invariant: "doc_lengths and total_tokens count unigrams only so BM25's length normalization stays
meaningful"). Bigrams never span two documents, nor two segments of one (an enrichment phrase appended to a
document is its own segment: the reference tokenizes each phrase in isolation).

One difference, on purpose: the reference hashes n-grams into ``n_features`` slots (MurmurHash3, 8M by default),
so a slot's df over-estimates a bigram's when two collide; sleuth stores exact bigram keys (``a * V + b`` for
token ids ``a``, ``b`` and vocabulary size ``V``, sorted), which is the collision-free form of the same statistic.

On disk, beside the unigram arrays in the index folder (same atomic build, same checksums in ``meta.json``, same
open-time checks in :mod:`sleuth.retrieval.index_check`): ``bigram_keys.npy`` (int64, strictly increasing),
``bigram_data.npy`` (float32 scores), ``bigram_indices.npy`` (documents), ``bigram_indptr.npy`` (column offsets).
An index built without the tier (by an older sleuth, or ``sleuth index --no-bigrams``) gets it added on demand by
:func:`ensure_bigrams` from its stored token stream (no document is read again), under the index's build lock.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from sleuth.retrieval.bm25 import BM25Index, BM25Params
    from sleuth.retrieval.bm25_build import GlobalStats

MAX_N = 2  # the tier holds bigrams: the reference's default n-gram order (scripts/configs/bm25/default.yaml)
BIGRAM_FILES = {
    "bigram_keys": "bigram_keys.npy", "bigram_data": "bigram_data.npy",
    "bigram_indices": "bigram_indices.npy", "bigram_indptr": "bigram_indptr.npy",
}
TIERS = ("unigram", "bigram")


def bigram_arrays(
    tokens: np.ndarray, offsets: np.ndarray, vocab_size: int, params: BM25Params,
    breaks: np.ndarray | None = None, stats: GlobalStats | None = None,
) -> dict[str, np.ndarray]:
    """The tier's four arrays (and ``bigram_tf``, each posting's count) for a token stream (``tokens`` sliced
    into documents by ``offsets``). ``breaks``: token positions that start a new segment inside a document (no
    bigram ends there). ``stats``: score with the whole corpus's N, average length and bigram df (a shard,
    :mod:`sleuth.retrieval.bm25_shards`, or an overlay's delta, :mod:`sleuth.retrieval.bm25_overlay`)."""
    tokens = np.asarray(tokens)
    offsets = np.asarray(offsets, dtype=np.int64)
    n_docs = len(offsets) - 1
    m = int(tokens.shape[0])
    empty: dict[str, np.ndarray] = {"bigram_keys": np.zeros(0, np.int64), "bigram_data": np.zeros(0, np.float32),
             "bigram_indices": np.zeros(0, np.int32), "bigram_indptr": np.zeros(1, np.int64),
             "bigram_tf": np.zeros(0, np.float32)}
    if m < 2 or n_docs == 0:
        return empty
    start = np.zeros(m, dtype=bool)
    heads = offsets[:-1]
    start[heads[heads < m]] = True
    if breaks is not None and len(breaks):
        start[np.asarray(breaks, dtype=np.int64)] = True
    pos = np.flatnonzero(~start[1:])  # pair (p, p + 1) when p + 1 starts nothing
    if len(pos) == 0:
        return empty
    keys = tokens[pos].astype(np.int64) * np.int64(vocab_size) + tokens[pos + 1].astype(np.int64)
    doc = np.searchsorted(offsets, pos, side="right") - 1
    order = np.lexsort((doc, keys))  # by bigram, then document
    keys, doc = keys[order], doc[order]
    del order, pos
    first = np.ones(len(keys), dtype=bool)
    first[1:] = (keys[1:] != keys[:-1]) | (doc[1:] != doc[:-1])
    at = np.flatnonzero(first)
    tf = np.diff(np.append(at, len(keys))).astype(np.float32)
    pair_key, pair_doc = keys[at], doc[at]
    del keys, doc, first
    new_col = np.ones(len(pair_key), dtype=bool)
    new_col[1:] = pair_key[1:] != pair_key[:-1]
    col_at = np.flatnonzero(new_col)
    df = np.diff(np.append(col_at, len(pair_key)))
    uniq = pair_key[col_at]
    col = np.repeat(np.arange(len(uniq)), df)
    lengths = np.diff(offsets)  # unigram lengths: the reference's dl
    if stats is None:
        idf = np.log(1.0 + (n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
        avg = float(lengths.mean())
    else:
        gdf = stats.bigram_df_of(uniq)
        idf = np.log(1.0 + (stats.n_docs - gdf + 0.5) / (gdf + 0.5)).astype(np.float32)
        avg = stats.avgdl
    dl = lengths.astype(np.float32)[pair_doc]
    k1, b = np.float32(params.k1), np.float32(params.b)
    data = idf[col] * (tf / (tf + k1 * ((np.float32(1) - b) + b * dl / np.float32(max(avg, 1e-9)))))
    indptr = np.zeros(len(uniq) + 1, dtype=np.int64)
    np.cumsum(df, out=indptr[1:])
    if indptr[-1] < np.iinfo(np.int32).max:
        indptr = indptr.astype(np.int32)
    return {"bigram_keys": uniq, "bigram_data": data.astype(np.float32),
            "bigram_indices": pair_doc.astype(np.int32), "bigram_indptr": indptr, "bigram_tf": tf}


def write_bigrams(folder: Path, arrays: dict[str, np.ndarray], vocab_size: int) -> dict[str, Any]:
    """Save the tier's arrays into ``folder``; returns its ``meta.json`` entry."""
    for key, name in BIGRAM_FILES.items():
        np.save(folder / name, arrays[key])
    return {"max_n": MAX_N, "vocab_size": vocab_size, "n_bigrams": int(arrays["bigram_keys"].shape[0]),
            "nnz": int(arrays["bigram_data"].shape[0])}


def pair_keys(token_ids: Sequence[int], vocab_size: int) -> np.ndarray:
    """The key ``a * vocab_size + b`` of each adjacent pair of ``token_ids`` (``len - 1`` of them); -1 for a pair
    with an id outside ``[0, vocab_size)`` (-1: a word the corpus lacks)."""
    ids = np.asarray(token_ids, dtype=np.int64)
    if len(ids) < 2:
        return np.zeros(0, np.int64)
    v = np.int64(vocab_size)
    valid = (ids[:-1] >= 0) & (ids[1:] >= 0) & (ids[:-1] < v) & (ids[1:] < v)
    return np.where(valid, ids[:-1] * v + ids[1:], -1)


def find_sorted(keys: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The position of each of ``q`` in the sorted, distinct ``keys``; -1 where it is absent (negative ``q`` never
    match: keys are not negative)."""
    q = np.asarray(q, dtype=np.int64)
    at = np.searchsorted(keys, q)
    inside = (q >= 0) & (at < len(keys))
    found = np.zeros(len(q), dtype=bool)
    found[inside] = np.asarray(keys[at[inside]]) == q[inside]
    return np.where(found, at, -1)


class BigramTier:
    """A loaded (memory-mapped) bigram tier: look bigrams up by their token ids, read their df."""

    def __init__(self, arrays: dict[str, np.ndarray], vocab_size: int) -> None:
        self.keys = arrays["bigram_keys"]
        self.data = arrays["bigram_data"]
        self.indices = arrays["bigram_indices"]
        self.indptr = arrays["bigram_indptr"]
        self.vocab_size = vocab_size

    def __len__(self) -> int:
        return int(self.keys.shape[0])

    def pair_ids(self, token_ids: Sequence[int]) -> list[int]:
        """The tier's ids of the adjacent pairs of ``token_ids`` that occur in the corpus, in order (repeats kept);
        pairs it does not hold, and pairs with an id outside the vocabulary (-1: a word the corpus lacks), are
        skipped."""
        if len(token_ids) < 2 or len(self) == 0:
            return []
        at = find_sorted(self.keys, pair_keys(token_ids, self.vocab_size))
        return [int(x) for x in at[at >= 0]]

    def df(self, bigram_id: int) -> int:
        return int(self.indptr[bigram_id + 1] - self.indptr[bigram_id])


def load_arrays(path: Path, mmap: bool) -> dict[str, np.ndarray]:
    """The tier's arrays from an index folder whose meta says it has one (errors propagate to the loader)."""
    return {key: np.load(path / name, mmap_mode="r" if mmap else None, allow_pickle=False)
            for key, name in BIGRAM_FILES.items()}


# --- the n-grams of a phrase, as the reference's filters see them ------------------------------------------------


def ngram_dfs(index: BM25Index, stems: Sequence[str], max_n: int) -> list[tuple[str, int, int]]:
    """``(ngram, n, df)`` for every window of 1..``max_n`` adjacent ``stems`` (n outer, windows inner: the
    reference's ``filter_query_expansion`` order). Unigram df from the vocabulary; bigram df from the tier (0 when
    either token is absent from the corpus)."""
    vocab = index.vocab
    out: list[tuple[str, int, int]] = []
    for s in stems:
        tid = vocab.get(s)
        out.append((s, 1, index.doc_freq(tid) if tid is not None else 0))
    tier = index.bigrams
    if max_n >= 2 and tier is not None:
        for a, b in pairwise(stems):
            ids = tier.pair_ids([vocab.get(a, -1), vocab.get(b, -1)])
            out.append((f"{a} {b}", 2, tier.df(ids[0]) if ids else 0))
    return out


def targets(index: BM25Index, stems: Sequence[str], tiers: Sequence[str]) -> tuple[list[int], list[int]]:
    """The reference's ``query_targets``: the distinct unigram ids of ``stems`` that the index holds and the
    distinct bigram ids of their adjacent pairs that it holds, each in first-seen order."""
    ids = [index.vocab.get(s, -1) for s in stems]
    uni = list(dict.fromkeys(i for i in ids if i >= 0)) if "unigram" in tiers else []
    bi: list[int] = []
    if "bigram" in tiers and index.bigrams is not None:
        bi = list(dict.fromkeys(index.bigrams.pair_ids(ids)))
    return uni, bi


# --- adding the tier to an index that predates it ---------------------------------------------------------------


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def ensure_bigrams(index: BM25Index, *, lock_timeout: float | None = None) -> BM25Index:
    """``index`` with its bigram tier: as is when it has one, else the tier is computed from the index's stored
    token stream and added to its folder (the other files are kept, hard-linked), under the index's build lock
    (another process that added it meanwhile wins). Raises ``OSError`` when the folder is not writable."""
    if index.bigrams is not None:
        return index
    from sleuth.errors import IndexCorruptError
    from sleuth.retrieval import index_check as ic
    from sleuth.retrieval.bm25 import CHECKSUMMED, META, BM25Index
    from sleuth.retrieval.index_store import LOCK_TIMEOUT_S, build_lock, building

    target = index.path
    timeout = LOCK_TIMEOUT_S if lock_timeout is None else lock_timeout
    added = False
    with build_lock(target, timeout=timeout):
        fresh = BM25Index.load(target)
        if fresh.bigrams is None:
            added = True
            if fresh.meta.get("segments"):  # an enriched index: its phrase boundaries are not in the token stream
                raise IndexCorruptError(f"{target} has segments but no bigram tier",
                                        hint="rebuild it with `sleuth enrich CORPUS --limit 0`")
            with building(target, timeout=timeout) as tmp:
                for p in target.iterdir():
                    if p.is_file() and p.name != META:
                        _link_or_copy(p, tmp / p.name)
                arrays = bigram_arrays(fresh.tokens, fresh.doc_offsets, len(fresh.vocab), fresh.params)
                meta = {k: v for k, v in fresh.meta.items() if k != "checksums"}
                meta["bigrams"] = write_bigrams(tmp, arrays, len(fresh.vocab))
                meta["bigrams_added"] = "on demand (the index predated its bigram tier)"
                if "checksums" in fresh.meta:
                    meta["checksums"] = {**fresh.meta["checksums"], **ic.file_checksums(tmp, BIGRAM_FILES.values())}
                    meta["checksums"][META] = ic.meta_digest(meta)
                (tmp / META).write_text(json.dumps(meta), encoding="utf-8")
            ic.VerifiedCache.default().remember(target, ic.stat_names(target, (META, *CHECKSUMMED)))
            fresh = BM25Index.load(target)
    fresh.corpus = index.corpus
    fresh.status = index.status + ("; bigram tier added on demand" if added else "")
    return fresh
