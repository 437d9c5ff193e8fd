"""A real corrupted index: build real BM25 (and dense) indexes, damage the values of each file in many ways, and
open/search/df each one in a child process. Every open must raise IndexCorruptError (never a segfault, never a
foreign exception, never silently wrong results).

The child runs the whole matrix and prints one JSON line per case, so a crash names the case it died in.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import MEDICAL_DOCS

REPO = Path(__file__).resolve().parents[2]

DOCS = {**MEDICAL_DOCS, "g.txt": "Heart failure and blood pressure: cardiac output in older adults with diabetes."}


# --- corruptions --------------------------------------------------------------------------------------------------


def _edit(path: Path, fn: Callable[[np.ndarray], np.ndarray | None]) -> None:
    """Change an array's values and save it back (same dtype and shape unless ``fn`` returns a new array)."""
    a = np.load(path).copy()
    out = fn(a)
    np.save(path, a if out is None else out)


def _set(i: int | slice, v: float) -> Callable[[np.ndarray], None]:
    def f(a: np.ndarray) -> None:
        a[i] = v

    return f


def _swap(i: int, j: int) -> Callable[[np.ndarray], None]:
    def f(a: np.ndarray) -> None:
        a[i], a[j] = a[j] + 3, a[i]

    return f


def _truncate(path: Path, n: int = 24) -> None:
    path.write_bytes(path.read_bytes()[:-n])


def _flip_body_byte(path: Path, back: int = 3) -> None:
    """Flip the lowest bit of a byte near the end of the file (an array body: the value stays in range)."""
    raw = bytearray(path.read_bytes())
    raw[-back] ^= 0x01
    path.write_bytes(bytes(raw))


