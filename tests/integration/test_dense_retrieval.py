"""Dense retrieval with the real packaged MiniLM: embedder, truncation, cache, corpus index, registry, tools."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sleuth.errors import StaleIndexError
from sleuth.retrieval.embeddings import CachedEmbedder, Embedder

pytest.importorskip("sentence_transformers", reason="needs sleuth[dense] (sentence-transformers)")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def minilm() -> Embedder:
    from sleuth.errors import MissingExtraError
    from sleuth.retrieval.embeddings import get_embedder

    try:
        return get_embedder("minilm")
    except MissingExtraError as e:
        pytest.skip(str(e))


class Counting:
    """Wraps a real embedder and counts the texts it is asked to embed (to check incremental rebuilds)."""

    def __init__(self, inner: Embedder, fail: bool = False) -> None:
        self.inner, self.fail, self.count = inner, fail, 0
        self.name, self.dim, self.max_tokens = inner.name, inner.dim, inner.max_tokens

    def embed(self, texts, *, progress=False):  # type: ignore[no-untyped-def]
        if self.fail:
            raise KeyboardInterrupt  # an interrupted build
        self.count += len(texts)
        return self.inner.embed(texts, progress=progress)


def test_embeddings_are_normalised_and_meaningful(minilm: Embedder) -> None:
    v = minilm.embed(["The cat sat on the mat.", "A kitten is sitting on a rug.", "Quarterly tax filing deadline."])
    assert v.shape == (3, 384) and v.dtype == np.float32
    assert np.linalg.norm(v, axis=1) == pytest.approx([1, 1, 1], abs=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2
    assert minilm.embed([]).shape == (0, 384)


def test_long_input_keeps_only_the_window(minilm: Embedder) -> None:
    head = "Photosynthesis converts light energy into chemical energy in plants. " * 40
    assert minilm.count_tokens(head) > minilm.max_tokens == 256  # type: ignore[attr-defined]
    a, b = minilm.embed([head, head + " Completely different tail about stock markets and bonds." * 30])
    assert float(a @ b) == pytest.approx(1.0, abs=1e-5)  # the tail past the window does not count


def test_cache_embeds_each_text_once(minilm: Embedder, tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    c1 = CachedEmbedder(minilm, path)
    v1 = c1.embed(["alpha", "beta", "alpha"])
    assert (c1.hits, c1.misses) == (0, 2)
    c1.close()
    c2 = CachedEmbedder(minilm, path)  # a later process
    v2 = c2.embed(["beta", "gamma", "alpha"])
    assert (c2.hits, c2.misses) == (2, 1)
    assert v2[0] == pytest.approx(v1[1]) and v2[2] == pytest.approx(v1[0])


DOCS = {
    "bio/photosynthesis.txt": "Photosynthesis\n\nPlants turn sunlight, water and carbon dioxide into sugar and oxygen.",
    "bio/heart.txt": "The heart\n\nThe heart pumps blood through the arteries and veins of the body.",
    "geo/volcano.txt": "Volcanoes\n\nMagma rises through the crust and erupts as lava and ash.",
    "fin/bonds.txt": "Bonds\n\nA bond is a loan to a company or government that pays interest.",
}


def test_corpus_index_build_search_stale_incremental_atomic(minilm: Embedder, make_corpus) -> None:
    from sleuth.corpus import Corpus
    from sleuth.retrieval.dense import DenseIndex, DenseRetriever

    corpus = Corpus(make_corpus(DOCS))
    emb = Counting(minilm)
    r = DenseRetriever.open(corpus, embedder=emb)
    assert emb.count == 4
    hits = r.search("how do plants make food from light?", 2)
    assert hits[0].doc_id == "bio/photosynthesis.txt" and hits[0].source == "dense"
    assert hits[0].text.startswith("Photosynthesis") and hits[0].score > hits[1].score
    meta = json.loads((corpus.state_dir / "dense" / "meta.json").read_text())
    assert meta["embedder"] == "minilm" and meta["dim"] == 384 and meta["kind"] == "exact"

    (corpus.root / "geo" / "volcano.txt").write_text("Earthquakes\n\nFaults slip and the ground shakes.")
    (corpus.root / "geo" / "river.txt").write_text("Rivers\n\nWater flows downhill to the sea.")
    with pytest.raises(StaleIndexError):
        DenseRetriever.open(corpus, embedder=emb)
    before_count = emb.count  # 4 documents + 1 query so far
    r2 = DenseRetriever.open(corpus, embedder=emb, rebuild=True)
    assert emb.count - before_count == 2  # only the changed and the new document were embedded
    assert r2.search("seismic shaking of the ground", 1)[0].doc_id == "geo/volcano.txt"
    before = (corpus.state_dir / "dense" / "vectors.npy").read_bytes()

    (corpus.root / "fin" / "bonds.txt").write_text("Stocks\n\nShares of a company trade on an exchange.")
    with pytest.raises(KeyboardInterrupt):
        DenseRetriever.open(corpus, embedder=Counting(minilm, fail=True), rebuild=True)
    assert (corpus.state_dir / "dense" / "vectors.npy").read_bytes() == before  # old index intact
    assert len(DenseIndex.load(corpus.state_dir / "dense")) == 5
    assert not [p for p in corpus.state_dir.iterdir() if ".building." in p.name]


def test_registry_dense_and_hybrid(minilm: Embedder, make_corpus) -> None:
    from sleuth.retrieval import get_retriever

    root = make_corpus(DOCS)
    dense = get_retriever("dense", root, embedder=minilm)
    assert dense.search("blood circulation", 1)[0].doc_id == "bio/heart.txt"
    hybrid = get_retriever("hybrid", root, embedder=minilm)
    hits = hybrid.search("interest paid on a government loan", 3)
    assert hits[0].doc_id == "fin/bonds.txt" and hits[0].source == "hybrid"
    assert set(hits[0].metadata["fusion"]) == {"bm25", "dense"}
    w = get_retriever("hybrid", root, embedder=minilm, fusion="weighted", norm="zscore", weights=[0.3, 0.7])
    assert w.search("lava and ash", 1)[0].doc_id == "geo/volcano.txt"


def test_tool_catalog_dense_hybrid_and_long_request(minilm: Embedder) -> None:
    from tests.unit.test_tool_catalog import SPECS

    from sleuth.retrieval.tool_catalog import ToolCatalog

    cat = ToolCatalog.from_openai(SPECS, embedder=minilm)
    assert cat.search("will it rain in Oslo tomorrow?", 1, method="bm25") == []  # no shared word
    assert cat.retrieve("will it rain in Oslo tomorrow?", 1, method="dense")[0]["function"]["name"] == "get_weather"
    hy = cat.search("will it rain in Oslo tomorrow?", 3, method="hybrid")
    assert hy[0].doc_id == "get_weather" and hy[0].metadata["query_truncated"] is False
    long_request = "Please email my landlord about the broken heater. " + "Some context about the flat. " * 120
    dense = cat.search(long_request, 2, method="dense")
    assert dense[0].metadata["query_truncated"] is True
    assert cat.search(long_request, 2, method="bm25")[0].metadata["query_truncated"] is False
    assert dense[0].doc_id == "send_email"  # the request's head (inside the window) decides


def test_cli_tools_search_hybrid_json(tmp_path: Path) -> None:
    from tests.unit.test_tool_catalog import SPECS

    cat = tmp_path / "tools.json"
    cat.write_text(json.dumps(SPECS))
    env = {**os.environ, "SLEUTH_HOME": str(tmp_path / "home")}
    cmd = [sys.executable, "-m", "sleuth.cli.main", "tools", "search", "will it rain tomorrow?", "--catalog", str(cat)]
    p = subprocess.run([*cmd, "--method", "hybrid", "--k", "2", "--json"], capture_output=True, text=True, env=env,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    assert data["tools"][0]["function"]["name"] == "get_weather" and len(data["tools"]) == 2
    assert list((tmp_path / "home" / "embeddings").glob("*.sqlite"))  # tool texts cached for the next call
    bad = tmp_path / "dup.json"
    bad.write_text(json.dumps([SPECS[0], SPECS[0]]))
    p = subprocess.run([*cmd[:-2], "--catalog", str(bad), "--json"], capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 2 and json.loads(p.stdout)["error"] == "ToolCatalogError"
