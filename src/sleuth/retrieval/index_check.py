"""Checking an index's files before they are used: checksums recorded at build, value checks, a verified cache.

An index folder travels with its corpus (``CORPUS/.sleuth/``), so a shared corpus may carry a damaged or crafted
index. Two layers guard against it:

* **Value checks** (:func:`check_bm25`, :func:`check_dense`): every array has the dtype, shape, bounds and
  finiteness the readers and the numba kernels rely on (no index outside its array, no NaN or infinite score).
  Shape and monotonicity checks cost O(vocabulary + documents) and run on every open; the O(postings + tokens)
  range checks run with the checksums.
* **Checksums** (:func:`file_checksums`), recorded in ``meta.json`` at build time: catch damage the value checks
  cannot see (a flipped bit inside a valid range). They say nothing against a crafted index (its author can
  record matching ones): that is the value checks' job.

Hashing and range-checking a large memory-mapped index costs time proportional to its size (about 1 s per GB),
which a memory-mapped open otherwise avoids. So the deep checks run on the first open of a given set of files
and the result is remembered by :class:`VerifiedCache`, keyed by each file's (inode, size, mtime_ns, ctime_ns).
The cache lives in the user's sleuth home, never in the corpus, so an index cannot ship a claim that it was
verified; and ``ctime`` cannot be set back by anyone, so rewriting a file in place and restoring its mtime still
invalidates the entry.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sleuth.errors import IndexCorruptError

ALGO = "sha256"
_CHUNK = 1 << 20


def _digest_file(path: Path) -> str:
    h = hashlib.sha256()
    buf = bytearray(_CHUNK)
    view = memoryview(buf)
    with path.open("rb") as fh:
        while n := fh.readinto(buf):
            h.update(view[:n])
    return f"{ALGO}:{h.hexdigest()}"


def meta_digest(meta: Mapping[str, Any]) -> str:
    """Digest of ``meta.json``'s content without its ``checksums`` entry (canonical JSON)."""
    body = {k: v for k, v in meta.items() if k != "checksums"}
    raw = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return f"{ALGO}:{hashlib.sha256(raw).hexdigest()}"


def file_checksums(folder: Path, names: Iterable[str]) -> dict[str, str]:
    """``{name: "sha256:<hex>"}`` for the files that exist among ``names`` (sha256: hardware-accelerated on
    current CPUs, faster here than blake2b)."""
    return {n: _digest_file(folder / n) for n in names if (folder / n).is_file()}


def corrupt(path: Path, problem: str, fix: str) -> IndexCorruptError:
    return IndexCorruptError(f"index file {path} is corrupt: {problem}", hint=fix, path=str(path))


def verify_checksums(folder: Path, meta: Mapping[str, Any], fix: str) -> None:
    """Compare the files (and meta.json's own content) with the checksums recorded at build. An index built
    before checksums were recorded has none: only its values are checked."""
    recorded = meta.get("checksums")
    if recorded is None:
        return
    if not isinstance(recorded, dict) or not all(isinstance(v, str) for v in recorded.values()):
        raise corrupt(folder / "meta.json", "its checksum table is malformed", fix)
    for name, expected in recorded.items():
        if name == "meta.json":
            got = meta_digest(meta)
        else:
            p = folder / name
            if not p.is_file():
                raise corrupt(p, "the file is missing", fix)
            got = _digest_file(p)
        if got != expected:
            raise corrupt(folder / name, "its checksum differs from the one recorded at build time", fix)