def _header_garbage(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[:8] = b"\x00garbage"
    path.write_bytes(bytes(raw))


def _json_edit(path: Path, fn: Callable[[object], object]) -> None:
    obj = json.loads(path.read_text(encoding="utf-8"))
    obj = fn(obj) or obj
    path.write_text(json.dumps(obj), encoding="utf-8")


def _vocab_set_first(v: object) -> Callable[[object], None]:
    def f(vocab: object) -> None:
        assert isinstance(vocab, dict)
        vocab[next(iter(vocab))] = v

    return f


def _vocab_dup(vocab: object) -> None:
    assert isinstance(vocab, dict)
    keys = list(vocab)
    vocab[keys[0]] = vocab[keys[1]]


def _vocab_rename(vocab: object) -> object:
    assert isinstance(vocab, dict)
    k = next(iter(vocab))
    return {("zzz" + k if key == k else key): val for key, val in vocab.items()}


D, IX, P, T = "data.csc.index.npy", "indices.csc.index.npy", "indptr.csc.index.npy", "tokens.npy"
DO, SO = "doc_offsets.npy", "store_offsets.npy"
BK, BD, BI, BP = "bigram_keys.npy", "bigram_data.npy", "bigram_indices.npy", "bigram_indptr.npy"


def _meta_bigrams(field: str, delta: int) -> Callable[[object], object]:
    def f(m: object) -> object:
        assert isinstance(m, dict)
        return {**m, "bigrams": {**m["bigrams"], field: m["bigrams"][field] + delta}}

    return f

# name -> (function(index_dir, n_docs, vocab_size, nnz), caught by values alone (True) or by the checksum only)
BM25_CASES: dict[str, tuple[Callable[[Path, int, int, int], None], bool]] = {
    "data_nan": (lambda p, n, v, z: _edit(p / D, _set(z // 2, np.nan)), True),
    "data_inf": (lambda p, n, v, z: _edit(p / D, _set(0, np.inf)), True),
    "data_negative": (lambda p, n, v, z: _edit(p / D, _set(1, -3.0)), True),
    "data_huge": (lambda p, n, v, z: _edit(p / D, _set(2, 1e30)), True),
    "data_float64": (lambda p, n, v, z: _edit(p / D, lambda a: a.astype(np.float64)), True),
    "data_truncated": (lambda p, n, v, z: _truncate(p / D), True),
    "data_header": (lambda p, n, v, z: _header_garbage(p / D), True),
    "data_flipped_bit": (lambda p, n, v, z: _flip_body_byte(p / D, 4), False),
    "indices_out_of_range": (lambda p, n, v, z: _edit(p / IX, _set(0, n + 7)), True),
    "indices_negative": (lambda p, n, v, z: _edit(p / IX, _set(3, -1)), True),
    "indices_int_max": (lambda p, n, v, z: _edit(p / IX, _set(z - 1, 2**31 - 1)), True),
    "indices_big_endian": (lambda p, n, v, z: _edit(p / IX, lambda a: a.astype(">i4")), True),
    "indices_float": (lambda p, n, v, z: _edit(p / IX, lambda a: a.astype(np.float32)), True),
    "indices_truncated": (lambda p, n, v, z: _truncate(p / IX), True),
    "indices_in_range_changed": (lambda p, n, v, z: _edit(p / IX, lambda a: (a + 1) % n), False),
    "indptr_not_monotonic": (lambda p, n, v, z: _edit(p / P, _swap(5, 6)), True),
    "indptr_past_end": (lambda p, n, v, z: _edit(p / P, _set(v // 2, z + 1000)), True),
    "indptr_negative": (lambda p, n, v, z: _edit(p / P, _set(1, -100)), True),
    "indptr_first_not_zero": (lambda p, n, v, z: _edit(p / P, _set(0, 5)), True),
    "indptr_last_wrong": (lambda p, n, v, z: _edit(p / P, _set(v, z - 1)), True),
    "indptr_truncated": (lambda p, n, v, z: _truncate(p / P, 8), True),
    "tokens_out_of_range": (lambda p, n, v, z: _edit(p / T, _set(0, v + 3)), True),
    "tokens_negative": (lambda p, n, v, z: _edit(p / T, _set(1, -2)), True),
    "tokens_in_range_changed": (lambda p, n, v, z: _edit(p / T, lambda a: (a + 1) % v), False),
    "tokens_truncated": (lambda p, n, v, z: _truncate(p / T, 8), True),
    "doc_offsets_not_monotonic": (lambda p, n, v, z: _edit(p / DO, _swap(2, 3)), True),
    "doc_offsets_past_end": (lambda p, n, v, z: _edit(p / DO, _set(n // 2, 10**9)), True),
    "doc_offsets_negative": (lambda p, n, v, z: _edit(p / DO, _set(1, -5)), True),
    "store_offsets_not_monotonic": (lambda p, n, v, z: _edit(p / SO, _swap(1, 2)), True),
    "store_offsets_past_end": (lambda p, n, v, z: _edit(p / SO, _set(3, 10**9)), True),
    "store_truncated": (lambda p, n, v, z: _truncate(p / "store.bin", 5), True),
    "store_flipped_byte": (lambda p, n, v, z: _flip_body_byte(p / "store.bin", 10), False),
    "vocab_id_out_of_range": (lambda p, n, v, z: _json_edit(p / "vocab.index.json", _vocab_set_first(v + 10)), True),
    "vocab_id_negative": (lambda p, n, v, z: _json_edit(p / "vocab.index.json", _vocab_set_first(-1)), True),
    "vocab_id_float": (lambda p, n, v, z: _json_edit(p / "vocab.index.json", _vocab_set_first(1.5)), True),
    "vocab_id_huge": (lambda p, n, v, z: _json_edit(p / "vocab.index.json", _vocab_set_first(2**70)), True),
    "vocab_id_shared": (lambda p, n, v, z: _json_edit(p / "vocab.index.json", _vocab_dup), True),
    "vocab_not_json": (lambda p, n, v, z: (p / "vocab.index.json").write_text("{not json"), True),
    "vocab_term_renamed": (lambda p, n, v, z: _json_edit(p / "vocab.index.json", _vocab_rename), False),
    "meta_n_docs": (lambda p, n, v, z: _json_edit(p / "meta.json", lambda m: {**m, "n_docs": n + 1}), True),  # type: ignore[dict-item]
    "meta_doc_ids_not_strings": (
        lambda p, n, v, z: _json_edit(p / "meta.json", lambda m: {**m, "doc_ids": list(range(n))}), True  # type: ignore[dict-item]
    ),
    "meta_doc_id_changed": (
        lambda p, n, v, z: _json_edit(p / "meta.json", lambda m: {**m, "doc_ids": ["x" + d for d in m["doc_ids"]]}),  # type: ignore[index]
        False,
    ),
    # the bigram tier
    "bigram_data_nan": (lambda p, n, v, z: _edit(p / BD, _set(3, np.nan)), True),
    "bigram_data_negative": (lambda p, n, v, z: _edit(p / BD, _set(0, -1.0)), True),
    "bigram_data_huge": (lambda p, n, v, z: _edit(p / BD, _set(1, 1e30)), True),
    "bigram_data_float64": (lambda p, n, v, z: _edit(p / BD, lambda a: a.astype(np.float64)), True),
    "bigram_data_flipped_bit": (lambda p, n, v, z: _flip_body_byte(p / BD, 4), False),
    "bigram_indices_out_of_range": (lambda p, n, v, z: _edit(p / BI, _set(0, n + 7)), True),
    "bigram_indices_negative": (lambda p, n, v, z: _edit(p / BI, _set(2, -1)), True),
    "bigram_indices_in_range_changed": (lambda p, n, v, z: _edit(p / BI, lambda a: (a + 1) % n), False),
    "bigram_indptr_not_monotonic": (lambda p, n, v, z: _edit(p / BP, _swap(3, 4)), True),
    "bigram_indptr_past_end": (lambda p, n, v, z: _edit(p / BP, _set(2, 10**6)), True),
    "bigram_indptr_truncated": (lambda p, n, v, z: _truncate(p / BP, 8), True),
    "bigram_indptr_empty_column": (lambda p, n, v, z: _edit(p / BP, lambda a: np.insert(a[:-1], 1, a[0])), True),
    "bigram_keys_unsorted": (lambda p, n, v, z: _edit(p / BK, _swap(0, 1)), True),
    "bigram_keys_out_of_range": (lambda p, n, v, z: _edit(p / BK, _set(-1, v * v + 5)), True),
    "bigram_keys_int32": (lambda p, n, v, z: _edit(p / BK, lambda a: a.astype(np.int32)), True),
    "bigram_keys_truncated": (lambda p, n, v, z: _truncate(p / BK, 16), True),
    "bigram_keys_missing": (lambda p, n, v, z: (p / BK).unlink(), True),
    "meta_bigram_count": (lambda p, n, v, z: _json_edit(p / "meta.json", _meta_bigrams("n_bigrams", 1)), True),
    "meta_bigram_vocab": (lambda p, n, v, z: _json_edit(p / "meta.json", _meta_bigrams("vocab_size", -1)), True),
}


def _strip_checksums(index_dir: Path) -> None:
    _json_edit(index_dir / "meta.json", lambda m: {k: v for k, v in m.items() if k != "checksums"})  # type: ignore[attr-defined]


# --- the child ----------------------------------------------------------------------------------------------------


def _outcome(fn: Callable[[], object]) -> str:
    from sleuth.errors import IndexCorruptError

    try:
        fn()
    except IndexCorruptError as e:
        assert "rebuild" in e.hint, e.hint
        return "IndexCorruptError"
    except Exception as e:  # a foreign exception: reported, and the parent fails
        return f"foreign:{type(e).__name__}:{str(e)[:120]}"
    return "ok"


def _exercise(index: object) -> None:
    """Everything a served index does: weighted top-k over every term, search, hits with text, df of phrases."""
    from sleuth.retrieval.bm25 import BM25Index, BM25Retriever
    from sleuth.retrieval.df import DocFrequency

    assert isinstance(index, BM25Index)
    v = len(index.vocab)
    scores, idx = index.topk_ids(np.arange(v, dtype=np.int32), np.ones(v, np.float32), 10)
    index.hits(scores, idx, "bm25")
    index.score_vector(np.arange(v, dtype=np.int32), np.ones(v, np.float32))
    BM25Retriever(index).search("heart failure blood pressure insulin", 5)
    tier = index.bigrams
    assert tier is not None
    nb = len(tier)
    index.tier_topk(np.arange(v, dtype=np.int32), np.ones(v, np.float32), np.arange(nb, dtype=np.int32),
                    np.ones(nb, np.float32), 10)
    index.tier_score_vector(np.zeros(0, np.int32), np.zeros(0, np.float32), np.arange(nb, dtype=np.int32),
                            np.ones(nb, np.float32))
    tier.pair_ids([index.vocab.get(t, -1) for t in index.analyzer.tokens("heart failure blood pressure")])
    dfreq = DocFrequency(index)
    for phrase in ("heart failure", "blood pressure", "cardiac output", "older adults", "insulin"):
        dfreq.df(phrase)


def child_bm25(pristine: str, work: str, mode: str) -> None:
    """Run every BM25 case on a fresh copy of ``pristine`` (a corpus folder with its index); one JSON line each."""
    from sleuth.corpus import Corpus
    from sleuth.retrieval.bm25 import BM25Index

    base = Path(pristine)
    meta = json.loads((base / ".sleuth" / "bm25" / "meta.json").read_text())
    n, v = meta["n_docs"], meta["vocab_size"]
    z = int(np.load(base / ".sleuth" / "bm25" / D).shape[0])
    for name, (corrupt, _) in BM25_CASES.items():
        dest = Path(work) / name
        shutil.copytree(base, dest)
        path = dest / ".sleuth" / "bm25"
        if mode == "legacy":
            _strip_checksums(path)
        corrupt(path, n, v, z)
        print(json.dumps({"case": name, "stage": "start"}), flush=True)
        if mode == "unverified":  # the kernels' own bounds checks, with the open-time checks skipped
            res = _outcome(lambda: _exercise(BM25Index.load(path, verify=False)))  # noqa: B023
        else:
            res = _outcome(lambda: _exercise(BM25Index.open(Corpus(dest), build_missing=False)))  # noqa: B023
        print(json.dumps({"case": name, "outcome": res}), flush=True)


def _run_child(func: str, *args: str, home: Path) -> tuple[int, list[dict[str, str]], str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]), "SLEUTH_HOME": str(home)}
    code = f"import sys; from tests.unit.test_index_corruption import {func}; {func}(*sys.argv[1:])"
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=600)
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return proc.returncode, rows, proc.stderr[-2000:]


def _outcomes(rows: list[dict[str, str]]) -> dict[str, str]:
    return {r["case"]: r["outcome"] for r in rows if "outcome" in r}


@pytest.fixture()
def pristine(make_corpus) -> Path:
    from sleuth.corpus import Corpus
    from sleuth.retrieval.bm25 import BM25Index

    root = make_corpus(DOCS, "pristine")
    index = BM25Index.open(Corpus(root))
    _exercise(index)  # the undamaged index serves everything
    assert index.meta["checksums"]
    return root


def _check_no_crash(code: int, rows: list[dict[str, str]], err: str) -> None:
    started = [r["case"] for r in rows if r.get("stage") == "start"]
    assert code not in (-11, 139, -6, 134), f"child crashed (exit {code}) in case {started[-1]!r}:\n{err}"
    assert code == 0, f"child failed (exit {code}):\n{err}"


def test_every_bm25_corruption_raises_index_corrupt_error(pristine: Path, tmp_path: Path) -> None:
    code, rows, err = _run_child("child_bm25", str(pristine), str(tmp_path / "work"), "checked", home=tmp_path / "h")
    _check_no_crash(code, rows, err)
    got = _outcomes(rows)
    assert set(got) == set(BM25_CASES)
    wrong = {k: v for k, v in got.items() if v != "IndexCorruptError"}
    assert not wrong, wrong


def test_value_checks_alone_catch_value_corruptions(pristine: Path, tmp_path: Path) -> None:
    """An index without checksums (built before they were recorded, or crafted without them): every value
    corruption is still refused; the in-range ones the checksum alone would catch are served, never crash."""
    code, rows, err = _run_child("child_bm25", str(pristine), str(tmp_path / "work"), "legacy", home=tmp_path / "h")
    _check_no_crash(code, rows, err)
    got = _outcomes(rows)
    for name, (_, by_values) in BM25_CASES.items():
        if by_values:
            assert got[name] == "IndexCorruptError", (name, got[name])
        else:
            assert got[name] in ("IndexCorruptError", "ok"), (name, got[name])


def test_kernels_never_read_outside_their_arrays(pristine: Path, tmp_path: Path) -> None:
    """With the open-time checks skipped (``verify=False``), the numba kernels themselves refuse out-of-bounds
    offsets: no segfault in any case. (Without the checks a wrong dtype may still raise numba's own TypeError, and
    an in-range damage serves wrong scores: that is what the open-time checks are for.)"""
    code, rows, err = _run_child("child_bm25", str(pristine), str(tmp_path / "work"), "unverified",
                                 home=tmp_path / "h")
    _check_no_crash(code, rows, err)
    got = _outcomes(rows)
    assert set(got) == set(BM25_CASES)
    for name in ("indices_out_of_range", "indices_negative", "indices_int_max", "indptr_past_end",
                 "indptr_negative", "vocab_id_out_of_range", "bigram_indices_out_of_range", "bigram_indices_negative",
                 "bigram_indptr_past_end"):
        assert got[name] == "IndexCorruptError", (name, got[name])


@pytest.mark.parametrize("command", ["search", "df"])
@pytest.mark.parametrize("case", ["indices_out_of_range", "data_nan", "indptr_not_monotonic", "tokens_out_of_range"])
def test_cli_refuses_a_corrupt_index(pristine: Path, tmp_path: Path, command: str, case: str) -> None:
    """The report's crash: `sleuth search` / `sleuth df` on a damaged index exited 139. Now a typed error."""
    corpus = tmp_path / "c"
    shutil.copytree(pristine, corpus)
    path = corpus / ".sleuth" / "bm25"
    meta = json.loads((path / "meta.json").read_text())
    BM25_CASES[case][0](path, meta["n_docs"], meta["vocab_size"], int(np.load(path / D).shape[0]))
    args = ["search", "heart failure blood", "--corpus", str(corpus)] if command == "search" else \
        ["df", "heart failure", "blood", "--corpus", str(corpus)]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "SLEUTH_HOME": str(tmp_path / "h")}
    proc = subprocess.run([sys.executable, "-m", "sleuth.cli.main", *args, "--json"], capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode not in (-11, 139, 0), (proc.returncode, proc.stderr[-1500:])
    err = json.loads(proc.stdout)
    assert err["error"] == "IndexCorruptError" and "--rebuild" in err["hint"], err
    assert str(path) in err["message"]


def test_in_place_rewrite_with_restored_mtime_is_caught(pristine: Path, tmp_path: Path) -> None:
    """The verified-once cache is keyed by (inode, size, mtime_ns, ctime_ns): putting the mtime back after a
    same-size rewrite does not make a damaged file pass as verified."""
    from sleuth.corpus import Corpus
    from sleuth.errors import IndexCorruptError
    from sleuth.retrieval.bm25 import BM25Index

    os.environ["SLEUTH_HOME"] = str(tmp_path / "h")
    try:
        corpus = Corpus(pristine)
        BM25Index.open(corpus)  # verified (and remembered)
        p = pristine / ".sleuth" / "bm25" / "store.bin"
        st = p.stat()
        raw = bytearray(p.read_bytes())
        raw[5] ^= 0x20
        with p.open("r+b") as fh:
            fh.write(bytes(raw))
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
        assert p.stat().st_size == st.st_size and p.stat().st_mtime_ns == st.st_mtime_ns
        with pytest.raises(IndexCorruptError, match="checksum"):
            BM25Index.open(corpus)
    finally:
        os.environ.pop("SLEUTH_HOME", None)


def test_corrupt_index_is_rebuilt_when_asked(pristine: Path, tmp_path: Path) -> None:
    from sleuth.corpus import Corpus
    from sleuth.errors import IndexCorruptError
    from sleuth.retrieval.bm25 import BM25Index, BM25Retriever

    path = pristine / ".sleuth" / "bm25"
    _edit(path / IX, _set(0, 10**6))
    with pytest.raises(IndexCorruptError, match=r"indices\.csc\.index\.npy") as e:
        BM25Index.open(Corpus(pristine))
    assert f"sleuth index {pristine} --rebuild" in e.value.hint
    r = BM25Retriever.open(Corpus(pristine), rebuild=True)
    assert r.index.status == "rebuilt (the old index was unreadable)"
    assert r.search("insulin sensitivity", 1)[0].doc_id == "sub/f.txt"


# --- dense ----------------------------------------------------------------------------------------------------


class HashEmbedder:
    """A real (if crude) embedder: hashed bag of words, L2-normalised. Enough to build and check a dense index."""

    name = "test-hash-32"
    dim = 32
    max_tokens = 512

    def embed(self, texts, *, progress=False):  # type: ignore[no-untyped-def]
        from sleuth.retrieval.embeddings import normalize

        out = np.zeros((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                out[i, zlib.crc32(w.encode()) % self.dim] += 1.0
        return normalize(out) if len(texts) else out


V = "vectors.npy"
DENSE_CASES: dict[str, tuple[Callable[[Path], None], bool]] = {
    "vectors_nan": (lambda p: _edit(p / V, _set((2, 3), np.nan)), True),  # type: ignore[arg-type]
    "vectors_inf": (lambda p: _edit(p / V, _set((0, 0), np.inf)), True),  # type: ignore[arg-type]
    "vectors_not_unit": (lambda p: _edit(p / V, lambda a: a * 10), True),
    "vectors_wrong_dims": (lambda p: _edit(p / V, lambda a: np.hstack([a, np.zeros((len(a), 1), a.dtype)])), True),
    "vectors_float64": (lambda p: _edit(p / V, lambda a: a.astype(np.float64)), True),
    "vectors_truncated": (lambda p: _truncate(p / V), True),
    "vectors_one_row_short": (lambda p: _edit(p / V, lambda a: a[:-1]), True),
    "meta_dim": (lambda p: _json_edit(p / "meta.json", lambda m: {**m, "dim": 33}), True),  # type: ignore[dict-item]
    "docs_one_id_short": (
        lambda p: _json_edit(p / "docs.json", lambda d: {**d, "doc_ids": d["doc_ids"][:-1]}), True  # type: ignore[index]
    ),
    "docs_not_json": (lambda p: (p / "docs.json").write_text("[1, 2"), True),
    "vectors_nudged": (lambda p: _edit(p / V, lambda a: a * np.float32(0.999)), False),
    "docs_id_renamed": (
        lambda p: _json_edit(p / "docs.json", lambda d: {**d, "doc_ids": ["x" + i for i in d["doc_ids"]]}),  # type: ignore[index]
        False,
    ),
}


def child_dense(pristine: str, work: str, mode: str) -> None:
    from sleuth.corpus import Corpus
    from sleuth.retrieval.dense import DenseIndex, DenseRetriever

    emb = HashEmbedder()
    for name, (corrupt, _) in DENSE_CASES.items():
        dest = Path(work) / name
        shutil.copytree(pristine, dest)
        path = dest / ".sleuth" / "dense"
        if mode == "legacy":
            _strip_checksums(path)
        corrupt(path)
        print(json.dumps({"case": name, "stage": "start"}), flush=True)

        def use(dest: Path = dest) -> None:
            index = DenseIndex.open(Corpus(dest), emb, build_missing=False)
            DenseRetriever(index, emb).search("heart failure", 3)

        print(json.dumps({"case": name, "outcome": _outcome(use)}), flush=True)


@pytest.fixture()
def dense_pristine(make_corpus) -> Path:
    from sleuth.corpus import Corpus
    from sleuth.retrieval.dense import DenseIndex, DenseRetriever

    root = make_corpus(DOCS, "dense")
    emb = HashEmbedder()
    index = DenseIndex.open(Corpus(root), emb)
    assert DenseRetriever(index, emb).search("heart failure", 1)[0].doc_id == "b.txt"
    assert index.meta["checksums"]
    return root


@pytest.mark.parametrize("mode", ["checked", "legacy"])
def test_every_dense_corruption_raises_index_corrupt_error(dense_pristine: Path, tmp_path: Path, mode: str) -> None:
    code, rows, err = _run_child("child_dense", str(dense_pristine), str(tmp_path / "work"), mode, home=tmp_path / "h")
    _check_no_crash(code, rows, err)
    got = _outcomes(rows)
    assert set(got) == set(DENSE_CASES)
    for name, (_, by_values) in DENSE_CASES.items():
        if mode == "checked" or by_values:
            assert got[name] == "IndexCorruptError", (name, got[name])
        else:
            assert got[name] in ("IndexCorruptError", "ok"), (name, got[name])


def test_hnsw_file_damage_is_caught_before_usearch_reads_it(tmp_path: Path) -> None:
    from sleuth.corpus import Corpus
    from sleuth.errors import IndexCorruptError
    from sleuth.retrieval.dense import DenseIndex

    pytest.importorskip("usearch")
    root = tmp_path / "h"
    for i in range(40):
        (root / f"{i}.txt").parent.mkdir(parents=True, exist_ok=True)
        (root / f"{i}.txt").write_text(f"document {i} about topic {i % 7} and theme {i % 5}", encoding="utf-8")
    os.environ["SLEUTH_HOME"] = str(tmp_path / "home")
    try:
        index = DenseIndex.open(Corpus(root), HashEmbedder(), kind="hnsw")
        assert index.vindex.kind == "hnsw"
        p = index.path / "hnsw.usearch"
        raw = bytearray(p.read_bytes())
        raw[len(raw) // 2 :] = b"\xff" * (len(raw) - len(raw) // 2)
        p.write_bytes(bytes(raw))
        with pytest.raises(IndexCorruptError, match=r"hnsw\.usearch"):
            DenseIndex.open(Corpus(root), HashEmbedder())
    finally:
        os.environ.pop("SLEUTH_HOME", None)
