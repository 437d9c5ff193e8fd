"""Any sleuth retriever as a LangChain and a LlamaIndex retriever (#18), over real SciFact documents (the first 400
of the BEIR corpus, imported; skipped without ../shared/data): LangChain's own standard retriever tests
(``langchain_tests.integration_tests.RetrieversIntegrationTests``), LlamaIndex's retrieve/aretrieve and its
``QueryFusionRetriever`` fusing a sleuth BM25 retriever with a sleuth hybrid one."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import shared_path

pytestmark = pytest.mark.data

N_DOCS = 400
QUERY = "treatment of Alzheimer disease in older patients"


@pytest.fixture(scope="module")
def scifact_small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sleuth.importers import import_corpus

    src = shared_path("beir", "scifact", "corpus.jsonl")
    tmp = tmp_path_factory.mktemp("scifact-small")
    with src.open(encoding="utf-8") as f:
        lines = [next(f) for _ in range(N_DOCS)]
    (tmp / "corpus.jsonl").write_text("".join(lines), encoding="utf-8")
    import_corpus(tmp / "corpus.jsonl", tmp / "corpus", progress=False)
    return tmp / "corpus"


def bm25(corpus: Path) -> Any:
    from sleuth.corpus import Corpus
    from sleuth.retrieval import get_retriever

    return get_retriever("bm25", Corpus(corpus))


# -- LangChain ---------------------------------------------------------------------------------------------------

langchain_tests = pytest.importorskip("langchain_tests.integration_tests", reason="needs langchain-tests (dev)")


@pytest.fixture(scope="module")
def bm25_small(scifact_small: Path) -> Any:
    return bm25(scifact_small)


@pytest.mark.asyncio  # the standard suite's async test needs pytest-asyncio (langchain runs it in auto mode)
@pytest.mark.filterwarnings("ignore:The test <Function:pytest.PytestWarning")  # the mark on its sync tests
class TestSleuthLangChainRetriever(langchain_tests.RetrieversIntegrationTests):
    """LangChain's standard retriever tests, as LangChain runs them on its own retrievers."""

    @pytest.fixture(autouse=True)
    def _sleuth(self, bm25_small: Any) -> None:
        self._bm25 = bm25_small

    @property
    def retriever_constructor(self) -> type:
        from sleuth.integrations.langchain_retriever import langchain_retriever_class

        return langchain_retriever_class()

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"sleuth_retriever": self._bm25}

    @property
    def retriever_query_example(self) -> str:
        return QUERY


def test_langchain_documents_carry_id_score_text(bm25_small: Any) -> None:
    from langchain_core.documents import Document

    from sleuth.integrations.langchain_retriever import to_langchain_retriever

    r = to_langchain_retriever(bm25_small, k=5)
    docs = r.invoke(QUERY)
    hits = bm25_small.search(QUERY, 5)
    assert [d.id for d in docs] == [h.doc_id for h in hits] and all(isinstance(d, Document) for d in docs)
    assert [d.metadata["score"] for d in docs] == [h.score for h in hits]
    assert [d.metadata["rank"] for d in docs] == [1, 2, 3, 4, 5]
    assert docs[0].page_content == hits[0].text and "alzheimer" in docs[0].page_content.lower()
    assert len(r.invoke(QUERY, k=2)) == 2
    assert [d.id for d in asyncio.run(r.ainvoke(QUERY))] == [d.id for d in docs]
    # a runnable: batch and composition work as for LangChain's own retrievers
    assert [len(x) for x in r.batch([QUERY, "vitamin D deficiency"])] == [5, 5]


def test_langchain_retriever_raises_sleuths_error(bm25_small: Any) -> None:
    from sleuth.errors import ToolArgumentError
    from sleuth.integrations.langchain_retriever import to_langchain_retriever

    with pytest.raises(ToolArgumentError, match="empty query"):
        to_langchain_retriever(bm25_small).invoke("   ")


# -- LlamaIndex --------------------------------------------------------------------------------------------------


