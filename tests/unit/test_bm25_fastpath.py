"""The numpy scoring path a one-query process uses (#18): the same scores and the same order as the numba kernels,
ties included (score, then document index), and an analyzer that does not import bm25s."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from sleuth.corpus import Corpus
from sleuth.retrieval.bm25 import BM25Index
from sleuth.retrieval.bm25_kernels import _topk_numpy

# many exact ties: the same text under several names, and one-word documents of the same length
TIES = {f"same{i}.txt": "heart failure and blood pressure" for i in range(7)}
TIES |= {f"word{i}.txt": f"heart {w}" for i, w in enumerate(["alpha", "beta", "gamma", "delta", "eps", "zeta"])}
TIES |= {"other.txt": "insulin and glucose", "long.txt": "heart " + "filler " * 40}


def reference_order(scores: np.ndarray, k: int) -> list[int]:
    """Every document by (score descending, index ascending): the rule both backends follow."""
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))
    return order[:k]


def test_stopwords_are_bm25s_list() -> None:
    from bm25s.stopwords import STOPWORDS_EN as theirs

    from sleuth.retrieval.stopwords import STOPWORDS_EN

    assert tuple(theirs) == STOPWORDS_EN


def test_numpy_and_numba_agree_on_ties(make_corpus) -> None:
    pytest.importorskip("numba")
    root = make_corpus(TIES)
    a = BM25Index.open(Corpus(root))
    b = BM25Index.open(Corpus(root), backend="numpy")
    assert a.backend == "numba" and b.backend == "numpy"
    for query in ("heart", "heart failure", "blood glucose heart", "filler heart"):
        tok, w = a.weighted_token_ids([(query, 1.0)])
        full = a.score_vector(tok, w)
        assert full.tobytes() == b.score_vector(tok, w).tobytes()
        for k in (1, 3, 7, 8, 12, 100):
            s1, i1 = a.topk_ids(tok, w, k)
            s2, i2 = b.topk_ids(tok, w, k)
            assert i1.tolist() == i2.tolist() and s1.tobytes() == s2.tobytes(), (query, k)
            want = [i for i in reference_order(full, k) if full[i] > 0]
            assert i1.tolist() == want, (query, k)


def test_topk_rule_on_random_ties() -> None:
    from sleuth.retrieval._bm25_kernels import sorted_topk  # numba's heap

    rng = np.random.default_rng(3)
    for _ in range(200):
        n = int(rng.integers(1, 60))
        scores = rng.integers(0, 4, n).astype(np.float32)  # few distinct values: ties everywhere
        for k in (1, 2, 5, n, n + 3):
            s, i = _topk_numpy(scores, k)
            assert i.tolist() == reference_order(scores, k) and s.tolist() == scores[i].tolist()
            s2, i2 = sorted_topk(scores, k)
            assert i2.tolist() == i.tolist() and s2.tobytes() == s.tobytes()


def test_unknown_backend_is_a_config_error(make_corpus) -> None:
    from sleuth.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown BM25 backend"):
        BM25Index.open(Corpus(make_corpus(TIES)), backend="fortran")  # type: ignore[arg-type]


def test_numpy_backend_and_analyzer_import_neither_numba_nor_bm25s(make_corpus) -> None:
    root = make_corpus(TIES)
    BM25Index.open(Corpus(root))
    code = (
        "import sys\n"
        "from sleuth.corpus import Corpus\n"
        "from sleuth.retrieval.bm25 import BM25Index\n"
        "from sleuth.retrieval.df import DocFrequency\n"
        f"i = BM25Index.open(Corpus({str(root)!r}), backend='numpy')\n"
        "tok, w = i.weighted_token_ids([('heart failure', 1.0)])\n"
        "print(i.topk_ids(tok, w, 3)[1].tolist(), DocFrequency(i).df('heart failure').df)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'numba', 'bm25s', 'scipy', 'llvmlite'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[1] == "[]", out
    assert out[0].endswith(" 7"), out  # "heart failure" in the seven copies