class VerifiedCache:
    """Which index folders passed the deep checks, by file signature. ``root=None`` disables it (every open
    verifies). Writes are atomic; an unwritable cache only costs time."""

    MAX_ENTRIES = 2000

    def __init__(self, root: Path | None) -> None:
        self.root = root

    @classmethod
    def default(cls) -> VerifiedCache:
        from sleuth.config import sleuth_home

        return cls(sleuth_home() / "index-checks")

    def _entry(self, folder: Path) -> Path | None:
        if self.root is None:
            return None
        key = hashlib.sha1(str(folder.resolve()).encode("utf-8", "surrogateescape")).hexdigest()
        return self.root / f"{key}.json"

    @staticmethod
    def signature(folder: Path, names: Sequence[str]) -> dict[str, list[int]] | None:
        out = {}
        for n in names:
            try:
                st = (folder / n).stat()
            except OSError:
                return None
            out[n] = [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
        return out

    def is_verified(self, folder: Path, names: Sequence[str]) -> bool:
        entry = self._entry(folder)
        if entry is None:
            return False
        sig = self.signature(folder, names)
        try:
            saved = json.loads(entry.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return sig is not None and isinstance(saved, dict) and saved.get("files") == sig

    def remember(self, folder: Path, names: Sequence[str]) -> None:
        entry = self._entry(folder)
        sig = self.signature(folder, names)
        if entry is None or sig is None:
            return
        from sleuth.fsutil import atomic_write_text

        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            # a cache: lost, the next open checks the files again (no fsync)
            atomic_write_text(entry, json.dumps({"folder": str(folder.resolve()), "files": sig}), durable=False)
            self._prune(entry.parent)
        except OSError:
            pass

    def _prune(self, root: Path) -> None:
        entries = list(root.glob("*.json"))
        if len(entries) <= self.MAX_ENTRIES:
            return
        entries.sort(key=lambda p: p.stat().st_mtime if p.exists() else 0.0)
        for p in entries[: len(entries) // 2]:
            p.unlink(missing_ok=True)


def deep_check_once(
    folder: Path, names: Sequence[str], meta: Mapping[str, Any], check_values: Any, fix: str,
    cache: VerifiedCache | None,
) -> bool:
    """Run ``check_values()`` and :func:`verify_checksums` unless ``cache`` saw these exact files pass before.
    Returns whether the checks ran."""
    if cache is not None and cache.is_verified(folder, names):
        return False
    check_values()
    verify_checksums(folder, meta, fix)
    if cache is not None:
        cache.remember(folder, names)
    return True


# --- value checks -------------------------------------------------------------------------------------------


def _need(cond: bool, path: Path, problem: str, fix: str) -> None:
    if not cond:
        raise corrupt(path, problem, fix)


def _str_list(x: Any) -> bool:
    return isinstance(x, list) and set(map(type, x)) <= {str}  # map(type): C speed on millions of ids


def check_int_array(a: np.ndarray, path: Path, fix: str, *, shape: tuple[int, ...] | None = None) -> None:
    _need(a.ndim == 1 and a.dtype.kind in "iu" and a.dtype.isnative, path,
          f"expected a 1-D integer array in this machine's byte order, found {a.dtype.str} {a.shape}", fix)
    if shape is not None:
        _need(a.shape == shape, path, f"expected {shape[0]} entries, found {a.shape[0]}", fix)


def check_offsets(a: np.ndarray, end: int, path: Path, fix: str) -> None:
    """An offsets array: starts at 0, never decreases, ends at ``end`` (the length of what it slices)."""
    check_int_array(a, path, fix)
    _need(a.shape[0] >= 1 and int(a[0]) == 0, path, "offsets do not start at 0", fix)
    _need(int(a[-1]) == end, path, f"offsets end at {int(a[-1])}, not at the sliced array's length {end}", fix)
    _need(bool(np.all(a[1:] >= a[:-1])), path, "offsets decrease somewhere", fix)


def check_range(a: np.ndarray, lo: int, hi: int, path: Path, fix: str, what: str) -> None:
    """Every value in ``[lo, hi)`` (two streaming passes, no temporary arrays)."""
    if a.shape[0] == 0:
        return
    mn, mx = int(a.min()), int(a.max())
    _need(mn >= lo and mx < hi, path, f"{what} outside [{lo}, {hi}) (found {mn}..{mx})", fix)


def bm25_score_bound(n_docs: int) -> float:
    """No BM25 'lucene' score exceeds the largest idf, ln(1 + (N - 0.5) / 1.5) (df >= 1, tf part < 1)."""
    return math.log1p(max(n_docs - 0.5, 0.0) / 1.5) * 1.001 + 1e-6


def check_bm25_shapes(
    path: Path, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray], vocab: Any, files: Mapping[str, str],
    fix: str,
) -> None:
    """O(vocabulary + documents) checks, run on every open."""
    f = {k: path / v for k, v in files.items()}
    doc_ids = meta.get("doc_ids")
    _need(_str_list(doc_ids), path / "meta.json", "doc_ids is not a list of strings", fix)
    n = len(doc_ids)  # type: ignore[arg-type]
    _need(meta.get("n_docs") == n, path / "meta.json", "n_docs differs from the doc id list", fix)
    _need(type(meta.get("n_tokens")) is int, path / "meta.json", "n_tokens is not an integer", fix)
    _need(isinstance(vocab, dict), f["vocab"], "the vocabulary is not a JSON object", fix)
    v = len(vocab)
    if v:
        ids = np.array(list(vocab.values()))  # int64 only when every id is an integer that fits
        _need(ids.dtype.kind == "i" and ids.ndim == 1, f["vocab"], "vocabulary ids are not all integers", fix)
        _need(int(ids.min()) >= 0 and int(ids.max()) < v, f["vocab"], f"vocabulary ids outside [0, {v})", fix)
        _need(int(np.bincount(ids, minlength=v).max()) == 1, f["vocab"], "two terms share an id", fix)
    data, indices, indptr = arrays["data"], arrays["indices"], arrays["indptr"]
    _need(data.ndim == 1 and data.dtype == np.float32, f["data"], f"expected 1-D float32, found {data.dtype}", fix)
    check_int_array(indices, f["indices"], fix, shape=data.shape)
    check_int_array(indptr, f["indptr"], fix, shape=(v + 1,))
    check_offsets(indptr, data.shape[0], f["indptr"], fix)
    tokens = arrays["tokens"]
    check_int_array(tokens, f["tokens"], fix)
    check_int_array(arrays["doc_offsets"], f["doc_offsets"], fix, shape=(n + 1,))
    check_offsets(arrays["doc_offsets"], tokens.shape[0], f["doc_offsets"], fix)
    so = arrays["store_offsets"]
    check_int_array(so, f["store_offsets"], fix)
    _need(so.shape[0] in (1, n + 1), f["store_offsets"], f"expected 1 or {n + 1} entries, found {so.shape[0]}", fix)
    store = arrays.get("store")
    check_offsets(so, 0 if store is None else int(store.shape[0]), f["store_offsets"], fix)


def check_bm25_values(
    path: Path, n_docs: int, arrays: Mapping[str, np.ndarray], vocab_size: int, files: Mapping[str, str], fix: str,
    *, bound_docs: int | None = None,
) -> None:
    """O(postings + tokens) checks: every document index, token id and score in range (NaN fails). ``bound_docs``:
    the N the scores' idf was computed with, when not ``n_docs`` (a shard scored with the whole corpus's N)."""
    check_range(arrays["indices"], 0, n_docs, path / files["indices"], fix, "document indices")
    check_range(arrays["tokens"], 0, vocab_size, path / files["tokens"], fix, "token ids")
    data = arrays["data"]
    if data.shape[0]:
        lo, hi, bound = float(data.min()), float(data.max()), bm25_score_bound(bound_docs or n_docs)
        _need(lo >= 0 and hi <= bound, path / files["data"],
              f"scores outside [0, {bound:.3f}] (found {lo}..{hi}; NaN or infinite values show as nan/inf)", fix)


def check_tf_shapes(path: Path, arrays: Mapping[str, np.ndarray], files: Mapping[str, str], fix: str) -> None:
    """The optional term-frequency arrays: float32, one per posting of their tier."""
    for key, of in (("tf", "indices"), ("bigram_tf", "bigram_indices")):
        tf = arrays.get(key)
        if tf is None:
            continue
        _need(tf.ndim == 1 and tf.dtype == np.float32 and of in arrays and tf.shape == arrays[of].shape,
              path / files[key], f"expected one float32 per posting, found {tf.dtype} {tf.shape}", fix)


def check_tf_values(path: Path, arrays: Mapping[str, np.ndarray], files: Mapping[str, str], fix: str) -> None:
    """Every term frequency a finite count of at least 1 (NaN fails)."""
    for key in ("tf", "bigram_tf"):
        tf = arrays.get(key)
        if tf is not None and tf.shape[0]:
            lo, hi = float(tf.min()), float(tf.max())
            _need(lo >= 1 and hi < 2**31 and lo == lo and hi == hi, path / files[key],
                  f"term frequencies outside [1, 2^31) (found {lo}..{hi})", fix)


def check_bigram_shapes(
    path: Path, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray], vocab_size: int, fix: str
) -> None:
    """The bigram tier's O(bigrams) checks, on every open (:mod:`sleuth.retrieval.bm25_ngrams`)."""
    from sleuth.retrieval.bm25_ngrams import BIGRAM_FILES

    f = {k: path / v for k, v in BIGRAM_FILES.items()}
    entry = meta.get("bigrams")
    _need(isinstance(entry, dict) and entry.get("vocab_size") == vocab_size, path / "meta.json",
          f"its bigram entry does not match the vocabulary of {vocab_size} terms", fix)
    keys, data = arrays["bigram_keys"], arrays["bigram_data"]
    _need(keys.ndim == 1 and keys.dtype == np.int64, f["bigram_keys"],
          f"expected 1-D int64 keys in this machine's byte order, found {keys.dtype.str} {keys.shape}", fix)
    _need(entry.get("n_bigrams") == keys.shape[0], f["bigram_keys"],  # type: ignore[union-attr]
          f"{keys.shape[0]} bigrams, meta.json says {entry.get('n_bigrams')}", fix)  # type: ignore[union-attr]
    _need(data.ndim == 1 and data.dtype == np.float32, f["bigram_data"], f"expected 1-D float32, found {data.dtype}",
          fix)
    check_int_array(arrays["bigram_indices"], f["bigram_indices"], fix, shape=data.shape)
    check_int_array(arrays["bigram_indptr"], f["bigram_indptr"], fix, shape=(keys.shape[0] + 1,))
    check_offsets(arrays["bigram_indptr"], data.shape[0], f["bigram_indptr"], fix)


def check_bigram_values(path: Path, n_docs: int, arrays: Mapping[str, np.ndarray], vocab_size: int, fix: str, *,
                        bound_docs: int | None = None) -> None:
    """O(postings) checks of the bigram tier: keys strictly increasing and decodable into two token ids, every
    bigram in at least one document, document indices and scores in range."""
    from sleuth.retrieval.bm25_ngrams import BIGRAM_FILES

    f = {k: path / v for k, v in BIGRAM_FILES.items()}
    keys = arrays["bigram_keys"]
    if keys.shape[0]:
        _need(int(keys[0]) >= 0 and int(keys[-1]) < vocab_size * vocab_size, f["bigram_keys"],
              f"bigram keys outside [0, {vocab_size}^2)", fix)
        _need(bool(np.all(keys[1:] > keys[:-1])), f["bigram_keys"], "bigram keys are not strictly increasing", fix)
    ptr = arrays["bigram_indptr"]
    _need(bool(np.all(ptr[1:] > ptr[:-1])), f["bigram_indptr"], "a bigram has no posting", fix)
    check_range(arrays["bigram_indices"], 0, n_docs, f["bigram_indices"], fix, "document indices")
    data = arrays["bigram_data"]
    if data.shape[0]:
        lo, hi, bound = float(data.min()), float(data.max()), bm25_score_bound(bound_docs or n_docs)
        _need(lo >= 0 and hi <= bound, f["bigram_data"],
              f"scores outside [0, {bound:.3f}] (found {lo}..{hi}; NaN or infinite values show as nan/inf)", fix)


def check_dense(path: Path, meta: Mapping[str, Any], docs: Any, vectors: np.ndarray, fix: str) -> None:
    """Doc list, hashes and vectors agree; vectors are finite float32 rows of the recorded dim, norm <= 1."""
    mp, dp, vp = path / "meta.json", path / "docs.json", path / "vectors.npy"
    dim, n = meta.get("dim"), meta.get("n_docs")
    _need(type(dim) is int and dim > 0, mp, f"dim is {dim!r}", fix)
    _need(type(n) is int and n >= 0, mp, f"n_docs is {n!r}", fix)
    _need(isinstance(docs, dict), dp, "not a JSON object", fix)
    doc_ids, hashes = docs.get("doc_ids"), docs.get("hashes")
    _need(_str_list(doc_ids), dp, "doc_ids is not a list of strings", fix)
    _need(_str_list(hashes), dp, "hashes is not a list of strings", fix)
    _need(len(doc_ids) == len(hashes) == n, dp, f"{len(doc_ids)} doc ids and {len(hashes)} hashes for n_docs={n}", fix)
    _need(vectors.dtype == np.float32 and vectors.ndim == 2, vp, f"expected a 2-D float32 array, found {vectors.dtype} "
          f"{vectors.shape}", fix)
    _need(vectors.shape == (n, dim), vp, f"shape {vectors.shape}, meta says ({n}, {dim})", fix)
    if n:
        _need(bool(np.isfinite(vectors).all()), vp, "NaN or infinite values", fix)
        norms = np.einsum("ij,ij->i", vectors, vectors)
        _need(float(norms.max()) <= 1.0 + 1e-3, vp, f"rows are not unit vectors (squared norm up to {norms.max():.3g})",
              fix)


def stat_names(folder: Path, names: Iterable[str]) -> list[str]:
    """The names among ``names`` that exist in ``folder`` (for a cache signature), meta.json included."""
    return [n for n in names if os.path.lexists(folder / n)]