def test_llamaindex_retrieve_and_aretrieve(bm25_small: Any) -> None:
    pytest.importorskip("llama_index.core", reason="needs the `llamaindex` extra (llama-index-core)")
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from sleuth.integrations.llamaindex_retriever import to_llamaindex_retriever

    r = to_llamaindex_retriever(bm25_small, k=4)
    assert isinstance(r, BaseRetriever)
    nodes = r.retrieve(QUERY)
    hits = bm25_small.search(QUERY, 4)
    assert all(isinstance(n, NodeWithScore) and isinstance(n.node, TextNode) for n in nodes)
    assert [n.node.node_id for n in nodes] == [h.doc_id for h in hits]
    assert [n.score for n in nodes] == [h.score for h in hits]
    assert nodes[0].node.get_content() == hits[0].text and nodes[0].node.metadata["doc_id"] == hits[0].doc_id
    assert [n.node.node_id for n in asyncio.run(r.aretrieve(QueryBundle(QUERY)))] == [h.doc_id for h in hits]


def test_llamaindex_fusion_over_two_sleuth_retrievers(scifact_small: Path, bm25_small: Any) -> None:
    """LlamaIndex's QueryFusionRetriever (reciprocal rank fusion, no query generation: no LLM call) over a sleuth
    BM25 and a sleuth BM25 over the same corpus weighted differently: the fused list holds documents of both."""
    pytest.importorskip("llama_index.core", reason="needs the `llamaindex` extra (llama-index-core)")
    from llama_index.core.llms import MockLLM
    from llama_index.core.retrievers import QueryFusionRetriever

    from sleuth.integrations.llamaindex_retriever import to_llamaindex_retriever

    class Rephrased:  # a second real sleuth retriever: BM25 over a different query wording
        name = "bm25-rephrased"

        def run(self, query: str, k: int = 10, *, tracer: Any = None) -> Any:
            return bm25_small.run(query + " amyloid dementia cognitive decline", k, tracer=tracer)

    a = to_llamaindex_retriever(bm25_small, k=5)
    b = to_llamaindex_retriever(Rephrased(), k=5)
    fused = QueryFusionRetriever([a, b], llm=MockLLM(), mode="reciprocal_rerank", num_queries=1,
                                 similarity_top_k=6, use_async=False)
    nodes = fused.retrieve(QUERY)
    ids = [n.node.node_id for n in nodes]
    ids_a = {n.node.node_id for n in a.retrieve(QUERY)}
    ids_b = {n.node.node_id for n in b.retrieve(QUERY)}
    assert len(ids) == 6 and set(ids) <= ids_a | ids_b
    assert ids[0] in ids_a & ids_b  # reciprocal rank fusion puts a document both lists hold first
    assert all(n.score is not None and n.score > 0 for n in nodes)


def test_llamaindex_bad_k_is_a_config_error(bm25_small: Any) -> None:
    pytest.importorskip("llama_index.core", reason="needs the `llamaindex` extra (llama-index-core)")
    from sleuth.errors import ConfigError
    from sleuth.integrations.llamaindex_retriever import to_llamaindex_retriever

    with pytest.raises(ConfigError, match="k must be"):
        to_llamaindex_retriever(bm25_small, k=0)


def test_hits_json_round_trip_in_metadata(bm25_small: Any) -> None:
    from sleuth.integrations.langchain_retriever import hit_metadata

    h = bm25_small.search(QUERY, 1)[0]
    assert json.loads(json.dumps(hit_metadata(h, 1)))["doc_id"] == h.doc_id


def test_framework_retrievers_filter_by_metadata(scifact_small: Path, bm25_small: Any) -> None:
    """``where`` reaches the sleuth retriever: the same top k as the retriever's own filtered search."""
    from sleuth.integrations.langchain_retriever import to_langchain_retriever

    where = "title~*alzheimer*"
    hits = bm25_small.search(QUERY, 5, where=where)
    assert hits and all("alzheimer" in h.text.split("\n", 1)[0].lower() for h in hits)
    assert [d.id for d in to_langchain_retriever(bm25_small, k=5, where=where).invoke(QUERY)] == [
        h.doc_id for h in hits]
    pytest.importorskip("llama_index.core", reason="needs the llamaindex extra")
    from sleuth.integrations.llamaindex_retriever import to_llamaindex_retriever

    nodes = to_llamaindex_retriever(bm25_small, k=5, where=[where]).retrieve(QUERY)
    assert [n.node.id_ for n in nodes] == [h.doc_id for h in hits]
