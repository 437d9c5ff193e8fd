"""Incremental BM25 updates as an overlay on an unchanged base index: Lucene's live documents plus a delta segment.

A full update (:func:`sleuth.retrieval.bm25_build.update_corpus`) recomputes every score, because N, document
frequencies and the average length change with any document; it writes the whole index again. An overlay keeps
the base index's files as they are (hard-linked into the new index folder) and adds ``overlay/``: the positions of
base documents that were removed or changed (``dead.npy``), the added and changed documents' analyzed tokens and
stored text (a few small arrays) and the terms new to the vocabulary. Everything else is derived when the overlay
is assembled (:func:`assemble`: at the update itself, or when the index is opened again): the live statistics
(N, every df of the unigram and bigram tiers, the average length), the delta documents' score matrix (scored with
those statistics), and each base document's length norm. Base documents are then scored at query time from their
stored term frequencies (``tf.csc.index.npy``, ``bigram_tf.npy``) with the live statistics, by the kernel
``add_weighted_tf``, in the same float32 operations a build performs; a removed or changed base document has an
infinite norm and scores 0. Ties are broken by the rank a rebuild would give a document (its place among the sorted
document ids). So a query's ranked ids and scores equal a full rebuild's, bit for bit
(``tests/integration/test_freshness.py``: SciFact, 300 queries, plain and both tiers), while an update of one
document reads, tokenizes and writes only that document.

The overlay always holds every change since the base (it is rewritten whole by the next update, never chained); past
:data:`MAX_OVERLAY_SHARE` of the documents, or on ``sleuth index --rebuild``, the index is built in full again and
the overlay folded in. Indexes built before term frequencies were stored, sharded and enriched indexes update in
full, as before.
"""

from __future__ import annotations

import bisect
import copy
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sleuth.errors import ConfigError
from sleuth.retrieval.bm25 import CHECKSUMMED, META, BM25Index, rebuild_hint
from sleuth.retrieval.bm25_kernels import _topk_numpy
from sleuth.retrieval.bm25_ngrams import _link_or_copy, find_sorted, pair_keys

if TYPE_CHECKING:
    from sleuth.corpus import Corpus
    from sleuth.retrieval.bm25_build import BuildStats

OVERLAY_DIR = "overlay"
OVERLAY_META = "overlay.json"
OVERLAY_FORMAT = "sleuth-bm25-overlay"
OVERLAY_VERSION = 1
MAX_OVERLAY_SHARE = 0.1  # past this share of the documents added or changed since the base, build in full
ARRAYS = {"dead": "dead.npy", "tokens": "tokens.npy", "doc_offsets": "doc_offsets.npy",
          "store_offsets": "store_offsets.npy"}
STORE = "store.bin"


@dataclass
class OverlayFacts:
    """What an overlay stores: the base positions no longer live, the delta documents (sorted ids, their stamps,
    analyzed tokens in the global vocabulary, stored text) and the terms new to the vocabulary."""

    dead: np.ndarray  # int64, sorted base positions
    doc_ids: list[str]
    stamps: list[list[int]]
    tokens: np.ndarray  # int32
    offsets: np.ndarray  # int64, len(doc_ids) + 1
    store: bytes
    store_offsets: np.ndarray  # int64, len(doc_ids) + 1 (or [0] when the index stores no text)
    added: list[str]
    fingerprint: str


def can_overlay(index: BM25Index) -> bool:
    """Whether ``index`` (a base, or an overlaid index) can take an overlay: term frequencies stored for both
    tiers, document stamps recorded, neither sharded nor enriched."""
    base = index.base if isinstance(index, OverlaidBM25Index) else index
    stamps = base.meta.get("doc_stamps")
    return (not base.sharded and base.tf is not None and base.bigrams is not None and base.bigram_tf is not None
            and isinstance(stamps, list) and len(stamps) == base.n_docs and not base.meta.get("enriched"))


# --- assembling: the live statistics and the delta segment ------------------------------------------------------


def _distinct_terms(tokens: np.ndarray, offsets: np.ndarray, vocab_size: int) -> np.ndarray:
    """Each term's number of documents in a token stream (length ``vocab_size``)."""
    lengths = np.diff(offsets)
    if len(tokens) == 0:
        return np.zeros(vocab_size, np.int64)
    doc = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    pairs = np.unique(doc * np.int64(vocab_size) + tokens.astype(np.int64))
    return np.bincount(pairs % vocab_size, minlength=vocab_size).astype(np.int64)


def _slices(tokens: np.ndarray, offsets: np.ndarray, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The token stream of ``docs`` (positions) only, with its offsets."""
    lengths = (offsets[docs + 1] - offsets[docs]).astype(np.int64)
    new_off = np.zeros(len(docs) + 1, np.int64)
    np.cumsum(lengths, out=new_off[1:])
    if len(docs) == 0:
        return np.zeros(0, np.int32), new_off
    parts = [np.asarray(tokens[int(offsets[d]): int(offsets[d + 1])]) for d in docs.tolist()]
    return np.concatenate(parts).astype(np.int32), new_off


def _bigram_df(tokens: np.ndarray, offsets: np.ndarray, vocab_size: int, params: Any) -> tuple[np.ndarray, np.ndarray]:
    """(sorted keys, document counts) of a token stream's bigrams, keys ``a * vocab_size + b``."""
    from sleuth.retrieval.bm25_ngrams import bigram_arrays

    tier = bigram_arrays(tokens, offsets, vocab_size, params)
    return tier["bigram_keys"], np.diff(tier["bigram_indptr"]).astype(np.int64)


def _recode(keys: np.ndarray, old_v: int, new_v: int) -> np.ndarray:
    return (keys // old_v) * np.int64(new_v) + keys % old_v


def assemble(base: BM25Index, facts: OverlayFacts) -> OverlaidBM25Index:
    """The overlaid index of ``base`` and ``facts`` (see the module doc)."""
    from sleuth.retrieval.bm25_build import GlobalStats, _score_matrix
    from sleuth.retrieval.bm25_ngrams import bigram_arrays

    params = base.params
    vb, nb = len(base.vocab), base.n_docs
    v = vb + len(facts.added)
    vocab = dict(base.vocab)
    vocab.update({t: vb + i for i, t in enumerate(facts.added)})
    base_off = np.asarray(base.doc_offsets, dtype=np.int64)
    live = np.ones(nb, dtype=bool)
    live[facts.dead] = False
    # unigram df: the base's, minus the dead documents', plus the delta's
    dead_tok, dead_off = _slices(np.asarray(base.tokens), base_off, facts.dead)
    df = np.zeros(v, np.int64)
    df[:vb] = np.diff(np.asarray(base.indptr, dtype=np.int64))
    df[:vb] -= _distinct_terms(dead_tok, dead_off, vb)
    df += _distinct_terms(facts.tokens, facts.offsets, v)
    # bigram df changes, keys in the global encoding a * v + b
    dk, dd = _bigram_df(dead_tok, dead_off, vb, params)
    nk, nd = _bigram_df(facts.tokens, facts.offsets, v, params)
    keys = np.concatenate([_recode(dk, vb, v), nk])
    change = np.concatenate([-dd, nd])
    ck, inv = np.unique(keys, return_inverse=True)
    cv = np.zeros(len(ck), np.int64)
    np.add.at(cv, inv, change)
    ov = OverlaidBM25Index.__new__(OverlaidBM25Index)
    ov._init(base, facts, vocab, live, df, ck, cv)
    stats = GlobalStats(n_docs=ov.n_docs, avgdl=ov.avgdl, vocab_size=v, df=df, bigram_keys=nk,
                        bigram_df=ov.overlay_bigrams.df_of(nk))
    data, indices, indptr, _ = _score_matrix(facts.tokens, facts.offsets, v, params, stats)
    arrays: dict[str, np.ndarray] = {
        "data": data, "indices": indices, "indptr": indptr, "tokens": facts.tokens, "doc_offsets": facts.offsets,
        "store_offsets": facts.store_offsets,
    }
    tier = bigram_arrays(facts.tokens, facts.offsets, v, params, None, stats)
    arrays.update({k: tier[k] for k in ("bigram_keys", "bigram_data", "bigram_indices", "bigram_indptr")})
    if facts.store:
        arrays["store"] = np.frombuffer(facts.store, dtype=np.uint8)
    meta = {"params": base.meta["params"], "doc_ids": facts.doc_ids, "bigrams": True}
    ov.delta = BM25Index(base.path / OVERLAY_DIR, meta, arrays, vocab, backend=base.requested_backend)
    return ov


# --- the index ---------------------------------------------------------------------------------------------------


class OverlayBigrams:
    """The bigram statistics of an overlaid index. Its ids are the global keys ``a * V + b`` themselves."""

    def __init__(self, ov: OverlaidBM25Index, change_keys: np.ndarray, change: np.ndarray) -> None:
        self.ov = ov
        self.vocab_size = len(ov.vocab)
        self.change_keys, self.change = change_keys, change
        base = ov.base.bigrams
        assert base is not None
        self._base_v = base.vocab_size
        before = self._base_df(change_keys)
        now = before + change  # change_keys are sorted and distinct: each one's change applies to itself
        self._len = len(base) - int(((before > 0) & (now == 0)).sum()) + int(((before == 0) & (now > 0)).sum())

    def __len__(self) -> int:
        return self._len

    def base_ids(self, keys: np.ndarray) -> np.ndarray:
        """The base tier's id of each global key (-1: the base does not hold it)."""
        tier = self.ov.base.bigrams
        assert tier is not None
        a, b = keys // self.vocab_size, keys % self.vocab_size
        ok = (a < self._base_v) & (b < self._base_v) & (keys >= 0)
        return find_sorted(tier.keys, np.where(ok, a * self._base_v + b, -1))

    def _base_df(self, keys: np.ndarray) -> np.ndarray:
        tier = self.ov.base.bigrams
        assert tier is not None
        ids = self.base_ids(keys)
        ptr = np.asarray(tier.indptr, dtype=np.int64)
        safe = np.maximum(ids, 0)
        return np.where(ids >= 0, ptr[safe + 1] - ptr[safe], 0)

    def df_of(self, keys: np.ndarray) -> np.ndarray:
        """The live document count of each global key."""
        keys = np.asarray(keys, dtype=np.int64)
        out = self._base_df(keys)
        at = find_sorted(self.change_keys, keys)
        out[at >= 0] += self.change[at[at >= 0]]
        return out

    def df(self, key: int) -> int:
        return int(self.df_of(np.asarray([key], dtype=np.int64))[0])

    def pair_ids(self, token_ids: Sequence[int]) -> list[int]:
        """The keys of the adjacent pairs of ``token_ids`` that some live document holds, in order."""
        q = pair_keys(token_ids, self.vocab_size)
        return [int(k) for k in q[(q >= 0) & (self.df_of(q) > 0)]]


class OverlaidBM25Index(BM25Index):
    """A base index with an overlay (see the module doc). Positions ``0 .. base.n_docs - 1`` are the base's
    documents (removed or changed ones never score), then the delta's; :attr:`n_docs` counts live documents."""

    base: BM25Index
    delta: BM25Index

    def _init(self, base: BM25Index, facts: OverlayFacts, vocab: dict[str, int], live: np.ndarray, df: np.ndarray,
              change_keys: np.ndarray, change: np.ndarray) -> None:
        self.__dict__.update(copy.copy(base.__dict__))  # the base's attributes (analyzer, params, arrays, ...)
        self.base = copy.copy(base)
        self.base.live_mask = live  # type: ignore[attr-defined]  # for the df tool's phrase counts
        self.facts = facts
        self.vocab = vocab
        self.live = live
        base_len = np.diff(np.asarray(base.doc_offsets, dtype=np.int64))
        n_live = int(live.sum()) + len(facts.doc_ids)
        n_tokens = int(base_len[live].sum()) + len(facts.tokens)  # the live documents' tokens
        avg = n_tokens / n_live if n_live else 1.0  # a rebuild's float(lengths.mean()): the same double
        self.n_base = base.n_docs
        self.n_docs = n_live
        self.avgdl = avg
        self.df_live = df
        self.doc_ids = list(base.doc_ids) + list(facts.doc_ids)
        self.meta = {**base.meta, "fingerprint": facts.fingerprint, "n_docs": n_live, "n_tokens": n_tokens,
                     "overlay": {"documents": len(facts.doc_ids), "dead": len(facts.dead)}}
        self.meta.pop("doc_stamps", None)
        self._pos = None
        self._ranks: np.ndarray | None = None
        p = self.params
        k1, b = np.float32(p.k1), np.float32(p.b)
        dl = base_len.astype(np.float32)
        norm = k1 * ((np.float32(1) - b) + b * dl / np.float32(max(avg, 1e-9)))  # the build's expression
        norm[~live] = np.inf
        self.knorm = norm.astype(np.float32)
        self.overlay_bigrams = OverlayBigrams(self, change_keys, change)
        self.bigrams = self.overlay_bigrams  # type: ignore[assignment]  # the same lookups as a BigramTier

    def __repr__(self) -> str:
        return (f"OverlaidBM25Index({str(self.path)!r}, docs={self.n_docs}, overlay={len(self.facts.doc_ids)} "
                f"documents, {len(self.facts.dead)} dead)")

    @property
    def parts(self) -> list[BM25Index]:
        return [self.base, self.delta]

    def doc_freq(self, token_id: int) -> int:
        return int(self.df_live[token_id])

    def _idf(self, df: np.ndarray) -> np.ndarray:
        n = self.n_docs
        return np.log(1.0 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)  # the build's idf

    def _base_scores(self, out: np.ndarray, tok: np.ndarray, w: np.ndarray) -> None:
        inside = tok < self.n_base_vocab
        t, wt = tok[inside], w[inside]
        if len(t):
            self._kernel(4)(out, t, wt, self._idf(self.df_live[t]), self.base.tf, self.base.indices,
                            self.base.indptr, self.knorm)

    @property
    def n_base_vocab(self) -> int:
        return len(self.base.vocab)

    def score_vector(self, tok: np.ndarray, w: np.ndarray) -> np.ndarray:
        out = np.zeros(self.n_base + self.delta.n_docs, np.float32)
        if len(tok):
            try:
                self._base_scores(out[: self.n_base], tok, w)
            except IndexError as e:
                raise self._out_of_bounds(e) from None
            out[self.n_base:] = self.delta.score_vector(tok, w)
        return out

    def tier_score_vector(self, tok: np.ndarray, w: np.ndarray, btok: np.ndarray, bw: np.ndarray) -> np.ndarray:
        out = np.zeros(self.n_base + self.delta.n_docs, np.float32)
        keys = np.asarray(btok, dtype=np.int64)
        bw = np.asarray(bw, dtype=np.float32)
        base_tier, delta_tier = self.base.bigrams, self.delta.bigrams
        assert base_tier is not None and delta_tier is not None
        try:
            sb = out[: self.n_base]
            self._base_scores(sb, tok, w)
            bid = self.overlay_bigrams.base_ids(keys)
            found = bid >= 0
            if found.any():
                idf = self._idf(self.overlay_bigrams.df_of(keys[found]))
                self._kernel(4)(sb, bid[found], bw[found], idf, self.base.bigram_tf, base_tier.indices,
                                base_tier.indptr, self.knorm)
        except IndexError as e:
            raise self._out_of_bounds(e) from None
        at = find_sorted(delta_tier.keys, keys)
        out[self.n_base:] = self.delta.tier_score_vector(tok, w, at[at >= 0], bw[at >= 0])
        return out

    def _by_rank(self) -> np.ndarray:
        """The position of each live document in the order a rebuild gives them (sorted ids): its tie rule."""
        if self._ranks is None:
            base_ids = self.base.doc_ids
            ins = np.asarray([bisect.bisect_left(base_ids, d) for d in self.facts.doc_ids], dtype=np.int64)
            live = self.live
            cum = np.zeros(self.n_base + 1, np.int64)
            np.cumsum(live, out=cum[1:])
            rank = np.full(self.n_base + len(ins), -1, np.int64)
            pos = np.arange(self.n_base)
            rank[: self.n_base][live] = (cum[:-1] + np.searchsorted(ins, pos, side="right"))[live]
            rank[self.n_base:] = np.arange(len(ins)) + cum[ins]
            where = np.zeros(self.n_docs, np.int64)
            where[rank[rank >= 0]] = np.flatnonzero(rank >= 0)
            self._ranks = where
        return self._ranks

    def masked_topk(self, scores: np.ndarray, mask: np.ndarray | None, k: int) -> tuple[np.ndarray, np.ndarray]:
        n = self.n_base + self.delta.n_docs
        if mask is not None and (mask.shape != (n,) or mask.dtype != np.bool_):
            raise ConfigError(f"a filter mask must be {n} booleans, got {mask.dtype} {mask.shape}")
        where = self._by_rank()
        ranked = scores[where]
        if mask is not None:
            ranked = np.where(mask[where], ranked, np.float32(0))
        top, idx = _topk_numpy(ranked, min(k, len(ranked)))
        keep = top > 0
        return top[keep], where[idx[keep]]

    def topk_ids(self, tok: np.ndarray, w: np.ndarray, k: int, mask: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
        if len(tok) == 0 or k <= 0 or self.n_docs == 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        return self.masked_topk(self.score_vector(tok, w), mask, k)

    def tier_topk(self, tok: np.ndarray, w: np.ndarray, btok: np.ndarray, bw: np.ndarray, k: int,
                  mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        if (len(tok) == 0 and len(btok) == 0) or k <= 0 or self.n_docs == 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        return self.masked_topk(self.tier_score_vector(tok, w, btok, bw), mask, k)

    def text_of(self, i: int) -> str:
        return self.base.text_of(i) if i < self.n_base else self.delta.text_of(i - self.n_base)

    def live_doc_ids(self) -> list[str]:
        return [d for i, d in enumerate(self.base.doc_ids) if self.live[i]] + list(self.facts.doc_ids)

    def position(self, doc_id: str) -> int:
        if self._pos is None:
            pos = {d: i for i, d in enumerate(self.base.doc_ids) if self.live[i]}
            pos.update({d: self.n_base + j for j, d in enumerate(self.facts.doc_ids)})
            self._pos = pos
        return self._pos[doc_id]


# --- writing and reading ---------------------------------------------------------------------------------------


def update(corpus: Corpus, old: BM25Index, doc_ids: list[str], stamps: list[list[int]], fingerprint: str, *,
           lock_timeout: float | None = None) -> BuildStats | None:
    """Bring ``old`` up to date with an overlay (see the module doc); None when it cannot take one (then the
    caller builds in full). The returned stats carry the new index (``stats.index``), assembled in memory."""
    from sleuth.retrieval.bm25_build import BuildStats, iter_texts
    from sleuth.retrieval.index_store import LOCK_TIMEOUT_S, building

    if not can_overlay(old):
        return None
    t0 = time.perf_counter()
    prev = old if isinstance(old, OverlaidBM25Index) else None
    base = prev.base if prev is not None else old
    base_stamps = base.meta["doc_stamps"]
    current = dict(zip(doc_ids, stamps, strict=True))
    live_ids = {d for d, st in zip(base.doc_ids, base_stamps, strict=True) if current.get(d) == st}
    delta_ids = [d for d in doc_ids if d not in live_ids]
    if len(delta_ids) > MAX_OVERLAY_SHARE * max(1, len(doc_ids)):
        return None
    dead = np.asarray([i for i, d in enumerate(base.doc_ids) if d not in live_ids], dtype=np.int64)
    kept: dict[str, int] = {}  # delta documents of the previous overlay that did not change again
    if prev is not None:
        for j, d in enumerate(prev.facts.doc_ids):
            if current.get(d) == list(prev.facts.stamps[j]):
                kept[d] = j
    added = list(prev.facts.added) if prev is not None else []
    vocab = dict(base.vocab)
    vocab.update({t: len(base.vocab) + i for i, t in enumerate(added)})
    analyzer, store_chars = base.analyzer, base.params.store_chars
    toks: list[np.ndarray] = []
    blobs: list[bytes] = []
    read = 0
    for d in delta_ids:
        if d in kept:
            assert prev is not None
            j = kept[d]
            f = prev.facts
            toks.append(np.asarray(f.tokens[int(f.offsets[j]): int(f.offsets[j + 1])]))
            blobs.append(f.store[int(f.store_offsets[j]): int(f.store_offsets[j + 1])] if store_chars else b"")
            continue
        read += 1
        text = next(iter_texts(corpus, [d]))  # "" for a file that went away since the listing
        ids = []
        for tok in analyzer.tokens(text):
            tid = vocab.get(tok)
            if tid is None:
                tid = vocab[tok] = len(vocab)
                added.append(tok)
            ids.append(tid)
        toks.append(np.asarray(ids, dtype=np.int32))
        blobs.append(text[:store_chars].encode("utf-8") if store_chars else b"")
    offsets = np.zeros(len(delta_ids) + 1, np.int64)
    np.cumsum([len(t) for t in toks], out=offsets[1:])
    store_off = np.zeros(len(delta_ids) + 1 if store_chars else 1, np.int64)
    if store_chars:
        np.cumsum([len(b) for b in blobs], out=store_off[1:])
    facts = OverlayFacts(
        dead=dead, doc_ids=delta_ids, stamps=[list(current[d]) for d in delta_ids],
        tokens=np.concatenate(toks).astype(np.int32) if toks else np.zeros(0, np.int32), offsets=offsets,
        store=b"".join(blobs), store_offsets=store_off, added=added, fingerprint=fingerprint,
    )
    target = base.path
    with building(target, timeout=LOCK_TIMEOUT_S if lock_timeout is None else lock_timeout) as tmp:
        for name in (META, *CHECKSUMMED):
            if (target / name).is_file():
                _link_or_copy(target / name, tmp / name)
        _write(tmp / OVERLAY_DIR, facts, base)
    from sleuth.retrieval.bm25_build import remember_verified

    remember_verified(target)
    index = assemble(base, facts)
    if prev is not None:
        before = {d for i, d in enumerate(base.doc_ids) if prev.live[i]} | set(prev.facts.doc_ids)
    else:
        before = set(base.doc_ids)
    now = set(doc_ids)
    stats = BuildStats(index.n_docs, len(facts.tokens), len(index.vocab), time.perf_counter() - t0)
    stats.added = sum(1 for d in delta_ids if d not in before)
    stats.changed = read - stats.added
    stats.removed = len(before - now)
    stats.kept = len(doc_ids) - read
    stats.index = index
    return stats


def _write(folder: Path, facts: OverlayFacts, base: BM25Index) -> None:
    from sleuth.retrieval import index_check as ic

    folder.mkdir()
    for key, name in ARRAYS.items():
        arr = facts.dead if key == "dead" else facts.offsets if key == "doc_offsets" else getattr(facts, key)
        np.save(folder / name, arr)
    (folder / STORE).write_bytes(facts.store)
    meta = {"format": OVERLAY_FORMAT, "format_version": OVERLAY_VERSION,
            "base": base.meta.get("checksums", {}).get(META), "fingerprint": facts.fingerprint,
            "doc_ids": facts.doc_ids, "doc_stamps": facts.stamps, "added_terms": facts.added,
            "checksums": ic.file_checksums(folder, [*ARRAYS.values(), STORE])}
    (folder / OVERLAY_META).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")


def has_overlay(path: Path) -> bool:
    return (path / OVERLAY_DIR / OVERLAY_META).is_file()


def attach(base: BM25Index) -> OverlaidBM25Index:
    """The overlaid index of a base loaded from a folder that holds an overlay, checked: its checksums, that it
    was written over this base, every array's bounds. Anything wrong raises :class:`IndexCorruptError`."""
    from sleuth.retrieval import index_check as ic

    folder = base.path / OVERLAY_DIR
    fix = rebuild_hint(base.path)
    try:
        meta = json.loads((folder / OVERLAY_META).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ic.corrupt(folder / OVERLAY_META, f"unreadable ({e})", fix) from None
    if not isinstance(meta, dict) or meta.get("format") != OVERLAY_FORMAT or \
            meta.get("format_version") != OVERLAY_VERSION:
        raise ic.corrupt(folder / OVERLAY_META, "not a sleuth BM25 overlay of this version", fix)
    if meta.get("base") != base.meta.get("checksums", {}).get(META) or not can_overlay(base):
        raise ic.corrupt(folder / OVERLAY_META, "it was written over another base index", fix)
    ic.verify_checksums(folder, meta, fix)
    try:
        arrays = {k: np.load(folder / n, allow_pickle=False) for k, n in ARRAYS.items()}
        store = (folder / STORE).read_bytes()
        doc_ids, stamps, added = meta["doc_ids"], meta["doc_stamps"], meta["added_terms"]
    except (OSError, ValueError, KeyError) as e:
        raise ic.corrupt(folder, f"{type(e).__name__}: {str(e)[:300]}", fix) from None
    v = len(base.vocab) + (len(added) if isinstance(added, list) else 0)
    dead, tok, off, soff = arrays["dead"], arrays["tokens"], arrays["doc_offsets"], arrays["store_offsets"]
    ok = (isinstance(doc_ids, list) and all(isinstance(d, str) for d in doc_ids) and doc_ids == sorted(doc_ids)
          and isinstance(stamps, list) and len(stamps) == len(doc_ids) and isinstance(added, list)
          and all(isinstance(t, str) and t not in base.vocab for t in added) and len(set(added)) == len(added)
          and dead.dtype == np.int64 and dead.ndim == 1 and (len(dead) == 0 or (int(dead.min()) >= 0
          and int(dead.max()) < base.n_docs and bool(np.all(np.diff(dead) > 0))))
          and tok.dtype == np.int32 and off.dtype == np.int64 and off.shape == (len(doc_ids) + 1,)
          and int(off[0]) == 0 and bool(np.all(np.diff(off) >= 0)) and int(off[-1]) == len(tok)
          and (len(tok) == 0 or (int(tok.min()) >= 0 and int(tok.max()) < v))
          and soff.dtype == np.int64 and int(soff[0]) == 0 and bool(np.all(np.diff(soff) >= 0))
          and int(soff[-1]) == len(store) and soff.shape in ((len(doc_ids) + 1,), (1,)))
    if not ok:
        raise ic.corrupt(folder, "its arrays are inconsistent with each other or with the base index", fix)
    facts = OverlayFacts(dead=dead, doc_ids=doc_ids, stamps=stamps, tokens=tok, offsets=off, store=store,
                         store_offsets=soff, added=added, fingerprint=str(meta.get("fingerprint", "")))
    return assemble(base, facts)


__all__ = [
    "MAX_OVERLAY_SHARE",
    "OverlaidBM25Index",
    "OverlayFacts",
    "assemble",
    "attach",
    "can_overlay",
    "update",
]
